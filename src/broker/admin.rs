//! Administrator actions on stored messages (spec §11): what each means for SHS, on top of
//! the store's [`AdminChange`]s. Every action is written to the audit log with its actor
//! by the store, in the same durable batch as the change, and logged here.
//!
//! - `requeue` (QUARANTINED): route again with the current configuration, at once.
//! - `release` (QUARANTINED): deliver to the label's `to` mailbox, overriding the failed
//!   check; only for a `to` that is a local mailbox of this node.
//! - `resend` (RECEIVED, FETCHED, ACKNOWLEDGED, EXPIRED): list it again in its mailbox.
//!   Pushed (SENT) messages cannot be resent until push delivery is built.
//! - `delete` (any state but NEW): remove it and, with its last holder, its payload.

use crate::clock;
use crate::protocol::urn::Address;
use crate::store::{
    AdminChange, Administered, AuditNote, LocalId, MessageRecord, Retry, RoutingJob, State,
    StoreError,
};

use super::Broker;
use super::error::BrokerError;

/// An action an administrator can take on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminAction {
    /// Route a quarantined message again.
    Requeue,
    /// Deliver a quarantined message to its `to` mailbox despite the failed check.
    Release,
    /// List a delivered message in its mailbox again.
    Resend,
    /// Remove a message for good.
    Delete,
}

impl AdminAction {
    /// Every action.
    pub const ALL: [AdminAction; 4] = [
        AdminAction::Requeue,
        AdminAction::Release,
        AdminAction::Resend,
        AdminAction::Delete,
    ];

    /// The action's name in URLs, the audit log and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::Requeue => "requeue",
            AdminAction::Release => "release",
            AdminAction::Resend => "resend",
            AdminAction::Delete => "delete",
        }
    }

    /// The action named `name` ([`AdminAction::as_str`]).
    pub fn parse(name: &str) -> Option<AdminAction> {
        AdminAction::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// True when the action applies to a message in `state` (the store has the last word;
    /// this is for showing only the buttons that can work).
    pub fn applies_to(self, state: State) -> bool {
        match self {
            AdminAction::Requeue | AdminAction::Release => state == State::Quarantined,
            AdminAction::Resend => matches!(
                state,
                State::Received | State::Fetched | State::Acknowledged | State::Expired
            ),
            AdminAction::Delete => state != State::New,
        }
    }
}

impl Broker {
    /// Performs `action` on message `id` for `actor` (the audit log's "who"). A requeued
    /// message is routed before this returns; the answer carries the record as it is then.
    pub async fn administer(
        &self,
        id: LocalId,
        action: AdminAction,
        actor: &str,
    ) -> Result<Administered, BrokerError> {
        let change = match action {
            AdminAction::Requeue => AdminChange::Requeue,
            AdminAction::Resend => AdminChange::Resend,
            AdminAction::Delete => AdminChange::Delete,
            AdminAction::Release => {
                let record = self.store.message(id).await?;
                let record = record.ok_or_else(|| not_found(id))?;
                AdminChange::Release {
                    mailbox: self.release_mailbox(&record)?,
                }
            }
        };
        let note = AuditNote {
            actor: actor.to_owned(),
            at: clock::now(),
        };
        let mut done = self
            .store
            .administer(id, change, note)
            .await
            .map_err(|err| refused(id, action, err))?;
        self.metrics.admin_action(action.as_str());
        tracing::info!(
            actor,
            action = action.as_str(),
            local_id = %id,
            shs.txid = %done.audit.tx_id,
            from = done.audit.from.as_str(),
            to = done.audit.to.map_or("deleted", State::as_str),
            "admin action"
        );
        if matches!(action, AdminAction::Release | AdminAction::Resend) {
            self.metrics.message_delivered();
        }
        if let (Some(job), Some(record)) = (done.job, done.record.clone()) {
            let job = RoutingJob {
                id: job,
                message: record,
                retry: Retry::default(),
            };
            if let Err(err) = self.run_job_inline(&job).await {
                tracing::warn!(local_id = %id, error = %err, "requeued message waits for the router");
                self.nudge_router();
            }
            done.record = self.store.message(id).await?;
        }
        Ok(done)
    }

    /// The mailbox a release delivers to: the label's `to`, if it is local.
    fn release_mailbox(&self, record: &MessageRecord) -> Result<Address, BrokerError> {
        let to = record.summary.to.as_deref().ok_or_else(|| {
            BrokerError::Conflict(
                "release needs a `to` address in the label; this message is product-addressed \
                 (requeue it once the directory names its recipients)"
                    .into(),
            )
        })?;
        match to.parse::<Address>() {
            Ok(mailbox) if self.config.is_local_mailbox(&mailbox) => Ok(mailbox),
            _ => Err(BrokerError::Conflict(format!(
                "release delivers to a local mailbox, and {to} is not one of this node's; \
                 fix the configuration and requeue instead"
            ))),
        }
    }
}

