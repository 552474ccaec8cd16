//! Push and forwarding (spec §5.3): a message for a receiver on another node (or a
//! business system that wants push) is POSTed as `message/rfc822` to the receiver's
//! address from the directory, with this node's client certificate, the server's host
//! name verified.
//!
//! 2xx: delivered (SENT). A 4xx is final at once: quarantined with
//! `MissingDeliveryExecution` and an `error` to the sender. Network errors, timeouts and
//! 5xx are retried with exponential back-off and jitter from the routing job's persistent
//! schedule ([`crate::store::Retry`]), so a restart in the middle of the back-off loses
//! nothing; when the attempts run out the message is quarantined the same way.
//!
//! The body streams from the store in bounded chunks, like a fetch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;

use crate::metrics::Pushed;
use crate::protocol::ErrorCode;
use crate::protocol::urn::Address;
use crate::store::{JobOutcome, MessageRecord, Retry, RoutingJob};

use super::Broker;
use super::error::BrokerError;
use super::mailbox::Sink;
use super::upstream::{self, OpenError, Target};

/// How many chunks may wait between the store reader and the socket.
const CHANNEL_CHUNKS: usize = 4;

/// The most of a refusal's body kept for the log and the quarantine reason.
const REASON_LIMIT: usize = 200;

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    /// 2xx.
    Delivered,
    /// 4xx: the receiver refuses this message; trying again would not help.
    Refused(String),
    /// Network error, timeout or 5xx: worth another try later.
    Failed(String),
}

impl Broker {
    /// Pushes the message of `job` to `url` once and records the result: SENT, a new
    /// retry schedule, or quarantine.
    pub(super) async fn push(
        &self,
        job: &RoutingJob,
        to: &Address,
        url: &str,
    ) -> Result<Option<JobOutcome>, BrokerError> {
        let record = &job.message;
        let Some(tls) = self.push_tls.clone() else {
            let reason = format!("{to} is reached by push to {url}, and push is not configured");
            return self
                .quarantine(record, ErrorCode::MissingDeliveryExecution, reason)
                .await
                .map(Some);
        };
        let policy = &self.config.push;
        let attempt =
            match tokio::time::timeout(policy.timeout, self.attempt(tls, url, record)).await {
                Ok(attempt) => attempt,
                Err(_) => Attempt::Failed(format!("no answer within {:?}", policy.timeout)),
            };
        let attempts = job.retry.attempts.saturating_add(1);
        match attempt {
            Attempt::Delivered => {
                self.metrics.pushed(Pushed::Sent);
                tracing::info!(shs.txid = %record.tx_id, url, attempts, "pushed");
                Ok(Some(JobOutcome::Sent))
            }
            Attempt::Refused(reason) => {
                self.metrics.pushed(Pushed::Failed);
                let reason = format!("{url} refused the message: {reason}");
                tracing::warn!(shs.txid = %record.tx_id, reason, "push refused");
                self.quarantine(record, ErrorCode::MissingDeliveryExecution, reason)
                    .await
                    .map(Some)
            }
            Attempt::Failed(reason) if attempts >= policy.attempts => {
                self.metrics.pushed(Pushed::Failed);
                let reason = format!("push to {url} failed {attempts} times; last: {reason}");
                tracing::warn!(shs.txid = %record.tx_id, reason, "push given up");
                self.quarantine(record, ErrorCode::MissingDeliveryExecution, reason)
                    .await
                    .map(Some)
            }
            Attempt::Failed(reason) => {
                self.metrics.pushed(Pushed::Retried);
                let wait = backoff(policy.first_retry, policy.max_retry, attempts);
                tracing::info!(shs.txid = %record.tx_id, url, attempts, retry_in = ?wait,
                    reason, "push failed; will retry");
                let not_before = Utc::now() + wait;
                let retry = Retry {
                    attempts,
                    not_before: Some(not_before),
                    last_error: Some(reason),
                };
                self.store.defer_job(job.id, retry).await?;
                self.jobs.note_due(not_before);
                Ok(None)
            }
        }
    }

    /// One POST of `record` to `url`.
    async fn attempt(
        &self,
        tls: Arc<rustls::ClientConfig>,
        url: &str,
        record: &MessageRecord,
    ) -> Attempt {
        let target = match Target::parse(url, false) {
            Ok(target) => target,
            Err(reason) => return Attempt::Refused(reason),
        };
        let mut sender = match upstream::open(tls, &target).await {
            Ok(sender) => sender,
            Err(OpenError::BadUrl(reason)) => return Attempt::Refused(reason),
            Err(OpenError::Failed(reason)) => return Attempt::Failed(reason),
        };
        let (out, body) = crate::body::channel(CHANNEL_CHUNKS);
        let request = Request::builder()
            .method(Method::POST)
            .uri(target.path_and_query.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(header::CONTENT_TYPE, "message/rfc822")
            .body(body);
        let request = match request {
            Ok(request) => request,
            Err(err) => return Attempt::Refused(format!("cannot build the request: {err}")),
        };
        let writer = async {
            match self.write_message(record, &mut Sink::Channel(&out)).await {
                Ok(_) => {}
                Err(err) => {
                    let _ = out
                        .send(Err(std::io::Error::other(format!("store: {err}"))))
                        .await;
                }
            }
            drop(out);
        };
        let (response, ()) = tokio::join!(sender.send_request(request), writer);
        let response = match response {
            Ok(response) => response,
            Err(err) => return Attempt::Failed(format!("HTTP: {err}")),
        };
        let status = response.status();
        let code = response
            .headers()
            .get("x-shs-errorcode")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = match response.into_body().collect().await {
            Ok(body) => excerpt(&body.to_bytes()),
            Err(_) => String::new(),
        };
        let what = match code {
            Some(code) => format!("{status} {code} {text}"),
            None => format!("{status} {text}"),
        };
        if status.is_success() {
            Attempt::Delivered
        } else if status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT {
            Attempt::Refused(what.trim_end().to_owned())
        } else {
            Attempt::Failed(what.trim_end().to_owned())
        }
    }
}

/// The wait after `attempts` failed attempts: `first` doubled per further attempt, at most
/// `max`, then spread by ±20 % so that many messages that failed together do not all come
/// back at once.
pub fn backoff(first: Duration, max: Duration, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(30);
    let base = first.saturating_mul(1 << doublings).min(max);
    let mut random = [0_u8; 2];
    let jitter = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
    {
        Ok(()) => f64::from(u16::from_be_bytes(random)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    };
    base.mul_f64(0.8 + 0.4 * jitter)
}

/// The start of a response body as one printable line.
pub(super) fn excerpt(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(REASON_LIMIT)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let first = Duration::from_secs(300);
        let max = Duration::from_secs(6 * 3600);
        for (attempts, base) in [(1, 300), (2, 600), (3, 1200), (8, 21_600), (40, 21_600)] {
            let wait = backoff(first, max, attempts).as_secs_f64();
            let base = f64::from(base);
            assert!(
                wait >= base * 0.8 - 0.001 && wait <= base * 1.2 + 0.001,
                "{attempts}: {wait}"
            );
        }
        // The default schedule spans about a day over its 9 waits.
        let total: u64 = (1..10)
            .map(|n| 300_u64.saturating_mul(1 << (n - 1)).min(21_600))
            .sum();
        assert!((20 * 3600..26 * 3600).contains(&total), "{total}");
    }
}
