//! The node's metrics (spec §11, §12): plain atomics in fixed arrays, recorded with one call
//! at each counting point and rendered in the Prometheus text format by the admin listener.
//!
//! No metrics crate: the label sets are closed enums, so a counter is an array slot and a
//! scrape is a walk over them. Recording never locks or allocates, so it is safe on every
//! request path. Depends on nothing of ours but [`ErrorCode`], so every layer may record.

mod histogram;
mod labels;
mod render;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::protocol::ErrorCode;

use histogram::Histogram;
pub use histogram::{HistogramSnapshot, SYNC_BUCKETS, SyncRecorder, SyncSnapshot};
use labels::slot;
pub use labels::{
    ADMIN_ACTIONS, EndpointLabel, Housekept, Limit, NoticeKind, Pushed, Received, STATUS_CLASSES,
    TlsFailure, status_class,
};
pub use render::CONTENT_TYPE;

/// Upper bounds, in seconds, of the request latency histogram's buckets (`+Inf` is
/// implied). From a millisecond list to a minute-long upload.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0,
];

const CODES: usize = ErrorCode::ALL.len();

/// Every counter and gauge of the node. One per process, owned by the broker.
#[derive(Debug, Default)]
pub struct Metrics {
    received: [AtomicU64; Received::ALL.len()],
    refused: [AtomicU64; CODES],
    delivered: AtomicU64,
    quarantined: [AtomicU64; CODES],
    fetched: AtomicU64,
    acknowledged: AtomicU64,
    notices: [AtomicU64; NoticeKind::ALL.len()],
    tls_failures: [AtomicU64; TlsFailure::ALL.len()],
    limits: [AtomicU64; Limit::ALL.len()],
    requests: [[AtomicU64; STATUS_CLASSES.len()]; EndpointLabel::ALL.len()],
    latency: [Histogram<{ LATENCY_BUCKETS.len() }>; EndpointLabel::ALL.len()],
    open_connections: AtomicI64,
    admin_actions: [AtomicU64; ADMIN_ACTIONS.len()],
    housekept: [AtomicU64; Housekept::ALL.len()],
    housekeeping_failures: AtomicU64,
    housekeeping_rounds: AtomicU64,
    pushed: [AtomicU64; Pushed::ALL.len()],
}

/// What the store reports at scrape time: read by the admin listener just before
/// rendering, because the registry itself never waits for the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Messages listed per mailbox (bare address), RECEIVED or FETCHED.
    pub mailbox_depths: Vec<(String, u64)>,
    /// The store's size on disk in bytes, where the engine knows it.
    pub size_on_disk: Option<u64>,
    /// Routing jobs waiting (NEW messages), capped at the count the scrape looked for.
    pub pending_jobs: u64,
    /// Of those, the ones waiting for another push attempt.
    pub push_retries_pending: u64,
    /// The store's disk syncs, where it runs its own (the embedded store's group commit).
    pub syncs: Option<SyncSnapshot>,
    /// Writes logged but not yet in the index, where the store keeps a log in front of
    /// its index (the embedded store).
    pub backlog: Option<BacklogSnapshot>,
}

/// The embedded store's index backlog: what its write-ahead log holds that the index
/// (sled) does not have yet. Writers wait while it is at its limit, so a backlog near
/// the limit means the index does not keep up with the traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogSnapshot {
    /// Bytes of writes awaiting or in a checkpoint, as the log counts them.
    pub bytes: u64,
    /// The limit (`[store] log_backlog_mib`).
    pub limit_bytes: u64,
    /// Checkpoints finished since start.
    pub checkpoints: u64,
    /// Writes that waited for room because the backlog was at its limit.
    pub waits: u64,
}

impl Metrics {
    /// A registry with every series at 0.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Intake's verdict on one message; `code` is the SHS code of a refusal.
    pub fn message_received(&self, outcome: Received, code: Option<ErrorCode>) {
        bump(&self.received[slot(&Received::ALL, outcome)]);
        if let (Received::Refused, Some(code)) = (outcome, code) {
            bump(&self.refused[slot(&ErrorCode::ALL, code)]);
        }
    }

    /// A routing job put a message into a local mailbox.
    pub fn message_delivered(&self) {
        bump(&self.delivered);
    }

    /// A routing job quarantined a message with `code`.
    pub fn message_quarantined(&self, code: ErrorCode) {
        bump(&self.quarantined[slot(&ErrorCode::ALL, code)]);
    }

