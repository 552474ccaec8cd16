//! End-to-end load: the real `shsd` binary on 127.0.0.1:0 with a sled store in a temporary
//! folder, driven over mutual TLS by concurrent [`ShsClient`]s (one keep-alive connection
//! each, as a portal or a business system holds), measured against the machine's raw
//! single-writer fdatasync rate — the ceiling of every durable-intake number.
//!
//! Run: `cargo build --release && cargo bench --bench load` (Linux: reads /proc).
//!
//! It starts `shsd` from beside its own executable (`target/release/deps/load-…` →
//! `target/release/shsd`). `cargo bench` builds that binary itself, with the bench profile
//! (the release profile plus line tables, `debug = 1`, for profilers), so the measured
//! binary is the one `cargo bench` just built; the `cargo build --release` before it is
//! harmless. With a shared `CARGO_TARGET_DIR` the file is whatever was built last, so
//! build right before running (or copy a binary there to compare builds).
//!
//! Phases: (1) raw disk: 4 KiB write + `sync_data` in a loop; (2) intake: `LOAD_SENDERS`
//! portal clients send messages to `urn:X-shs:2120000142.bygglov` for a warm-up, then for
//! the measured window; then, unless `LOAD_DRAIN=0`, it waits (up to two minutes, polling
//! shsd's `/metrics`) until shsd's index (sled) has every write its log took during intake,
//! and reports how long that took: shsd answers intake once the log is synced and moves
//! the writes into sled afterwards, and without the wait fetch+ack would pay for intake's
//! share of that work; (3) fetch+ack: `LOAD_FETCHERS` business-system clients each list
//! (`maxhits=50`) one product of their own and fetch + acknowledge what they listed, until
//! the mailbox is empty or the time is up. Senders spread their messages over one product
//! per fetcher, so the fetchers' shares are disjoint without coordination. (4) the ceiling
//! (unless `LOAD_CEILING=0`): phase 2 again against a server that only terminates the same
//! mutual TLS, reads the body, appends it to a file and answers after a group-committed
//! fdatasync (`ceiling`), so that shsd's intake is reported as a share of what this
//! machine can do durably at all in the same run; (5) phase 3 again against that server,
//! which lists from memory, serves the stored bodies and makes each ack durable the same
//! way (the fetch+ack ceiling).
//!
//! Parameters (environment; default, bound): `LOAD_SENDERS` (32, ≤ 256), `LOAD_FETCHERS`
//! (= senders, ≤ 256), `LOAD_SECONDS` (10, ≤ 60: the intake window and the fetch bound),
//! `LOAD_WARMUP` (1, ≤ 10), `LOAD_SIZE` (10240 bytes of data part, ≤ 1 MiB),
//! `LOAD_DISK_SECONDS` (3, ≤ 10), `LOAD_DIR` (where the temporary folder goes; default the
//! system's temp dir — the disk being measured), `LOAD_RATE` (unset: closed loop, every
//! sender sends again as soon as it is answered; a number: open loop, the senders together
//! start that many messages per second on a fixed schedule, and each latency is measured
//! from the message's scheduled start, so a server that falls behind shows its queueing —
//! for the latency targets at 1 000/s and at half the maximum rate), `LOAD_HUGE` (unset; a
//! number of bytes, ≤ 1 GiB, a few KiB less for the default 1 GiB message limit, which counts
//! the whole body: instead of phases 2 and 3, send one message with a data part of
//! that size and report the server's idle and peak resident memory — see `huge`),
//! `LOAD_HANDSHAKES` (unset; `1`: instead of phases 2 and 3, `LOAD_SENDERS` clients open a
//! fresh connection with a full mutual-TLS handshake per request for `LOAD_SECONDS` — see
//! `handshake`), `LOAD_CACHE_MIB` (unset: shsd's default; a number of MiB, ≤ 4096: the
//! server's `[store] cache_mib`, sled's page cache), `LOAD_BACKLOG_MIB` (unset: shsd's
//! default; a number of MiB, ≤ 4096: the server's `[store] log_backlog_mib`, how much the
//! write-ahead log holds in memory until sled has it), `LOAD_MIXED` (unset: fetch+ack alone; a
//! number of messages per second, ≤ 50 000: during phases 3 and 5 the senders keep sending
//! open loop at that rate, as `LOAD_RATE` does, after a `LOAD_WARMUP` of their own, so
//! fetch+ack is measured with durable intake alongside and ends at time-up — see `mixed`),
//! `LOAD_REQUEST_LOG` (unset: shsd logs warnings only; `1`: at its default level, `info`,
//! a JSON line per request and per accepted message, which the bench reads and drops).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) this is a smoke run of a few
//! seconds, fetch+ack with intake alongside (`LOAD_MIXED=50`), against the binary beside
//! it (`target/debug/shsd`), or a skip line if there is
//! none.
//!
//! Layout: this file holds the parameters and runs the phases in order; `disk` probes
//! fdatasync, `server` starts and stops `shsd` (PKI, configuration, port), `phases` drives
//! the clients, `mixed` runs fetch+ack with intake alongside, `stats` records and
//! summarises, `proc` reads /proc, `syncs` reads shsd's group-commit and backlog
//! counters, `report` prints.

