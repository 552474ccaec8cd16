//! The Prometheus text exposition format 0.0.4: per family a `# HELP` and a `# TYPE` line,
//! then one `name{labels} value` line per series. Label values are fixed ASCII words,
//! except mailbox names, which [`escape_label`] escapes.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::protocol::ErrorCode;

use super::labels::{
    ADMIN_ACTIONS, EndpointLabel, Housekept, Limit, NoticeKind, Pushed, Received, STATUS_CLASSES,
    TlsFailure,
};
use super::{
    BacklogSnapshot, HistogramSnapshot, LATENCY_BUCKETS, Metrics, SYNC_BUCKETS, StoreGauges,
    SyncSnapshot, read,
};

/// A label value as the exposition format wants it: backslash, double quote and newline
/// escaped (mailbox names come from configuration and labels).
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn render(metrics: &Metrics, store: &StoreGauges) -> String {
    let mut out = Exposition(String::with_capacity(16 * 1024));
    out.family(
        "shsd_messages_received_total",
        "counter",
        "Messages offered to intake, by outcome.",
    );
    for (outcome, counter) in Received::ALL.iter().zip(&metrics.received) {
        out.series(
            "shsd_messages_received_total",
            &[("outcome", outcome.as_str())],
            read(counter),
        );
    }
    out.by_code(
        "shsd_messages_refused_total",
        "Messages refused at intake for the sender's fault, by SHS error code.",
        &metrics.refused,
    );
    out.family(
        "shsd_messages_delivered_total",
        "counter",
        "Messages put into a local mailbox by routing (generated confirms and errors included).",
    );
    out.series(
        "shsd_messages_delivered_total",
        &[],
        read(&metrics.delivered),
    );
    out.by_code(
        "shsd_messages_quarantined_total",
        "Messages routing could not deliver, by SHS error code.",
        &metrics.quarantined,
    );
    out.family(
        "shsd_messages_fetched_total",
        "counter",
        "Messages streamed to their reader to the last byte.",
    );
    out.series("shsd_messages_fetched_total", &[], read(&metrics.fetched));
    out.family(
        "shsd_messages_acknowledged_total",
        "counter",
        "Messages acknowledged for the first time.",
    );
    out.series(
        "shsd_messages_acknowledged_total",
        &[],
        read(&metrics.acknowledged),
    );
    out.family(
        "shsd_notices_generated_total",
        "counter",
        "Confirm and error messages the node generated for senders.",
    );
    for (kind, counter) in NoticeKind::ALL.iter().zip(&metrics.notices) {
        out.series(
            "shsd_notices_generated_total",
            &[("kind", kind.as_str())],
            read(counter),
        );
    }
    out.family(
        "shsd_tls_handshake_failures_total",
        "counter",
        "Failed TLS handshakes on the SHS listener, by reason.",
    );
    for (reason, counter) in TlsFailure::ALL.iter().zip(&metrics.tls_failures) {
        out.series(
            "shsd_tls_handshake_failures_total",
            &[("reason", reason.as_str())],
            read(counter),
        );
    }
    out.family(
        "shsd_limit_rejections_total",
        "counter",
        "Requests refused by a configured limit, by limit.",
    );
    for (limit, counter) in Limit::ALL.iter().zip(&metrics.limits) {
        out.series(
            "shsd_limit_rejections_total",
            &[("limit", limit.as_str())],
            read(counter),
        );
    }
    out.family(
        "shsd_http_requests_total",
        "counter",
        "SHS requests answered, by endpoint and status class.",
    );
    for (endpoint, row) in EndpointLabel::ALL.iter().zip(&metrics.requests) {
        for (class, counter) in STATUS_CLASSES.iter().zip(row) {
            out.series(
                "shsd_http_requests_total",
                &[("endpoint", endpoint.as_str()), ("status", class)],
                read(counter),
            );
        }
    }
    out.latency(metrics);
    out.family(
        "shsd_open_connections",
        "gauge",
        "Connections open on the SHS listener (TLS handshakes included).",
    );
    let open = metrics.open_connections.load(Ordering::Relaxed);
    out.line("shsd_open_connections", &[], &open.to_string());
    out.family(
        "shsd_admin_actions_total",
        "counter",
        "Admin actions performed, by action (each is in the audit log).",
    );
    for (action, counter) in ADMIN_ACTIONS.iter().zip(&metrics.admin_actions) {
        out.series(
            "shsd_admin_actions_total",
            &[("action", action)],
            read(counter),
        );
    }
    out.family(
        "shsd_housekeeping_messages_total",
        "counter",
        "Messages expired (error sent) or removed after retention by housekeeping.",
    );
    for (what, counter) in Housekept::ALL.iter().zip(&metrics.housekept) {
        out.series(
            "shsd_housekeeping_messages_total",
            &[("outcome", what.as_str())],
            read(counter),
        );
    }
    out.family(
        "shsd_housekeeping_failures_total",
        "counter",
        "Housekeeping batches that failed on a store error (retried next round).",
    );
    out.series(
        "shsd_housekeeping_failures_total",
        &[],
        read(&metrics.housekeeping_failures),
    );
    out.family(
        "shsd_housekeeping_rounds_total",
        "counter",
        "Housekeeping rounds completed.",
    );
    out.series(
        "shsd_housekeeping_rounds_total",
        &[],
        read(&metrics.housekeeping_rounds),
    );
    out.family(
        "shsd_push_attempts_total",
        "counter",
        "Push attempts to other nodes, by outcome (sent, retried, failed).",
    );
    for (outcome, counter) in Pushed::ALL.iter().zip(&metrics.pushed) {
        out.series(
            "shsd_push_attempts_total",
            &[("outcome", outcome.as_str())],
            read(counter),
        );
    }
    out.store_gauges(store);
    out.0
}

