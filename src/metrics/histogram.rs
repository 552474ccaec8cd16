//! Duration histograms with fixed bucket bounds: the request latencies, and the disk syncs
//! of the store's group committer ([`SyncRecorder`]), which the store records into and the
//! scrape reads as a [`SyncSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{bump, read};

/// Upper bounds, in seconds, of the store-sync histogram's buckets (`+Inf` is implied). A
/// sync of the write-ahead log on a local SSD takes a fraction of a millisecond; every
/// write acknowledged after it waited as long, so the slow end is what an operator looks
/// for when requests stall.
pub const SYNC_BUCKETS: [f64; 12] = [
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0,
];

/// Per-bucket counts for `N` bounds (made cumulative when rendered; a value above the last
/// bound is only in the count), the sum in microseconds, and the count.
#[derive(Debug)]
pub(super) struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    pub(super) fn observe(&self, bounds: &[f64; N], elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = bounds.iter().position(|bound| seconds <= *bound) {
            bump(&self.buckets[bucket]);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        bump(&self.count);
    }

    /// The counts now. The count is read after the buckets, so that a value observed
    /// during the read cannot make it smaller than the buckets' sum.
    pub(super) fn snapshot(&self) -> HistogramSnapshot<N> {
        let buckets = std::array::from_fn(|i| read(&self.buckets[i]));
        let sum_micros = read(&self.sum_micros);
        let count = read(&self.count).max(buckets.iter().sum());
        HistogramSnapshot {
            buckets,
            sum_micros,
            count,
        }
    }
}

/// A histogram's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    /// Values per bucket, not cumulative.
    pub buckets: [u64; N],
    /// The sum of all values, in microseconds.
    pub sum_micros: u64,
    /// How many values, those above the last bound included.
    pub count: u64,
}

impl<const N: usize> Default for HistogramSnapshot<N> {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; N],
            sum_micros: 0,
            count: 0,
        }
    }
}

/// The store's disk syncs: how long each took ([`SYNC_BUCKETS`]) and how many writes it
/// made durable, so that `writes / count` is the group commit's batch size.
#[derive(Debug, Default)]
pub struct SyncRecorder {
    durations: Histogram<{ SYNC_BUCKETS.len() }>,
    writes: AtomicU64,
}

impl SyncRecorder {
    /// One sync ended after `took`, making `writes` writes durable.
    pub fn synced(&self, took: Duration, writes: u64) {
        self.durations.observe(&SYNC_BUCKETS, took);
        self.writes.fetch_add(writes, Ordering::Relaxed);
    }

    /// The syncs so far.
    pub fn snapshot(&self) -> SyncSnapshot {
        SyncSnapshot {
            durations: self.durations.snapshot(),
            writes: read(&self.writes),
        }
    }
}

/// What a [`SyncRecorder`] holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncSnapshot {
    /// How long the syncs took.
    pub durations: HistogramSnapshot<{ SYNC_BUCKETS.len() }>,
    /// Writes the syncs made durable, summed.
    pub writes: u64,
}
