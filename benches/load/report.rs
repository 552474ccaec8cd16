//! The run's result as Markdown, ready to paste into `BENCHMARKS.md`: a header naming the
//! command, the machine and the conditions that shape the numbers, one table row per
//! phase (and per request kind of phase 3, and for the intake alongside it with
//! `LOAD_MIXED`), then notes on throughput, usage and errors.

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use crate::Params;
use crate::disk::Disk;
use crate::phases::{Fetch, Intake, MAX_HITS};
use crate::proc::{Usage, read_trimmed};
use crate::stats::{Percentiles, ms};
use crate::syncs::ShsdSyncs;

/// Everything the report shows, gathered by `run`.
pub struct Report<'a> {
    pub params: &'a Params,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub load_before: String,
    pub load_after: String,
    pub binary: &'a Path,
    pub disk_dir: &'a Path,
    pub disk: &'a Disk,
    pub disk_after: &'a Disk,
    pub shsd: &'a Measured,
    /// shsd's disk syncs per phase, from its own metrics.
    pub group_commit: &'a ShsdSyncs,
    /// The same intake and fetch+ack against the ceiling server, if measured.
    pub ceiling: Option<&'a Measured>,
    pub identity_limit: usize,
}

/// What one server (shsd or the ceiling) did: intake, then fetch+ack, with the intake that
/// ran alongside fetch+ack under `LOAD_MIXED`.
pub struct Measured {
    pub intake: Intake,
    pub fetch: Fetch,
    pub mixed: Option<Intake>,
}