mod ceiling;
mod disk;
mod handshake;
mod huge;
mod mixed;
mod phases;
mod proc;
mod report;
mod server;
mod stats;
mod syncs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use disk::raw_disk;
use phases::intake;
use proc::read_trimmed;
use report::{Measured, Report};
use server::{Server, ServerOptions, server_binary};

fn main() -> ExitCode {
    if let Some(dir) = std::env::var_os(ceiling::CEILING_ENV) {
        return match ceiling::serve(Path::new(&dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("ceiling server: {reason}");
                ExitCode::FAILURE
            }
        };
    }
    let bench = std::env::args().skip(1).any(|arg| arg == "--bench");
    let binary = match server_binary() {
        Ok(binary) => binary,
        Err(reason) if !bench => {
            println!("load: smoke run skipped: {reason}");
            return ExitCode::SUCCESS;
        }
        Err(reason) => {
            eprintln!(
                "load: {reason}\nload: run `cargo build --release` first (same CARGO_TARGET_DIR)"
            );
            return ExitCode::FAILURE;
        }
    };
    let result = Params::new(bench).and_then(|params| run(&binary, &params));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("load: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The run's shape, from the environment under `--bench`, fixed and small otherwise.
struct Params {
    smoke: bool,
    senders: usize,
    fetchers: usize,
    seconds: Duration,
    warmup: Duration,
    size: usize,
    disk: Duration,
    /// Messages started per second in all (open loop); `None`: closed loop.
    rate: Option<f64>,
    /// Intake at this many messages per second during fetch+ack; `None`: fetch+ack alone.
    mixed: Option<f64>,
    /// One message of this many data bytes instead of phases 2 and 3.
    huge: Option<usize>,
    /// New connections with full handshakes instead of phases 2 and 3.
    handshakes: bool,
    /// Measure the ceiling server's intake too (phase 4).
    ceiling: bool,
    /// Wait for shsd's index to take the intake's backlog before fetch+ack, so that
    /// fetch+ack does not pay for intake's deferred index writes (`LOAD_DRAIN=0`: no wait).
    drain: bool,
    /// The server's store sizes (sled's cache, the log's backlog) and log level.
    server: ServerOptions,
    dir: Option<PathBuf>,
    notes: Vec<String>,
}

impl Params {
    /// The smoke parameters without `--bench`; else the environment, clamped to bounds
    /// that keep one run within minutes and the machine responsive.
    fn new(bench: bool) -> Result<Params, String> {
        if !bench {
            return Ok(Params {
                smoke: true,
                senders: 2,
                fetchers: 2,
                seconds: Duration::from_millis(700),
                warmup: Duration::from_millis(200),
                size: 10 * 1024,
                disk: Duration::from_millis(300),
                rate: None,
                // Fetch+ack with intake alongside, so the smoke run covers that path too.
                mixed: Some(50.0),
                huge: None,
                handshakes: false,
                ceiling: false,
                drain: true,
                server: ServerOptions::default(),
                dir: None,
                notes: Vec::new(),
            });
        }
        let mut notes = Vec::new();
        let senders = env_number("LOAD_SENDERS", 32.0, 1.0, 256.0, &mut notes)? as usize;
        let fetchers = env_number("LOAD_FETCHERS", senders as f64, 1.0, 256.0, &mut notes)?;
        let seconds = env_number("LOAD_SECONDS", 10.0, 0.1, 60.0, &mut notes)?;
        let warmup = env_number("LOAD_WARMUP", 1.0, 0.0, 10.0, &mut notes)?;
        let size = env_number("LOAD_SIZE", 10240.0, 1.0, 1048576.0, &mut notes)?;
        let disk = env_number("LOAD_DISK_SECONDS", 3.0, 0.1, 10.0, &mut notes)?;
        let rate = match std::env::var_os("LOAD_RATE") {
            Some(_) => Some(env_number("LOAD_RATE", 1000.0, 1.0, 100_000.0, &mut notes)?),
            None => None,
        };
        let mixed = match std::env::var_os("LOAD_MIXED") {
            Some(_) => Some(env_rate("LOAD_MIXED", 50_000.0, &mut notes)?),
            None => None,
        };
        let cache_mib = match std::env::var_os("LOAD_CACHE_MIB") {
            Some(_) => Some(env_number("LOAD_CACHE_MIB", 64.0, 1.0, 4096.0, &mut notes)? as u64),
            None => None,
        };
        let backlog_mib = match std::env::var_os("LOAD_BACKLOG_MIB") {
            Some(_) => Some(env_number("LOAD_BACKLOG_MIB", 64.0, 1.0, 4096.0, &mut notes)? as u64),
            None => None,
        };
        let huge = match std::env::var_os("LOAD_HUGE") {
            Some(_) => Some(env_number(
                "LOAD_HUGE",
                1048576.0,
                1.0,
                1073741824.0,
                &mut notes,
            )?),
            None => None,
        };
        Ok(Params {
            smoke: false,
            senders,
            fetchers: fetchers as usize,
            seconds: Duration::from_secs_f64(seconds),
            warmup: Duration::from_secs_f64(warmup),
            size: size as usize,
            disk: Duration::from_secs_f64(disk),
            rate,
            mixed,
            huge: huge.map(|bytes| bytes as usize),
            handshakes: std::env::var("LOAD_HANDSHAKES").is_ok_and(|v| v.trim() == "1"),
            ceiling: !std::env::var("LOAD_CEILING").is_ok_and(|v| v.trim() == "0"),
            drain: !std::env::var("LOAD_DRAIN").is_ok_and(|v| v.trim() == "0"),
            server: ServerOptions {
                cache_mib,
                backlog_mib,
                request_log: std::env::var("LOAD_REQUEST_LOG").is_ok_and(|v| v.trim() == "1"),
            },
            dir: std::env::var_os("LOAD_DIR").map(PathBuf::from),
            notes,
        })
    }

    /// The parameters as the environment assignments that reproduce the run.
    fn describe(&self) -> String {
        let rate = self
            .rate
            .map_or(String::new(), |rate| format!("LOAD_RATE={rate} "));
        let mixed = self
            .mixed
            .map_or(String::new(), |rate| format!("LOAD_MIXED={rate} "));
        let huge = self
            .huge
            .map_or(String::new(), |bytes| format!("LOAD_HUGE={bytes} "));
        let cache = self
            .server
            .cache_mib
            .map_or(String::new(), |mib| format!("LOAD_CACHE_MIB={mib} "));
        let backlog = self
            .server
            .backlog_mib
            .map_or(String::new(), |mib| format!("LOAD_BACKLOG_MIB={mib} "));
        let handshakes = if self.handshakes {
            "LOAD_HANDSHAKES=1 "
        } else {
            ""
        };
        let drain = if self.drain { "" } else { "LOAD_DRAIN=0 " };
        let request_log = if self.server.request_log {
            "LOAD_REQUEST_LOG=1 "
        } else {
            ""
        };
        format!(
            "{cache}{backlog}{drain}{request_log}{handshakes}{huge}{mixed}{rate}LOAD_SENDERS={} LOAD_FETCHERS={} LOAD_SECONDS={} LOAD_WARMUP={} LOAD_SIZE={} \
             LOAD_DISK_SECONDS={}",
            self.senders,
            self.fetchers,
            self.seconds.as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.size,
            self.disk.as_secs_f64()
        )
    }
}

/// A number from the environment: unparsable is an error, out of bounds is clamped.
fn env_number(
    name: &str,
    default: f64,
    min: f64,
    max: f64,
    notes: &mut Vec<String>,
) -> Result<f64, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    let value: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{name}={text:?} is not a number"))?;
    let clamped = value.clamp(min, max);
    if clamped != value {
        notes.push(format!(
            "{name}={text} is out of [{min}, {max}]: using {clamped}"
        ));
    }
    Ok(clamped)
}

/// A rate per second from the environment, set: unparsable, zero or negative is an error
/// (a rate of nothing is not a mode), above `max` is clamped.
fn env_rate(name: &str, max: f64, notes: &mut Vec<String>) -> Result<f64, String> {
    let text = std::env::var(name).unwrap_or_default();
    let rate = env_number(name, 0.0, 0.0, max, notes)?;
    if rate <= 0.0 {
        return Err(format!(
            "{name}={text:?} is not a rate: give messages per second above 0, or unset it"
        ));
    }
    Ok(rate)
}

/// The three phases in order, then the report. Progress goes to stderr and the report to
/// stdout, so that stdout can be pasted into `BENCHMARKS.md` as it is.
fn run(binary: &Path, params: &Params) -> Result<(), String> {
    let started_at = chrono::Utc::now();
    let load_before = read_trimmed("/proc/loadavg");
    for note in &params.notes {
        eprintln!("load: {note}");
    }
    eprintln!("load: {} with {}", binary.display(), params.describe());
    let dir = match &params.dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .map_err(|err| format!("temporary folder: {err}"))?;

    eprintln!("load: phase 1, raw fdatasync in {}", dir.path().display());
    let disk = raw_disk(dir.path(), params.disk).map_err(|err| format!("raw disk: {err}"))?;

    let identity_limit = params.senders.max(params.fetchers).max(64);
    let setup = server::prepare(dir.path(), identity_limit, params.server)?;

    let server = Server::start(binary, &setup.config)?;
    let url = format!("https://127.0.0.1:{}", server.port);
    let pid = server.pid();
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    if let Some(size) = params.huge {
        eprintln!("load: one message of {size} data bytes on {url} (server pid {pid})");
        let huge = runtime.block_on(huge::huge(
            size,
            &url,
            &setup.portal_tls,
            &setup.bygglov_tls,
            pid,
        ))?;
        drop(runtime);
        let stopped = server.stop();
        println!();
        println!(
            "### shsd one large message, {}",
            started_at.format("%Y-%m-%d %H:%M UTC")
        );
        println!();
        println!("`{} cargo bench --bench load`", params.describe());
        println!();
        println!(
            "Load average {} before, {} after; raw fdatasync {:.0}/s in the same run.",
            load_before,
            read_trimmed("/proc/loadavg"),
            disk.rate()
        );
        println!();
        huge::print(&huge);
        let (stop_time, status, log) = stopped?;
        report::shutdown(stop_time, status, &log);
        return huge.outcome.and(huge.fetched);
    }
    if params.handshakes {
        eprintln!("load: new connections on {url} (server pid {pid})");
        let result =
            runtime.block_on(handshake::handshakes(params, &url, &setup.bygglov_tls, pid))?;
        drop(runtime);
        let stopped = server.stop();
        println!();
        println!(
            "### shsd mutual-TLS handshakes, {}",
            started_at.format("%Y-%m-%d %H:%M UTC")
        );
        println!();
        println!("`{} cargo bench --bench load`", params.describe());
        println!();
        println!(
            "Load average {} before, {} after. Session resumption off: every connection is a \
             full handshake with a client certificate.",
            load_before,
            read_trimmed("/proc/loadavg"),
        );
        println!();
        handshake::print(params, &result);
        let (stop_time, status, log) = stopped?;
        report::shutdown(stop_time, status, &log);
        return if result.latencies.is_empty() {
            Err("no connection succeeded".to_owned())
        } else {
            Ok(())
        };
    }
    let products = phases::products(params.fetchers);
    let admin_port = server.admin_port();
    let scrape_syncs = || {
        admin_port.and_then(|port| {
            syncs::scrape(port)
                .map_err(|err| eprintln!("load: {err}"))
                .ok()
        })
    };
    let before_intake = scrape_syncs();
    let threads_before = proc::thread_cpu(pid);
    eprintln!("load: phase 2, intake on {url} (server pid {pid})");
    let intake = runtime.block_on(intake(params, &url, &setup.portal_tls, &products, pid))?;
    let after_intake = scrape_syncs();
    let drain = match (params.drain, admin_port, &before_intake, &after_intake) {
        (true, Some(port), Some(before), Some(after)) => {
            eprintln!("load: waiting for the index to take the intake's backlog");
            syncs::drain(port, before, after)
        }
        _ => None,
    };
    let before_fetch = if drain.is_some() {
        scrape_syncs()
    } else {
        after_intake
    };
    let threads_at_fetch = proc::thread_cpu(pid);
    let intake_threads = proc::threads_between(&threads_before, threads_at_fetch.clone());
    eprintln!("load: phase 3, fetch+ack{}", alongside(params));
    let (fetch, mixed) = runtime.block_on(mixed::fetch_ack(
        params,
        &url,
        &setup.portal_tls,
        &setup.bygglov_tls,
        &products,
        &intake.accepted_per_product,
        pid,
    ))?;
    let after_fetch = scrape_syncs();
    let fetch_threads = proc::threads_between(&threads_at_fetch, proc::thread_cpu(pid));
    let group_commit = syncs::ShsdSyncs {
        intake: before_intake
            .zip(after_intake)
            .map(|(before, after)| syncs::PhaseSyncs::between(before, after)),
        fetch: before_fetch
            .zip(after_fetch)
            .map(|(before, after)| syncs::PhaseSyncs::between(before, after)),
        drain,
        intake_threads,
        fetch_threads,
    };
    let shsd = Measured {
        intake,
        fetch,
        mixed,
    };
    let stopped = server.stop();
    let ceiling = if params.ceiling {
        eprintln!("load: phase 4, the same intake on the ceiling server");
        let ceiling = Server::start_ceiling(&setup.config)?;
        let url = format!("https://127.0.0.1:{}", ceiling.port);
        let pid = ceiling.pid();
        let intake = runtime.block_on(phases::intake(
            params,
            &url,
            &setup.portal_tls,
            &products,
            pid,
        ))?;
        eprintln!(
            "load: phase 5, the same fetch+ack on the ceiling server{}",
            alongside(params)
        );
        let (fetch, mixed) = runtime.block_on(mixed::fetch_ack(
            params,
            &url,
            &setup.portal_tls,
            &setup.bygglov_tls,
            &products,
            &intake.accepted_per_product,
            pid,
        ))?;
        drop(ceiling);
        Some(Measured {
            intake,
            fetch,
            mixed,
        })
    } else {
        None
    };
    drop(runtime);
    // Again, to show how much the shared disk moved during the run.
    let disk_after = raw_disk(dir.path(), params.disk).map_err(|err| format!("raw disk: {err}"))?;

    let report = Report {
        params,
        started_at,
        load_before,
        load_after: read_trimmed("/proc/loadavg"),
        binary,
        disk_dir: dir.path(),
        disk: &disk,
        disk_after: &disk_after,
        shsd: &shsd,
        group_commit: &group_commit,
        ceiling: ceiling.as_ref(),
        identity_limit,
    };
    report.print();
    let (stop_time, status, log) = stopped?;
    report::shutdown(stop_time, status, &log);
    if !status.success() {
        return Err(format!("shsd exited with {status}"));
    }
    let mixed_moved = shsd
        .mixed
        .as_ref()
        .is_none_or(|mixed| mixed.accepted_total > 0);
    if params.smoke && (shsd.intake.accepted_total == 0 || shsd.fetch.pairs == 0 || !mixed_moved) {
        return Err("the smoke run moved no message".to_owned());
    }
    Ok(())
}

/// ", with intake at N/s alongside" for the progress lines of phases 3 and 5.
fn alongside(params: &Params) -> String {
    params.mixed.map_or(String::new(), |rate| {
        format!(", with intake at {rate}/s alongside")
    })
}
