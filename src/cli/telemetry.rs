//! Logging setup: human-readable lines by default, JSON with `log.format = "json"`.

use std::io::{BufWriter, IsTerminal};
use std::sync::{Mutex, PoisonError};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `filter`. Logs go to stderr, so a
/// client command's stdout stays clean for scripts.
///
/// Lines are handed to a writer thread (`shsd-log`), which writes them in batches: at the
/// default level the daemon logs a line per request and per accepted message, and writing
/// each one to stderr from the request's own thread cost a fifth to a quarter of intake's
/// rate (`BENCHMARKS.md`). Nothing is dropped: when the queue ([`QUEUED_LINES`]) is full,
/// the logging thread waits. [`finish`] writes out what is still queued.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(false)
        .thread_name("shsd-log")
        .finish(BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colours only on a terminal: in the journal or a file they are escape codes.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // Only the installed subscriber's writer is kept: replacing its guard would end the
    // thread that the subscriber still writes to.
    if installed.is_ok() {
        *WRITER.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    }
}

/// Lines queued for the writer at most: about half a second of the request log at full
/// intake (two lines a message), and at an estimated 500 bytes a line about 8 MiB, where
/// tracing-appender's default (128 000 lines) would let a stalled journal hold eight times
/// that in the daemon.
const QUEUED_LINES: usize = 16 * 1024;

/// The writer thread's guard: dropping it writes out the queued lines and ends the thread.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Writes out the lines still queued and stops the writer thread. Called last, once the
/// runtime and every task that could log are gone; lines logged after it are lost.
pub fn finish() {
    let guard = WRITER.lock().unwrap_or_else(PoisonError::into_inner).take();
    drop(guard);
}
