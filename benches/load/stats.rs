//! What the phase drivers record and how it is summarised: latency percentiles, counts per
//! second of the window, and error tallies keyed by a short kind (so that a thousand
//! identical failures print as one line with a count).

use std::collections::BTreeMap;
use std::time::Duration;

use shsd::client::ClientError;

/// A request's outcome under `tokio::time::timeout`.
pub type Timed<T> = Result<Result<T, ClientError>, tokio::time::error::Elapsed>;

/// Latencies sorted once, for nearest-rank percentiles.
pub struct Percentiles(Vec<Duration>);

impl Percentiles {
    /// Sorts a copy, leaving the recorded order alone.
    pub fn of(latencies: &[Duration]) -> Percentiles {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        Percentiles(sorted)
    }

    /// The nearest-rank `q` quantile (`1.0` is the maximum); `None` without samples.
    pub fn at(&self, q: f64) -> Option<Duration> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        Some(self.0[rank - 1])
    }
}

/// Milliseconds with two decimals below 10 ms and one above, as the report's columns show.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

/// Counts one event in `second` of a per-second series, growing it as needed.
pub fn count_in_second(per_second: &mut Vec<u64>, second: usize) {
    if per_second.len() <= second {
        per_second.resize(second + 1, 0);
    }
    per_second[second] += 1;
}

/// Adds one client's per-second series into the total, which may be shorter.
pub fn merge_counts(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (total, n) in into.iter_mut().zip(from) {
        *total += n;
    }
}

/// Adds one client's error tallies into the total.
pub fn merge_errors(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (kind, n) in from {
        *into.entry(kind).or_default() += n;
    }
}

/// Tallies a failed `what` request (list, fetch, ack) by kind; success counts nothing.
pub fn count_error(errors: &mut BTreeMap<String, u64>, what: &str, failed: Timed<()>) {
    let kind = match failed {
        Ok(Ok(())) => return,
        Ok(Err(err)) => error_kind(&err),
        Err(_) => "timeout".to_owned(),
    };
    *errors.entry(format!("{what}: {kind}")).or_default() += 1;
}

/// A short key for a client error: status and SHS error code for a refusal, else the
/// message, cut to 100 characters so that tallies group.
pub fn error_kind(err: &ClientError) -> String {
    let text = match err {
        ClientError::Refused { status, code, .. } => format!("{} {code}", status.as_u16()),
        other => other.to_string(),
    };
    text.chars().take(100).collect()
}