fn not_found(id: LocalId) -> BrokerError {
    BrokerError::NotFound(format!("no message with local id {id}"))
}

/// The answer for a change the store refused.
fn refused(id: LocalId, action: AdminAction, err: StoreError) -> BrokerError {
    match err {
        StoreError::MessageNotFound(_) => not_found(id),
        StoreError::WrongState {
            state,
            action: what,
            ..
        } => BrokerError::Conflict(format!(
            "cannot {} message {id}: it is {} (cannot {what})",
            action.as_str(),
            state.as_str()
        )),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::ErrorCode;
    use crate::store::memory::MemoryEngine;
    use crate::store::{
        Acceptance, JobCompletion, JobOutcome, KvStore, MessageSummary, NewMessage, Route, Store,
    };

    /// A broker over a memory store with the test configuration (2120000142.bygglov local).
    fn broker() -> Arc<Broker> {
        let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
        Broker::new(store, Arc::new(crate::config::for_tests()))
    }

    /// A message to `to`, quarantined as if routing had failed.
    async fn quarantined(broker: &Broker, tx: &str, to: Option<&str>) -> LocalId {
        let store = broker.store();
        let payload =
            crate::broker::test_support::upload(store.as_ref(), "text/plain", b"hej").await;
        let message = NewMessage {
            local_id: LocalId::random(),
            sender: "5590000001".parse().unwrap(),
            arrival: clock::now(),
            label: b"<shs.label/>".to_vec(),
            summary: MessageSummary {
                tx_id: tx.into(),
                to: to.map(str::to_owned),
                product: "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00".into(),
                ..MessageSummary::default()
            },
            payload,
            signer: None,
            route: Route::Job,
        };
        let Acceptance::Accepted { record, job } = store.accept(message).await.unwrap() else {
            panic!("not accepted");
        };
        let outcome = JobOutcome::Quarantine {
            code: ErrorCode::MissingDeliveryAddress,
            reason: "no address".into(),
            notify: None,
        };
        let done = store.complete_job(job.unwrap(), outcome).await.unwrap();
        assert!(matches!(done, JobCompletion::Applied { .. }));
        record.local_id
    }

    #[tokio::test]
    async fn release_delivers_to_the_local_to_mailbox() {
        let broker = broker();
        let id = quarantined(&broker, "tx-r", Some("urn:X-shs:2120000142.bygglov")).await;
        let done = broker
            .administer(id, AdminAction::Release, "admin anna")
            .await
            .unwrap();
        let record = done.record.unwrap();
        assert_eq!(record.state, State::Received);
        assert_eq!(
            record.mailbox.unwrap().to_string(),
            "urn:X-shs:2120000142.bygglov"
        );
        assert_eq!(done.audit.actor, "admin anna");
        assert_eq!(
            done.audit.detail.as_deref(),
            Some("urn:X-shs:2120000142.bygglov")
        );
    }

    #[tokio::test]
    async fn release_refuses_remote_and_product_addressed_messages() {
        let broker = broker();
        for (tx, to) in [
            ("tx-remote", Some("urn:X-shs:5560000002")),
            ("tx-product", None),
        ] {
            let id = quarantined(&broker, tx, to).await;
            let err = broker
                .administer(id, AdminAction::Release, "admin")
                .await
                .unwrap_err();
            assert!(matches!(err, BrokerError::Conflict(_)), "{tx}: {err}");
            let record = broker.store().message(id).await.unwrap().unwrap();
            assert_eq!(record.state, State::Quarantined, "{tx}");
        }
        assert!(broker.store().audit_log(None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn requeue_routes_again_at_once() {
        let broker = broker();
        let id = quarantined(&broker, "tx-q", Some("urn:X-shs:2120000142.bygglov")).await;
        let done = broker
            .administer(id, AdminAction::Requeue, "admin")
            .await
            .unwrap();
        // The configuration now routes it (here it always did): delivered by the requeue.
        assert_eq!(done.record.unwrap().state, State::Received);
        assert_eq!(done.audit.to, Some(State::New));
        assert!(
            broker
                .store()
                .pending_jobs(None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = broker.administer(id, AdminAction::Requeue, "admin").await;
        assert!(matches!(again, Err(BrokerError::Conflict(_))), "{again:?}");
        let unknown = broker
            .administer(LocalId::random(), AdminAction::Delete, "admin")
            .await;
        assert!(
            matches!(unknown, Err(BrokerError::NotFound(_))),
            "{unknown:?}"
        );
    }

    #[test]
    fn the_metrics_know_every_action() {
        let names: Vec<_> = AdminAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names, crate::metrics::ADMIN_ACTIONS);
        for action in AdminAction::ALL {
            assert_eq!(AdminAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AdminAction::parse("Requeue"), None);
    }
}