impl Report<'_> {
    /// Prints the report on stdout (progress lines go to stderr, so stdout is the report).
    pub fn print(&self) {
        self.header();
        self.table();
        self.notes();
    }

    fn header(&self) {
        let p = self.params;
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let built = std::fs::metadata(self.binary)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%H:%M UTC")
                    .to_string()
            })
            .unwrap_or_default();
        let kind = if p.smoke {
            " (smoke run: not a measurement)"
        } else {
            ""
        };
        println!();
        println!(
            "### shsd end-to-end load, {}{kind}",
            self.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        println!();
        println!("`{} cargo bench --bench load`", p.describe());
        println!();
        println!(
            "Machine: {model}, {cpus} CPUs (nproc), Linux {}; load average {} before, {} after. \
             Binary {} (built {built}); store and probe in {}. sled store, \
             max_requests_per_identity {}. The clients run on the same machine.",
            read_trimmed("/proc/sys/kernel/osrelease"),
            first_three(&self.load_before),
            first_three(&self.load_after),
            self.binary.display(),
            self.disk_dir.display(),
            self.identity_limit,
        );
        println!();
        // The split shapes the list numbers: a filtered list walks the store's per-product
        // index, not the whole mailbox. Say so, so that nobody compares them with
        // unfiltered lists.
        println!(
            "Work split by product: sender k sends product k mod {}; each of the {} fetch+ack \
             clients lists only its own product (`producttype=…&maxhits={MAX_HITS}`), so every \
             list is filtered and served by the store's per-product index.",
            p.fetchers, p.fetchers,
        );
        println!();
        if let Some(rate) = p.rate {
            println!(
                "Intake is open loop: the senders start {rate:.0} messages per second in all on a \
                 fixed schedule, and each latency counts from the message's scheduled start \
                 (queueing included)."
            );
            println!();
        }
        if let Some(rate) = p.mixed {
            println!(
                "Fetch+ack runs with intake alongside (`LOAD_MIXED`): after the fetch+ack \
                 clients connect, the senders start {rate:.0} messages per second in all on a \
                 fixed schedule to the same mailbox and products, for a {:.1} s warm-up alone \
                 and then for the whole fetch+ack window, so fetch+ack ends at time-up; the \
                 server columns of the fetch+ack rows cover both together.",
                p.warmup.as_secs_f64()
            );
            println!();
        }
    }

    fn table(&self) {
        let (p, disk) = (self.params, self.disk);
        let (intake, fetch) = (&self.shsd.intake, &self.shsd.fetch);
        println!(
            "| phase | ops/s | p50 ms | p90 ms | p99 ms | max ms | ops | errors | server CPU | server peak RSS |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let disk_rate = disk.rate();
        row(
            "raw fdatasync, 4 KiB append, 1 writer",
            Some(disk_rate),
            &disk.latencies,
            0,
            None,
        );
        let after = self.disk_after;
        row(
            "raw fdatasync again, after the run",
            Some(after.rate()),
            &after.latencies,
            0,
            None,
        );
        let intake_rate = intake.latencies.len() as f64 / intake.window.as_secs_f64();
        let intake_errors = intake.errors.values().sum();
        let offered = p
            .rate
            .map_or(String::new(), |rate| format!(" at a fixed {rate:.0}/s"));
        row(
            &format!(
                "intake {} B, {} senders{offered} ({:.2}× fdatasync/s)",
                p.size,
                p.senders,
                intake_rate / disk_rate
            ),
            Some(intake_rate),
            &intake.latencies,
            intake_errors,
            Some(&intake.usage),
        );
        if let Some(ceiling) = self.ceiling.map(|c| &c.intake) {
            let ceiling_rate = ceiling.latencies.len() as f64 / ceiling.window.as_secs_f64();
            row(
                &format!(
                    "ceiling: the same intake, TLS + body + group-committed fdatasync only \
                     (shsd reaches {:.2}× of it)",
                    intake_rate / ceiling_rate
                ),
                Some(ceiling_rate),
                &ceiling.latencies,
                ceiling.errors.values().sum(),
                Some(&ceiling.usage),
            );
        }
        let fetch_rate = fetch.pairs as f64 / fetch.elapsed.as_secs_f64().max(1e-9);
        let fetch_errors = fetch.errors.values().sum();
        let both = if p.mixed.is_some() {
            " with the intake below alongside (server CPU and RSS: both together)"
        } else {
            ""
        };
        row(
            &format!("fetch+ack pairs, {} clients{both}", p.fetchers),
            Some(fetch_rate),
            &fetch.pair,
            fetch_errors,
            Some(&fetch.usage),
        );
        row(
            &format!("  list (maxhits={MAX_HITS}, one product)"),
            None,
            &fetch.list,
            0,
            None,
        );
        row("  fetch", None, &fetch.fetch, 0, None);
        row(
            "  ack (durable, makes a confirm)",
            None,
            &fetch.ack,
            0,
            None,
        );
        let mixed_rate = self.shsd.mixed.as_ref().map(|mixed| {
            let rate = intake_rate_of(mixed);
            row(
                &format!(
                    "intake during fetch+ack (LOAD_MIXED={}/s), {} B, {} senders (server \
                     columns: in the fetch+ack row)",
                    offered_rate(p),
                    p.size,
                    p.senders
                ),
                Some(rate),
                &mixed.latencies,
                mixed.errors.values().sum(),
                None,
            );
            rate
        });
        let Some(ceiling) = self.ceiling else {
            println!();
            return;
        };
        let fetch = &ceiling.fetch;
        let ceiling_rate = fetch.pairs as f64 / fetch.elapsed.as_secs_f64().max(1e-9);
        row(
            &format!(
                "ceiling: the same fetch+ack{}, TLS + list from memory + body read back + \
                 group-committed fdatasync per ack only (shsd reaches {:.2}× of it)",
                if p.mixed.is_some() {
                    " with the same intake alongside (server CPU and RSS: both together)"
                } else {
                    ""
                },
                fetch_rate / ceiling_rate
            ),
            Some(ceiling_rate),
            &fetch.pair,
            fetch.errors.values().sum(),
            Some(&fetch.usage),
        );
        if let (Some(mixed), Some(shsd_rate)) = (&ceiling.mixed, mixed_rate) {
            let rate = intake_rate_of(mixed);
            row(
                &format!(
                    "ceiling: intake during fetch+ack (LOAD_MIXED={}/s) (shsd reaches {:.2}× \
                     of it; server columns: in the row above)",
                    offered_rate(p),
                    shsd_rate / rate.max(1e-9)
                ),
                Some(rate),
                &mixed.latencies,
                mixed.errors.values().sum(),
                None,
            );
        }
        println!();
    }

    fn notes(&self) {
        let (intake, fetch) = (&self.shsd.intake, &self.shsd.fetch);
        let seconds: Vec<String> = intake.per_second.iter().map(u64::to_string).collect();
        println!("- Intake per second of the window: {}.", seconds.join(" "));
        println!(
            "- Intake accepted {} messages in all (warm-up and tail included), {} errors outside the window.",
            intake.accepted_total, intake.errors_outside
        );
        usage_line(
            "Intake window",
            &intake.usage,
            intake.latencies.len() as u64,
        );
        let describe = |phase: Option<crate::syncs::PhaseSyncs>| {
            phase.map_or("not read".to_owned(), |phase| phase.describe())
        };
        println!(
            "- Group commit, from shsd's `/metrics` (whole phases, warm-up included): intake: {}; \
             fetch+ack: {}.",
            describe(self.group_commit.intake),
            describe(self.group_commit.fetch)
        );
        thread_split(
            &format!(
                "Intake's server CPU by thread, µs per accepted message (warm-up{} included)",
                if self.group_commit.drain.is_some() {
                    " and the index's catch-up"
                } else {
                    ""
                }
            ),
            &self.group_commit.intake_threads,
            intake.accepted_total,
        );
        thread_split(
            &format!(
                "Fetch+ack's server CPU by thread, µs per pair{}",
                if self.shsd.mixed.is_some() {
                    " (the intake alongside included)"
                } else {
                    ""
                }
            ),
            &self.group_commit.fetch_threads,
            fetch.pairs,
        );
        if let Some(drain) = &self.group_commit.drain {
            const MIB: f64 = 1024.0 * 1024.0;
            println!(
                "- Index backlog (writes in shsd's log that sled does not have yet) when intake \
                 ended: {:.1} of its {:.0} MiB; writes that waited for room during intake: {:.0}; \
                 {}.",
                drain.at_end.bytes / MIB,
                drain.at_end.limit_bytes / MIB,
                drain.waits_in_intake,
                match drain.took {
                    Some(took) => format!(
                        "the index had all of it {:.1} s later, and fetch+ack started then",
                        took.as_secs_f64()
                    ),
                    None => format!(
                        "it was not empty {} s later; fetch+ack started anyway",
                        crate::syncs::DRAIN_AT_MOST.as_secs()
                    ),
                }
            );
        }
        match (fetch.expected, &self.shsd.mixed) {
            (Some(expected), _) => println!(
                "- Fetch+ack: {} of {expected} messages in {:.2} s{}; {} empty lists.",
                fetch.pairs,
                fetch.elapsed.as_secs_f64(),
                if fetch.pairs == expected {
                    ", mailbox emptied"
                } else {
                    ", time up"
                },
                fetch.empty_lists
            ),
            (None, mixed) => println!(
                "- Fetch+ack: {} messages in {:.2} s, time up (intake alongside); {} empty \
                 lists; {} messages were there before it and {} arrived alongside (warm-up \
                 included).",
                fetch.pairs,
                fetch.elapsed.as_secs_f64(),
                fetch.empty_lists,
                intake.accepted_total,
                mixed.as_ref().map_or(0, |mixed| mixed.accepted_total),
            ),
        }
        match &self.shsd.mixed {
            Some(mixed) => {
                let seconds: Vec<String> = mixed.per_second.iter().map(u64::to_string).collect();
                println!(
                    "- Intake during fetch+ack per second of the window: {}; {} errors outside \
                     the window.",
                    seconds.join(" "),
                    mixed.errors_outside
                );
                let ops = fetch.pairs + mixed.latencies.len() as u64;
                usage_line("Fetch+ack with intake alongside", &fetch.usage, ops);
            }
            None => usage_line("Fetch+ack", &fetch.usage, fetch.pairs),
        }
        errors("Error", self.shsd);
        if let Some(ceiling) = self.ceiling {
            println!(
                "- Ceiling: intake accepted {} messages; fetch+ack {} pairs in {:.2} s, {} empty lists{}.",
                ceiling.intake.accepted_total,
                ceiling.fetch.pairs,
                ceiling.fetch.elapsed.as_secs_f64(),
                ceiling.fetch.empty_lists,
                ceiling
                    .mixed
                    .as_ref()
                    .map_or(String::new(), |mixed| format!(
                        "; intake during fetch+ack accepted {} messages",
                        mixed.accepted_total
                    )),
            );
            usage_line(
                "Ceiling's intake window",
                &ceiling.intake.usage,
                ceiling.intake.latencies.len() as u64,
            );
            errors("Ceiling error", ceiling);
        }
    }
}

