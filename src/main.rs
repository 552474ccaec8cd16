//! The `shsd` binary: parse the command line, hand over to the library, map the outcome to
//! an exit code (64 for a bad configuration, so systemd does not restart on it).

use std::process::ExitCode;

use clap::Parser;
use shsd::cli::run::{self, Failure};
use shsd::cli::{Cli, Command, client_commands};
use shsd::config::EXIT_BAD_CONFIG;

/// jemalloc instead of glibc's malloc. Under sustained intake glibc kept freed memory
/// resident: after a large buffer is freed its mmap threshold rises, later buffers come
/// from the arenas and fragment them (30 s of intake: 305 MiB peak with glibc, 184 MiB
/// with jemalloc, same message count; see `BENCHMARKS.md`, "Routing at intake,
/// jemalloc, small sled segments").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The most threads tokio starts for blocking work (store scans such as lists, payload
/// chunk writes). Its default, 512, let the load bench's 64 clients start a thread each
/// when they all listed at once, and the server held 20–30 MiB more at the start of
/// fetch+ack than with a cap (`BENCHMARKS.md`). The work is bound by CPU or disk, so more
/// threads than this would only queue in the kernel instead.
const BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shsd: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => run::serve(&config).await,
            Command::CheckConfig { config } => run::check_config(&config),
            Command::Demo { config, once } => run::demo(&config, once).await,
            Command::Certs {
                out,
                force,
                validity_days,
            } => run::certs(&out, force, validity_days),
            Command::Send(args) => client_commands::send(args).await.map_err(other),
            Command::List(args) => client_commands::list(args).await.map_err(other),
            Command::Fetch(args) => client_commands::fetch(args).await.map_err(other),
            Command::Ack(args) => client_commands::ack(args).await.map_err(other),
        }
    });
    // Every task is gone with the runtime; then the log's last lines, before any error.
    drop(runtime);
    shsd::cli::telemetry::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadConfig(errors)) => {
            eprint!("{errors}");
            ExitCode::from(EXIT_BAD_CONFIG as u8)
        }
        Err(Failure::Other(reason)) => {
            eprintln!("shsd: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn other(err: client_commands::CommandError) -> Failure {
    Failure::Other(err.to_string())
}