    /// A message was streamed to its reader to the last byte.
    pub fn message_fetched(&self) {
        bump(&self.fetched);
    }

    /// A message was acknowledged for the first time.
    pub fn message_acknowledged(&self) {
        bump(&self.acknowledged);
    }

    /// The node stored a confirm or error message for a sender.
    pub fn notice_generated(&self, kind: NoticeKind) {
        bump(&self.notices[slot(&NoticeKind::ALL, kind)]);
    }

    /// A TLS handshake on the SHS listener failed.
    pub fn tls_handshake_failed(&self, reason: TlsFailure) {
        bump(&self.tls_failures[slot(&TlsFailure::ALL, reason)]);
    }

    /// A limit of spec §12 refused a request.
    pub fn limit_hit(&self, limit: Limit) {
        bump(&self.limits[slot(&Limit::ALL, limit)]);
    }

    /// One SHS request was answered with `status` after `elapsed` (until the response
    /// head; a fetch's streamed body is not included).
    pub fn request_answered(&self, endpoint: EndpointLabel, status: u16, elapsed: Duration) {
        let endpoint = slot(&EndpointLabel::ALL, endpoint);
        bump(&self.requests[endpoint][status_class(status)]);
        self.latency[endpoint].observe(&LATENCY_BUCKETS, elapsed);
    }

    /// Counts an open connection until the returned guard drops.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection { metrics: self }
    }

    /// An administrator performed `action` (one of [`ADMIN_ACTIONS`]).
    pub fn admin_action(&self, action: &str) {
        if let Some(slot) = ADMIN_ACTIONS.iter().position(|known| *known == action) {
            bump(&self.admin_actions[slot]);
        }
    }

    /// Housekeeping expired or removed one message.
    pub fn housekept(&self, what: Housekept) {
        bump(&self.housekept[slot(&Housekept::ALL, what)]);
    }

    /// One push attempt ended so.
    pub fn pushed(&self, outcome: Pushed) {
        bump(&self.pushed[slot(&Pushed::ALL, outcome)]);
    }

    /// A housekeeping round finished.
    pub fn housekeeping_round(&self) {
        bump(&self.housekeeping_rounds);
    }

    /// A housekeeping batch failed (the store refused); it is retried next round.
    pub fn housekeeping_failed(&self) {
        bump(&self.housekeeping_failures);
    }

    /// The registry in the Prometheus text exposition format 0.0.4, with the store's
    /// gauges as of this scrape.
    pub fn render(&self, store: &StoreGauges) -> String {
        render::render(self, store)
    }

    /// The traffic counters summed over their labels, for the console's overview (a
    /// person wants "how many", not one series per error code).
    pub fn totals(&self) -> Totals {
        let received = |outcome| read(&self.received[slot(&Received::ALL, outcome)]);
        Totals {
            accepted: received(Received::Accepted),
            duplicates: received(Received::Duplicate),
            refused: received(Received::Refused),
            failed: received(Received::Failed),
            delivered: read(&self.delivered),
            quarantined: self.quarantined.iter().map(read).sum(),
            fetched: read(&self.fetched),
            acknowledged: read(&self.acknowledged),
            tls_failures: self.tls_failures.iter().map(read).sum(),
            limit_rejections: self.limits.iter().map(read).sum(),
            open_connections: self.open_connections.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of the traffic counters since the process started; see [`Metrics::totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Messages accepted at intake (202, not duplicates).
    pub accepted: u64,
    /// Repeated sends answered with the original.
    pub duplicates: u64,
    /// Messages refused at intake (4xx).
    pub refused: u64,
    /// Messages that failed at intake for the node's reasons (5xx).
    pub failed: u64,
    /// Messages put into a local mailbox (generated confirms and errors included).
    pub delivered: u64,
    /// Messages quarantined, all error codes together.
    pub quarantined: u64,
    /// Fetches served.
    pub fetched: u64,
    /// Acknowledgements recorded.
    pub acknowledged: u64,
    /// TLS handshakes refused on the SHS listener, all reasons together.
    pub tls_failures: u64,
    /// Requests refused by a limit of spec §12, all limits together.
    pub limit_rejections: u64,
    /// SHS connections open now.
    pub open_connections: i64,
}

/// Holds one count in the open-connections gauge.
#[derive(Debug)]
pub struct OpenConnection<'a> {
    metrics: &'a Metrics,
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.metrics
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counters only need to be eventually visible to a scrape: relaxed ordering is enough.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests;
