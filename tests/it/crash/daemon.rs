//! The daemon under test: the node folder it runs on, starting `shsd serve` and learning
//! its port from its log, SIGKILL, and what its logs say over all generations.
//!
//! The binary is the one cargo built for this test (`CARGO_BIN_EXE_shsd`), run as a child
//! process: only a real process can be killed between any two instructions.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shsd::pki::{ExamplePki, PkiOptions};

use crate::harness::config_text;

/// The `shsd` binary of this package.
pub(super) const SHSD: &str = env!("CARGO_BIN_EXE_shsd");
/// The daemon's own filter: its port line and the store's notes, warnings from the rest.
const LOG_FILTER: &str = "warn,shsd::app=info,shsd::store=info";

/// A temporary node folder (under `CARGO_TARGET_TMPDIR`): a fresh PKI in `certs/`, the test
/// configuration with a sled store in `store/`, and `logs/` for the daemon's stderr.
pub(crate) fn node_folder() -> (tempfile::TempDir, ExamplePki) {
    let dir = tempfile::Builder::new()
        .prefix("shsd-crash-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir");
    let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
    pki.write_to(&dir.path().join("certs"), false)
        .expect("write pki");
    std::fs::write(dir.path().join("shsd.toml"), config_text("")).expect("config");
    std::fs::create_dir(dir.path().join("logs")).expect("logs folder");
    (dir, pki)
}

/// Keeps the node folder at `0` when the test panics anywhere (a daemon that would not
/// start, a sender that failed), not only when it reports findings: the folder is moved to
/// `<folder>-kept` before its `TempDir` is dropped, and the path printed.
pub(crate) struct KeptOnPanic(pub(crate) PathBuf);

impl Drop for KeptOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() && self.0.exists() {
            let mut kept = self.0.clone().into_os_string();
            kept.push("-kept");
            match std::fs::rename(&self.0, &kept) {
                Ok(()) => eprintln!("store and logs kept in {}", kept.to_string_lossy()),
                Err(err) => eprintln!("could not keep {}: {err}", self.0.display()),
            }
        }
    }
}

/// Appends `serve` on the folder's configuration to `command` (the binary itself, or a
/// tracer that runs it), with the test's log filter and its stderr to
/// `logs/shsd-<generation>.log`.
pub(super) fn serve<'a>(command: &'a mut Command, dir: &Path, generation: u64) -> &'a mut Command {
    let log = File::create(log_path(dir, generation)).expect("log file");
    command
        .arg("serve")
        .arg("--config")
        .arg(dir.join("shsd.toml"))
        .env("RUST_LOG", LOG_FILTER)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
}

/// A running `shsd serve`; SIGKILLed when dropped.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) port: u16,
    pub(super) listening_at: Instant,
    pub(super) startup: Duration,
}

impl Daemon {
    /// Starts the binary on the folder's configuration, its stderr to `logs/shsd-<gen>.log`.
    pub(super) fn spawn(dir: &Path, generation: u64) -> Child {
        serve(&mut Command::new(SHSD), dir, generation)
            .spawn()
            .expect("spawn shsd")
    }

    /// Starts the binary and waits for its `listening on 127.0.0.1:PORT (shs)` line.
    pub(crate) async fn start(dir: &Path, generation: u64) -> Daemon {
        let mut child = Daemon::spawn(dir, generation);
        let spawned = Instant::now();
        let what = format!("shsd (generation {generation})");
        let port = wait_for_port(&mut child, &log_path(dir, generation), &what).await;
        Daemon {
            child,
            port,
            listening_at: Instant::now(),
            startup: spawned.elapsed(),
        }
    }

    pub(crate) fn kill(self) {
        drop(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        sigkill(&mut self.child);
    }
}

/// SIGKILL (what `Child::kill` sends on Unix), then reap.
pub(super) fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `log` has the `listening on … (shs)` line; panics with the log if `child`
/// ends first or takes longer than a minute.
pub(super) async fn wait_for_port(child: &mut Child, log: &Path, what: &str) -> u16 {
    let spawned = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = listening_port(&text) {
            return port;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status} before listening:\n{text}");
        }
        if spawned.elapsed() > Duration::from_secs(60) {
            sigkill(child);
            panic!("{what} did not log its port in 60 s:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join("logs").join(format!("shsd-{generation:03}.log"))
}

/// The port of the `listening on <address> (shs)` line, colour codes or not.
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let line = strip_ansi(line);
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        let address = rest[..rest.find(" (shs)")?].trim();
        address
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    })
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the daemon logs say, over all generations.
pub(super) struct LogNotes {
    /// WARN and ERROR lines, deduplicated.
    pub(super) warnings: Vec<String>,
    /// Interrupted uploads removed at start (`removed interrupted payload uploads count=N`).
    pub(super) removed_uploads: u64,
}

pub(super) fn read_logs(dir: &Path) -> LogNotes {
    let mut seen = HashSet::new();
    let mut removed_uploads = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for line in text.lines().map(strip_ansi) {
            if line.contains("removed interrupted payload uploads") {
                removed_uploads += line
                    .split_once("count=")
                    .and_then(|(_, n)| n.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                // Drop the timestamp so that repeats collapse.
                let key = line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest);
                if seen.insert(key.to_owned()) {
                    let name = file.file_name().unwrap_or_default().to_string_lossy();
                    out.push(format!("{name}: {line}"));
                }
            }
        }
    }
    LogNotes {
        warnings: out,
        removed_uploads,
    }
}