/// The shutdown note, printed after `Report::print` because the server is stopped only
/// once the report's data is in; with the first lines the server logged, if any.
pub fn shutdown(took: Duration, status: ExitStatus, log: &[String]) {
    println!(
        "- Shutdown (SIGTERM → exit, drain + flush): {:.2} s, {status}.",
        took.as_secs_f64()
    );
    if !log.is_empty() {
        println!(
            "- Server logged {} warning/error lines; first ones:",
            log.len()
        );
        for line in log.iter().take(5) {
            println!("  `{}`", line.chars().take(300).collect::<String>());
        }
    }
}

/// One error line per kind: intake's and fetch+ack's, then the intake's alongside.
fn errors(what: &str, measured: &Measured) {
    for (kind, n) in measured.intake.errors.iter().chain(&measured.fetch.errors) {
        println!("- {what} ×{n}: {kind}");
    }
    for (kind, n) in measured.mixed.iter().flat_map(|mixed| &mixed.errors) {
        println!("- {what} ×{n} (intake during fetch+ack): {kind}");
    }
}

/// Messages accepted per second of an intake's measured window.
fn intake_rate_of(intake: &Intake) -> f64 {
    intake.latencies.len() as f64 / intake.window.as_secs_f64().max(1e-9)
}

/// `LOAD_MIXED` as given, for the row names.
fn offered_rate(params: &Params) -> String {
    params.mixed.map_or(String::new(), |rate| format!("{rate}"))
}

