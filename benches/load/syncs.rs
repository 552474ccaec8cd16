//! The group commit as shsd reports it: its disk syncs and the writes they made durable
//! (`shsd_store_sync_duration_seconds`, `shsd_store_synced_writes_total`), read from the
//! admin listener's `/metrics` before and after a phase, so the report can say how many
//! writes shared one sync. Also the index backlog (`shsd_store_index_backlog_bytes` and
//! its companions): what the log holds that sled does not have yet, which the bench lets
//! drain between intake and fetch+ack. The histogram's buckets also give the slow syncs
//! of each phase, so a latency stall in the report can be told from a slow disk.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// shsd's sync counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCounters {
    syncs: f64,
    seconds: f64,
    writes: f64,
    /// Syncs that took longer than 10 ms and than 50 ms (the histogram's buckets).
    over_10ms: f64,
    over_50ms: f64,
    /// `None` from a build without the backlog series.
    pub backlog: Option<Backlog>,
}

/// The index backlog at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub bytes: f64,
    pub limit_bytes: f64,
    pub waits: f64,
}

/// shsd's syncs in the intake phase and in the fetch+ack phase (with the intake alongside
/// it under `LOAD_MIXED`), each from the phase's start to its end, warm-up included; `None`
/// where a scrape failed.
pub struct ShsdSyncs {
    pub intake: Option<PhaseSyncs>,
    pub fetch: Option<PhaseSyncs>,
    /// The wait for the index between the two (`LOAD_DRAIN`, on by default).
    pub drain: Option<Drain>,
    /// The server's CPU seconds by thread from intake's start to fetch+ack's (so with the
    /// index's catch-up when the bench waits for it).
    pub intake_threads: std::collections::BTreeMap<String, f64>,
    /// The same for the fetch+ack phase (with the intake alongside under `LOAD_MIXED`).
    pub fetch_threads: std::collections::BTreeMap<String, f64>,
}

/// What the syncs did between two scrapes.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSyncs {
    pub syncs: u64,
    pub writes: u64,
    pub seconds: f64,
    pub over_10ms: u64,
    pub over_50ms: u64,
}

impl PhaseSyncs {
    pub fn between(before: SyncCounters, after: SyncCounters) -> PhaseSyncs {
        PhaseSyncs {
            syncs: (after.syncs - before.syncs).max(0.0) as u64,
            writes: (after.writes - before.writes).max(0.0) as u64,
            seconds: (after.seconds - before.seconds).max(0.0),
            over_10ms: (after.over_10ms - before.over_10ms).max(0.0) as u64,
            over_50ms: (after.over_50ms - before.over_50ms).max(0.0) as u64,
        }
    }

    /// "N syncs made M writes durable: K writes per sync, each X ms on average, A over
    /// 10 ms, B over 50 ms".
    pub fn describe(&self) -> String {
        if self.syncs == 0 {
            return "no disk sync".to_owned();
        }
        format!(
            "{} disk syncs made {} writes durable: {:.1} writes per sync, {:.2} ms per sync \
             on average, {} over 10 ms, {} over 50 ms",
            self.syncs,
            self.writes,
            self.writes as f64 / self.syncs as f64,
            self.seconds * 1e3 / self.syncs as f64,
            self.over_10ms,
            self.over_50ms
        )
    }
}

/// Reads the counters from the admin listener on `port` (plain HTTP on loopback).
pub fn scrape(port: u16) -> Result<SyncCounters, String> {
    let fail = |err: std::io::Error| format!("scraping /metrics on port {port}: {err}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream
        .set_read_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(fail)?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(fail)?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(fail)?;
    let mut counters = SyncCounters::default();
    let mut backlog = Backlog::default();
    let (mut seen, mut seen_backlog) = (0, 0);
    // Cumulative bucket counts; a sync over a bound is the count minus its bucket.
    let (mut within_10ms, mut within_50ms) = (None, None);
    for line in response.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let bucket = match series {
            r#"shsd_store_sync_duration_seconds_bucket{le="0.01"}"# => Some(&mut within_10ms),
            r#"shsd_store_sync_duration_seconds_bucket{le="0.05"}"# => Some(&mut within_50ms),
            _ => None,
        };
        if let Some(bucket) = bucket {
            *bucket = value.parse::<f64>().ok();
            continue;
        }
        let (slot, counted) = match series {
            "shsd_store_sync_duration_seconds_count" => (&mut counters.syncs, &mut seen),
            "shsd_store_sync_duration_seconds_sum" => (&mut counters.seconds, &mut seen),
            "shsd_store_synced_writes_total" => (&mut counters.writes, &mut seen),
            "shsd_store_index_backlog_bytes" => (&mut backlog.bytes, &mut seen_backlog),
            "shsd_store_index_backlog_limit_bytes" => (&mut backlog.limit_bytes, &mut seen_backlog),
            "shsd_store_backlog_waits_total" => (&mut backlog.waits, &mut seen_backlog),
            _ => continue,
        };
        *slot = value
            .parse()
            .map_err(|_| format!("/metrics: {series} is not a number: {value}"))?;
        *counted += 1;
    }
    if seen < 3 {
        return Err("/metrics has no store sync series".to_owned());
    }
    let (Some(within_10ms), Some(within_50ms)) = (within_10ms, within_50ms) else {
        return Err("/metrics has no sync buckets for 10 and 50 ms".to_owned());
    };
    counters.over_10ms = counters.syncs - within_10ms;
    counters.over_50ms = counters.syncs - within_50ms;
    counters.backlog = (seen_backlog == 3).then_some(backlog);
    Ok(counters)
}

/// How the index caught up after intake: the backlog when intake ended, the writes that
/// had waited for room during intake, and how long the backlog took to empty.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub at_end: Backlog,
    pub waits_in_intake: f64,
    /// `None` if it did not empty within [`DRAIN_AT_MOST`].
    pub took: Option<Duration>,
}

/// How long the bench waits for the backlog to empty before it goes on regardless.
pub const DRAIN_AT_MOST: Duration = Duration::from_secs(120);

/// Waits (polling `/metrics`) until the index backlog is empty.
pub fn drain(
    port: u16,
    before_intake: &SyncCounters,
    after_intake: &SyncCounters,
) -> Option<Drain> {
    let at_end = after_intake.backlog?;
    let waits_in_intake = at_end.waits - before_intake.backlog.map_or(0.0, |b| b.waits);
    let started = std::time::Instant::now();
    let mut took = None;
    while started.elapsed() < DRAIN_AT_MOST {
        match scrape(port).map(|counters| counters.backlog) {
            Ok(Some(backlog)) if backlog.bytes == 0.0 => {
                took = Some(started.elapsed());
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => {
                eprintln!("load: {err}");
                return None;
            }
        }
    }
    Some(Drain {
        at_end,
        waits_in_intake,
        took,
    })
}
