//! The group commit as shsd reports it: its disk syncs and the writes they made durable
//! (`shsd_store_sync_duration_seconds`, `shsd_store_synced_writes_total`), read from the
//! admin listener's `/metrics` before and after a phase, so the report can say how many
//! writes shared one sync.

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
}

/// shsd's syncs in the intake phase and in the fetch+ack phase (with the intake alongside
/// it under `LOAD_MIXED`), each from the phase's start to its end, warm-up included; `None`
/// where a scrape failed.
pub struct ShsdSyncs {
    pub intake: Option<PhaseSyncs>,
    pub fetch: Option<PhaseSyncs>,
}

/// What the syncs did between two scrapes.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSyncs {
    pub syncs: u64,
    pub writes: u64,
    pub seconds: f64,
}

impl PhaseSyncs {
    pub fn between(before: SyncCounters, after: SyncCounters) -> PhaseSyncs {
        PhaseSyncs {
            syncs: (after.syncs - before.syncs).max(0.0) as u64,
            writes: (after.writes - before.writes).max(0.0) as u64,
            seconds: (after.seconds - before.seconds).max(0.0),
        }
    }

    /// "N syncs made M writes durable: K writes per sync, each X ms on average".
    pub fn describe(&self) -> String {
        if self.syncs == 0 {
            return "no disk sync".to_owned();
        }
        format!(
            "{} disk syncs made {} writes durable: {:.1} writes per sync, {:.2} ms per sync \
             on average",
            self.syncs,
            self.writes,
            self.writes as f64 / self.syncs as f64,
            self.seconds * 1e3 / self.syncs as f64
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
    let mut seen = 0;
    for line in response.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let slot = match series {
            "shsd_store_sync_duration_seconds_count" => &mut counters.syncs,
            "shsd_store_sync_duration_seconds_sum" => &mut counters.seconds,
            "shsd_store_synced_writes_total" => &mut counters.writes,
            _ => continue,
        };
        *slot = value
            .parse()
            .map_err(|_| format!("/metrics: {series} is not a number: {value}"))?;
        seen += 1;
    }
    if seen < 3 {
        return Err("/metrics has no store sync series".to_owned());
    }
    Ok(counters)
}