/// One table row; "–" where a column does not apply.
fn row(name: &str, rate: Option<f64>, latencies: &[Duration], errors: u64, usage: Option<&Usage>) {
    let percentiles = Percentiles::of(latencies);
    let pick = |q: f64| percentiles.at(q).map_or("–".to_owned(), ms);
    let (cpu, rss) = match usage {
        Some(u) => (
            u.server_cpu.map_or("–".to_owned(), |s| {
                format!("{s:.1} s ({:.2} cores)", s / u.wall.max(1e-9))
            }),
            u.peak_rss_kib.map_or("–".to_owned(), |k| {
                format!(
                    "{:.0} MiB{}",
                    k as f64 / 1024.0,
                    if u.peak_reset { "" } else { " (since start)" }
                )
            }),
        ),
        None => ("–".to_owned(), "–".to_owned()),
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {errors} | {cpu} | {rss} |",
        rate.map_or("–".to_owned(), |r| format!("{r:.0}")),
        pick(0.50),
        pick(0.90),
        pick(0.99),
        pick(1.0),
        latencies.len(),
    )
}

/// One note line with a latency distribution.
pub fn latency_line(what: &str, latencies: &[Duration]) {
    let percentiles = Percentiles::of(latencies);
    let pick = |q: f64| percentiles.at(q).map_or("–".to_owned(), ms);
    println!(
        "- {what}: {} times; p50 {} ms, p90 {} ms, p99 {} ms, max {} ms.",
        latencies.len(),
        pick(0.5),
        pick(0.9),
        pick(0.99),
        pick(1.0)
    );
}

/// A phase's wall time, CPU and bytes written, per operation too: with the clients'
/// CPU beside the server's, the two cores' budget per operation can be checked (2 cores
/// at 20 000/s leave 100 µs per operation for both).
fn usage_line(phase: &str, usage: &Usage, ops: u64) {
    let cpu = |s: Option<f64>| {
        s.map_or("?".to_owned(), |s| {
            format!("{s:.1} s ({:.0} µs per op)", s * 1e6 / ops.max(1) as f64)
        })
    };
    let amount = |bytes: Option<u64>| {
        bytes.map_or("?".to_owned(), |bytes| {
            format!(
                "{:.0} MiB ({:.0} KiB per op)",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1024.0 / ops.max(1) as f64
            )
        })
    };
    println!(
        "- {phase}: {:.2} s wall; server CPU {}, bench process (the clients) CPU {}; server \
         write() calls {}, storage writes {}.",
        usage.wall,
        cpu(usage.server_cpu),
        cpu(usage.own_cpu),
        amount(usage.syscall_written),
        amount(usage.written),
    );
    if !usage.rss_trace_kib.is_empty() {
        let trace: Vec<String> = usage
            .rss_trace_kib
            .iter()
            .map(|kib| format!("{:.0}", *kib as f64 / 1024.0))
            .collect();
        println!(
            "- {phase}: server RSS (MiB) at each second: {}.",
            trace.join(" ")
        );
    }
}

/// The 1, 5 and 15 minute averages of a `/proc/loadavg` line.
fn first_three(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line: CPU seconds by thread group as µs per operation, largest first.
fn thread_split(title: &str, threads: &std::collections::BTreeMap<String, f64>, ops: u64) {
    if threads.is_empty() || ops == 0 {
        return;
    }
    let per_op = |seconds: f64| seconds * 1e6 / ops as f64;
    let total: f64 = threads.values().sum();
    let mut split: Vec<(&String, &f64)> = threads.iter().filter(|(_, s)| **s > 0.0).collect();
    split.sort_by(|a, b| b.1.total_cmp(a.1));
    let split: Vec<String> = split
        .into_iter()
        .map(|(name, seconds)| format!("{name} {:.0}", per_op(*seconds)))
        .collect();
    println!(
        "- {title}: {:.0} in all: {}.",
        per_op(total),
        split.join(", ")
    );
}