struct Exposition(String);

impl Exposition {
    fn store_gauges(&mut self, store: &StoreGauges) {
        self.family(
            "shsd_mailbox_depth",
            "gauge",
            "Messages waiting in a mailbox (received or fetched, not acknowledged).",
        );
        for (mailbox, depth) in &store.mailbox_depths {
            let mailbox = escape_label(mailbox);
            self.series("shsd_mailbox_depth", &[("mailbox", &mailbox)], *depth);
        }
        self.family(
            "shsd_routing_jobs_pending",
            "gauge",
            "Accepted messages whose routing job has not completed.",
        );
        self.series("shsd_routing_jobs_pending", &[], store.pending_jobs);
        self.family(
            "shsd_push_retries_pending",
            "gauge",
            "Messages waiting for another push attempt.",
        );
        self.series("shsd_push_retries_pending", &[], store.push_retries_pending);
        if let Some(size) = store.size_on_disk {
            self.family(
                "shsd_store_size_bytes",
                "gauge",
                "The store's size on disk.",
            );
            self.series("shsd_store_size_bytes", &[], size);
        }
        if let Some(syncs) = &store.syncs {
            self.syncs(syncs);
        }
        if let Some(backlog) = &store.backlog {
            self.backlog(backlog);
        }
    }

    fn backlog(&mut self, backlog: &BacklogSnapshot) {
        let series: [(&str, &str, &str, u64); 4] = [
            (
                "shsd_store_index_backlog_bytes",
                "gauge",
                "Writes in the write-ahead log that the index (sled) does not have yet; \
                 writers wait while this is at its limit.",
                backlog.bytes,
            ),
            (
                "shsd_store_index_backlog_limit_bytes",
                "gauge",
                "The limit of that backlog ([store] log_backlog_mib).",
                backlog.limit_bytes,
            ),
            (
                "shsd_store_checkpoints_total",
                "counter",
                "Checkpoints that moved the backlog into the index.",
                backlog.checkpoints,
            ),
            (
                "shsd_store_backlog_waits_total",
                "counter",
                "Writes that waited because the backlog was at its limit.",
                backlog.waits,
            ),
        ];
        for (name, kind, help, value) in series {
            self.family(name, kind, help);
            self.series(name, &[], value);
        }
    }

    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn series(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.line(name, labels, &value.to_string());
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, label)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{label}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn by_code(&mut self, name: &str, help: &str, counters: &[std::sync::atomic::AtomicU64]) {
        self.family(name, "counter", help);
        for (code, counter) in ErrorCode::ALL.iter().zip(counters) {
            self.series(name, &[("code", code.as_str())], read(counter));
        }
    }

    fn latency(&mut self, metrics: &Metrics) {
        const NAME: &str = "shsd_http_request_duration_seconds";
        self.family(
            NAME,
            "histogram",
            "Time from request to response head, by endpoint (a fetch's streamed body excluded).",
        );
        for (endpoint, histogram) in EndpointLabel::ALL.iter().zip(&metrics.latency) {
            let labels = [("endpoint", endpoint.as_str())];
            self.histogram(NAME, &labels, &LATENCY_BUCKETS, &histogram.snapshot());
        }
    }

    fn syncs(&mut self, syncs: &SyncSnapshot) {
        const NAME: &str = "shsd_store_sync_duration_seconds";
        self.family(
            NAME,
            "histogram",
            "How long the store's disk syncs (fdatasync of the write-ahead log) took; every \
             acknowledged write waited for one.",
        );
        self.histogram(NAME, &[], &SYNC_BUCKETS, &syncs.durations);
        self.family(
            "shsd_store_synced_writes_total",
            "counter",
            "Writes the store's disk syncs made durable; divided by the syncs' count, the \
             writes one sync served (group commit).",
        );
        self.series("shsd_store_synced_writes_total", &[], syncs.writes);
    }

    /// The `_bucket` (cumulative, with `le`), `_sum` (seconds) and `_count` series of one
    /// histogram with `labels`.
    fn histogram<const N: usize>(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64; N],
        snapshot: &HistogramSnapshot<N>,
    ) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in bounds.iter().zip(&snapshot.buckets) {
            cumulative += count;
            let le = bound.to_string();
            self.series(&bucket, &with_label(labels, ("le", &le)), cumulative);
        }
        self.series(&bucket, &with_label(labels, ("le", "+Inf")), snapshot.count);
        let sum = snapshot.sum_micros as f64 / 1e6;
        self.line(&format!("{name}_sum"), labels, &sum.to_string());
        self.series(&format!("{name}_count"), labels, snapshot.count);
    }
}

/// `labels` and one more.
fn with_label<'a>(
    labels: &[(&'a str, &'a str)],
    more: (&'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    labels
        .iter()
        .copied()
        .chain(std::iter::once(more))
        .collect()
}
