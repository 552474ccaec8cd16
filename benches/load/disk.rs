//! Phase 1: the machine's raw single-writer fdatasync rate, measured in the folder that
//! holds the store. Every durable-intake number is bounded by it, so the report shows
//! intake as a multiple of this rate, and probes it again after the run to show how much
//! the shared disk moved meanwhile.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The latency of every 4 KiB append + `sync_data`, and how long the probe ran.
pub struct Disk {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Disk {
    /// Flushes per second over the whole probe.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Appends 4 KiB and syncs, in a loop, for `duration`, in a fresh file in `dir` that is
/// removed afterwards.
pub fn raw_disk(dir: &Path, duration: Duration) -> std::io::Result<Disk> {
    let path = dir.join("fdatasync-probe");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let block = [0xA5u8; 4096];
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Disk { latencies, elapsed })
}
