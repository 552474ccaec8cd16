//! Routing jobs (spec §5.1): each accepted message carries a durable job that routes it.
//!
//! Intake runs a new message's job at once, so a delivered message is listed as soon as the
//! sender has its 202. Jobs that could not run then (a store error), and jobs left by a
//! crash or restart, are run by the router task: at start, when nudged, and every
//! [`SWEEP_INTERVAL`] as a safety net. Completing a job is idempotent in the store, so a
//! job run twice has one visible effect.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::NoticeKind;
use crate::protocol::ErrorCode;
use crate::protocol::label::Label;
use crate::store::{
    JobCompletion, JobOutcome, MessageRecord, NewMessage, Route, RoutingJob, State,
};

use super::Broker;
use super::error::BrokerError;
use super::fanout;
use super::notice::{self, Notice};
use super::router::Decision;

/// How often the router task looks for jobs nobody nudged it about.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// How many jobs one sweep reads at a time.
const PAGE: usize = 256;

/// Wakes the router task when a job needs a retry.
#[derive(Debug, Default)]
pub struct JobQueue {
    nudge: Notify,
    /// When the earliest deferred job (a push waiting for its next attempt) is due, as of
    /// the last sweep.
    next_due: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl JobQueue {
    /// Notes that a deferred job is due at `at`, so the router wakes for it.
    pub(super) fn note_due(&self, at: chrono::DateTime<chrono::Utc>) {
        let mut next = self.next_due_lock();
        *next = Some(next.map_or(at, |earlier| earlier.min(at)));
    }

    fn next_due_lock(&self) -> std::sync::MutexGuard<'_, Option<chrono::DateTime<chrono::Utc>>> {
        self.next_due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Broker {
    /// Routes one message and records the outcome; a push is attempted here. Safe to call
    /// for a job that another task is running or has completed.
    pub async fn run_job(&self, job: &RoutingJob) -> Result<(), BrokerError> {
        self.run(job, false).await
    }

    /// Like [`Broker::run_job`], for callers that answer someone right after (intake, admin
    /// actions): a local delivery is done at once, but a push is left to the router task
    /// so that nobody waits for another node.
    pub async fn run_job_inline(&self, job: &RoutingJob) -> Result<(), BrokerError> {
        self.run(job, true).await
    }

    async fn run(&self, job: &RoutingJob, inline: bool) -> Result<(), BrokerError> {
        let record = &job.message;
        let outcome = match self.route(record).await? {
            Decision::Deliver(mailbox) => JobOutcome::Deliver { mailbox },
            Decision::FanOut(receivers) => JobOutcome::FanOut {
                copies: fanout::copies(record, &receivers)?,
            },
            Decision::Push { .. } if inline => {
                self.nudge_router();
                return Ok(());
            }
            Decision::Push { to, url } => match self.push(job, &to, &url).await? {
                Some(outcome) => outcome,
                // Deferred: the job waits for its next attempt.
                None => return Ok(()),
            },
            Decision::Quarantine { code, reason } => self.quarantine(record, code, reason).await?,
        };
        let counted = Counted::of(&outcome);
        let generated = match &outcome {
            JobOutcome::Quarantine {
                notify: Some(message),
                ..
            } => Some(message.payload.id),
            _ => None,
        };
        match self.store.complete_job(job.id, outcome).await? {
            JobCompletion::Applied { record, created } => {
                counted.record(self);
                self.routed(&record, created.len()).await;
                for (created, job) in created {
                    if job.is_some() {
                        tracing::debug!(shs.txid = %created.tx_id, "generated message waits for routing");
                        self.jobs.nudge.notify_one();
                    } else {
                        // Generated for a local organisation: stored straight in its mailbox.
                        self.metrics.message_delivered();
                        self.correlate(&created).await;
                    }
                }
            }
            JobCompletion::AlreadyCompleted => {
                // Another run got there first: drop what this run uploaded.
                if let Some(payload) = generated {
                    self.store.discard_payload(payload).await?;
                }
            }
        }
        Ok(())
    }

    /// The route of a new message, decided before it is stored. A local delivery goes into
    /// its mailbox in the accepting batch: one store write instead of the accept, a job and
    /// its completion, which was a sixth of intake's CPU. Anything else (a push, a fan-out,
    /// a quarantine, a directory that does not answer) gets its routing job as before,
    /// which intake runs right after the accept and which decides again.
    pub(super) async fn route_at_intake(&self, message: &NewMessage) -> Route {
        let (preview, _) = message.clone().into_record();
        match self.route(&preview).await {
            Ok(Decision::Deliver(mailbox)) => Route::Mailbox(mailbox),
            _ => Route::Job,
        }
    }

    /// What a message delivered at intake ([`Broker::route_at_intake`]) still needs once
    /// stored: what a completed delivery job does.
    pub(super) async fn delivered_at_intake(&self, record: &MessageRecord) {
        self.metrics.message_delivered();
        self.routed(record, 0).await;
    }

    /// Logs a routed message; one delivered to a local mailbox may be a confirm or error
    /// that answers an original here.
    async fn routed(&self, record: &MessageRecord, generated: usize) {
        tracing::info!(
            shs.txid = %record.tx_id,
            local_id = %record.local_id,
            state = ?record.state,
            generated,
            "routed"
        );
        if record.state == State::Received {
            self.correlate(record).await;
        }
    }

    /// The outcome that quarantines `record` with `code`, with the `error` to its sender.
    pub(super) async fn quarantine(
        &self,
        record: &MessageRecord,
        code: ErrorCode,
        reason: String,
    ) -> Result<JobOutcome, BrokerError> {
        let label = Label::parse(&record.label).map_err(|err| {
            BrokerError::Internal(format!(
                "stored label of {} does not parse: {err}",
                record.local_id
            ))
        })?;
        let info = reason.clone();
        let notify = notice::build(
            self.store.as_ref(),
            &self.config,
            &label,
            Notice::Error { code, info },
        )
        .await?;
        Ok(JobOutcome::Quarantine {
            code,
            reason,
            notify,
        })
    }

    /// Asks the router task to look for pending jobs now.
    pub fn nudge_router(&self) {
        self.jobs.nudge.notify_one();
    }

    /// Runs every pending job that is due and this node's to run once (see
    /// [`crate::store::Store::claim_jobs`]); returns how many failed. Notes when the
    /// earliest job that is not due yet will be, for [`run_router`].
    pub async fn sweep_jobs(&self) -> Result<usize, BrokerError> {
        let mut after = None;
        let mut failed = 0;
        let now = chrono::Utc::now();
        *self.jobs.next_due_lock() = None;
        loop {
            let jobs = self.store.claim_jobs(after, PAGE).await?;
            let Some(last) = jobs.last() else {
                // Jobs left out of the claim (another node's, or not due): wake for the
                // first of them.
                if let Some(at) = self.store.next_job_due().await? {
                    self.jobs.note_due(at);
                }
                return Ok(failed);
            };
            after = Some(last.id);
            for job in &jobs {
                if let Some(at) = job.retry.not_before.filter(|at| *at > now) {
                    self.jobs.note_due(at);
                    continue;
                }
                if let Err(err) = self.run_job(job).await {
                    failed += 1;
                    tracing::warn!(shs.txid = %job.message.tx_id, error = %err, "routing job failed; will retry");
                }
            }
        }
    }
}

/// The router task: sweeps at start (resuming jobs from before a restart), then whenever
/// nudged or every [`SWEEP_INTERVAL`], until `shutdown` fires.
pub async fn run_router(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(100);
    loop {
        match broker.sweep_jobs().await {
            Ok(0) => delay = Duration::from_millis(100),
            Ok(_) | Err(_) => {
                // Back off while the store or routing keeps failing.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(SWEEP_INTERVAL);
                broker.jobs.nudge.notify_one();
            }
        }
        let next_due = *broker.jobs.next_due_lock();
        let wait = next_due
            .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
            .map_or(SWEEP_INTERVAL, |until| until.min(SWEEP_INTERVAL));
        tokio::select! {
            _ = broker.jobs.nudge.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// What an applied job adds to the metrics, noted before the outcome moves into the store.
enum Counted {
    Delivered,
    Quarantined { code: ErrorCode, notice: bool },
    Nothing,
}

impl Counted {
    fn of(outcome: &JobOutcome) -> Counted {
        match outcome {
            JobOutcome::Deliver { .. } => Counted::Delivered,
            JobOutcome::Quarantine { code, notify, .. } => Counted::Quarantined {
                code: *code,
                notice: notify.is_some(),
            },
            _ => Counted::Nothing,
        }
    }

    fn record(&self, broker: &Broker) {
        let metrics = broker.metrics();
        match self {
            Counted::Delivered => metrics.message_delivered(),
            Counted::Quarantined { code, notice } => {
                metrics.message_quarantined(*code);
                if *notice {
                    metrics.notice_generated(NoticeKind::Error);
                }
            }
            Counted::Nothing => {}
        }
    }
}
