//! Housekeeping (spec §10): unfetched messages expire with an `error` to their sender,
//! finished ones are removed after the retention period, payloads shared by fan-out
//! copies go with the last copy (the store sees to that).
//!
//! A round walks the store's housekeeping index oldest first in batches of
//! `batch_size`, yielding between batches, so intake never waits for it. Each message is
//! its own store operation: a crash mid-round loses nothing and the next round goes on.
//! The time is a parameter ([`Broker::housekeep`]), so tests can move the clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::metrics::{Housekept, NoticeKind};
use crate::protocol::ErrorCode;
use crate::protocol::label::Label;
use crate::store::{Due, Expiry, LocalId};

use super::Broker;
use super::error::BrokerError;
use super::notice::{self, Notice};

/// The most batches of one class a round takes on: a bound, so that a message that
/// fails every time cannot keep a round going forever (it is retried next round).
const MAX_BATCHES_PER_ROUND: usize = 1000;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HousekeepingReport {
    /// Messages expired (each with an `error` to its sender, where it can be answered).
    pub expired: usize,
    /// Records removed (a fan-out parent that went with its last copy counts too).
    pub removed: usize,
    /// Messages whose step failed; they are tried again next round.
    pub failed: usize,
    /// Uploads abandoned by a node that died mid-upload, removed (shared stores only).
    pub abandoned_uploads: u64,
}

impl Broker {
    /// One housekeeping round as of `now`.
    pub async fn housekeep(&self, now: DateTime<Utc>) -> HousekeepingReport {
        let policy = &self.config.housekeeping;
        let mut report = HousekeepingReport::default();
        let expire_before = now - policy.expiry;
        self.in_batches(Due::Unfetched, expire_before, &mut report, |id| {
            self.expire_one(id)
        })
        .await;
        let remove_before = now - policy.retention;
        let mut classes = vec![Due::Done];
        if policy.remove_fetched_without_ack {
            classes.push(Due::Fetched);
        }
        for class in classes {
            self.in_batches(class, remove_before, &mut report, |id| self.remove_one(id))
                .await;
        }
        match self.store.remove_abandoned_uploads().await {
            Ok(removed) => report.abandoned_uploads = removed,
            Err(err) => {
                tracing::warn!(error = %err, "could not remove abandoned uploads");
                report.failed += 1;
            }
        }
        if report != HousekeepingReport::default() {
            tracing::info!(
                expired = report.expired,
                removed = report.removed,
                failed = report.failed,
                abandoned_uploads = report.abandoned_uploads,
                "housekeeping round"
            );
        }
        report
    }

    /// Runs `step` on every message of `class` due before `before`, batch by batch.
    async fn in_batches<F, Fut>(
        &self,
        class: Due,
        before: DateTime<Utc>,
        report: &mut HousekeepingReport,
        step: F,
    ) where
        F: Fn(LocalId) -> Fut,
        Fut: Future<Output = Result<Step, BrokerError>>,
    {
        let batch = self.config.housekeeping.batch_size;
        for _ in 0..MAX_BATCHES_PER_ROUND {
            let due = match self.store.due(class, before, batch).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(error = %err, "housekeeping: cannot read due messages");
                    self.metrics.housekeeping_failed();
                    report.failed += 1;
                    return;
                }
            };
            let mut progress = false;
            for id in &due {
                match step(*id).await {
                    Ok(Step::Expired) => {
                        report.expired += 1;
                        progress = true;
                    }
                    Ok(Step::Removed(count)) => {
                        report.removed += count;
                        progress = true;
                    }
                    Ok(Step::Skipped) => progress = true,
                    Err(err) => {
                        tracing::warn!(local_id = %id, error = %err, "housekeeping step failed");
                        self.metrics.housekeeping_failed();
                        report.failed += 1;
                    }
                }
            }
            if due.len() < batch || !progress {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    /// Expires one unfetched message, storing the `error` to its sender with it.
    async fn expire_one(&self, id: LocalId) -> Result<Step, BrokerError> {
        let Some(record) = self.store.message(id).await? else {
            return Ok(Step::Skipped);
        };
        let label = Label::parse(&record.label).map_err(|err| {
            BrokerError::Internal(format!("stored label of {id} does not parse: {err}"))
        })?;
        let days = self.config.housekeeping.expiry.as_secs() / 86_400;
        let info = format!("not fetched within {days} days; expired by the receiving node");
        let code = ErrorCode::MissingDeliveryExecution;
        let notice = notice::build(
            self.store.as_ref(),
            &self.config,
            &label,
            Notice::Error { code, info },
        )
        .await?;
        match self.store.expire(id, notice).await? {
            Expiry::Expired {
                record,
                notice,
                notice_job,
            } => {
                self.metrics.housekept(Housekept::Expired);
                tracing::info!(shs.txid = %record.tx_id, local_id = %id, "expired unfetched message");
                if notice.is_some() {
                    self.metrics.notice_generated(NoticeKind::Error);
                    if notice_job.is_some() {
                        self.nudge_router();
                    } else {
                        self.metrics.message_delivered();
                    }
                }
                Ok(Step::Expired)
            }
            Expiry::NotDue => Ok(Step::Skipped),
        }
    }

    /// Removes one finished message (and its payload with the last holder).
    async fn remove_one(&self, id: LocalId) -> Result<Step, BrokerError> {
        let removal = self.store.remove(id).await?;
        for _ in &removal.removed {
            self.metrics.housekept(Housekept::Removed);
        }
        tracing::debug!(local_id = %id, removed = removal.removed.len(),
            payload_deleted = removal.payload_deleted.is_some(), "removed after retention");
        Ok(Step::Removed(removal.removed.len()))
    }
}

/// What housekeeping did with one message.
enum Step {
    Expired,
    Removed(usize),
    /// Changed meanwhile (fetched, removed): nothing to do.
    Skipped,
}

/// The name under which one node of a shared store holds the housekeeping duty.
const HOUSEKEEPING_DUTY: &str = "housekeeping";

/// The housekeeping task: a round at start and every `interval`, until `shutdown`, on
/// the one node holding the duty when several share a store. Does nothing when
/// housekeeping is disabled.
pub async fn run_housekeeping(broker: Arc<Broker>, shutdown: CancellationToken) {
    let policy = broker.config.housekeeping.clone();
    if !policy.enabled {
        tracing::info!("housekeeping is disabled");
        return;
    }
    // Held across two rounds and a slow one, so the holder keeps it by renewing it each
    // round, and another node takes it over when the holder has stopped.
    let ttl = policy.interval * 2 + Duration::from_secs(60);
    loop {
        match broker.store.hold_duty(HOUSEKEEPING_DUTY, ttl).await {
            Ok(true) => {
                tokio::select! {
                    _ = broker.housekeep(clock::now()) => {}
                    _ = shutdown.cancelled() => return,
                }
                broker.metrics.housekeeping_round();
            }
            Ok(false) => tracing::debug!("housekeeping is another node's duty now"),
            Err(err) => tracing::warn!(error = %err, "housekeeping round skipped"),
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
#[path = "housekeeping_tests.rs"]
mod tests;
