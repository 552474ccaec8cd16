//! Housekeeping with a controllable clock: each round is run "as of" a chosen time, the
//! store's own timestamps stay real. Retention, expiry with the `error` to the sender, and
//! a fan-out payload deleted only with its last copy.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::protocol::urn::Address;
use crate::store::memory::MemoryEngine;
use crate::store::{
    Acceptance, FanOutCopy, JobOutcome, KvStore, MailboxQuery, MessageRecord, NewMessage,
    PayloadId, Route, State, Store,
};

const PORTAL: &str = "urn:X-shs:5590000001";
const BYGGLOV: &str = "urn:X-shs:2120000142.bygglov";
const DAY: Duration = Duration::from_secs(86_400);

/// The test configuration (2120000142.bygglov local; 14 days retention, 30 expiry).
fn broker() -> Arc<Broker> {
    let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    Broker::new(store, Arc::new(crate::config::for_tests()))
}

async fn stored_message(broker: &Broker, route: Route) -> NewMessage {
    let label = crate::broker::test_support::label(PORTAL, Some(BYGGLOV));
    let payload =
        crate::broker::test_support::upload(broker.store().as_ref(), "text/xml", b"<ansokan/>")
            .await;
    NewMessage {
        local_id: LocalId::random(),
        sender: "5590000001".parse().unwrap(),
        arrival: clock::now(),
        summary: crate::broker::summary::summarize(&label, payload.size),
        label: label.to_xml(),
        payload,
        signer: None,
        route,
    }
}

/// A message delivered to bygglov's mailbox.
async fn delivered(broker: &Broker) -> MessageRecord {
    let message = stored_message(broker, Route::Mailbox(BYGGLOV.parse().unwrap())).await;
    match broker.store().accept(message).await.unwrap() {
        Acceptance::Accepted { record, .. } => record,
        other => panic!("{other:?}"),
    }
}

async fn state(broker: &Broker, id: LocalId) -> Option<State> {
    broker
        .store()
        .message(id)
        .await
        .unwrap()
        .map(|record| record.state)
}

async fn payload_readable(broker: &Broker, payload: PayloadId) -> bool {
    broker
        .store()
        .read_chunk(payload, 0, 0)
        .await
        .unwrap()
        .is_some()
}

async fn portal_mailbox(broker: &Broker) -> Vec<MessageRecord> {
    let portal: Address = PORTAL.parse().unwrap();
    broker
        .store()
        .list(&portal, &MailboxQuery::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn acknowledged_messages_are_removed_after_retention() {
    let broker = broker();
    let acked = delivered(&broker).await;
    let waiting = delivered(&broker).await;
    broker.store().mark_fetched(acked.local_id).await.unwrap();
    broker
        .store()
        .acknowledge(acked.local_id, None, None)
        .await
        .unwrap();
    let now = clock::now();

    let report = broker.housekeep(now + 13 * DAY).await;
    assert_eq!(report, HousekeepingReport::default());
    assert_eq!(
        state(&broker, acked.local_id).await,
        Some(State::Acknowledged)
    );

    let report = broker.housekeep(now + 15 * DAY).await;
    assert_eq!(report.removed, 1);
    assert_eq!(state(&broker, acked.local_id).await, None);
    assert!(!payload_readable(&broker, acked.payload.id).await);
    // Unfetched for 15 days: still waiting in its mailbox.
    assert_eq!(
        state(&broker, waiting.local_id).await,
        Some(State::Received)
    );
    assert!(payload_readable(&broker, waiting.payload.id).await);
}

#[tokio::test]
async fn unfetched_messages_expire_with_an_error_to_the_sender() {
    // Retention longer than expiry, so one jump of the clock expires without removing.
    let mut config = crate::config::for_tests();
    config.housekeeping.retention = 60 * DAY;
    let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    let broker = Broker::new(store, Arc::new(config));
    let old = delivered(&broker).await;
    let now = clock::now();
    assert_eq!(broker.housekeep(now + 29 * DAY).await.expired, 0);

    let report = broker.housekeep(now + 31 * DAY).await;
    assert_eq!(report.expired, 1);
    assert_eq!(state(&broker, old.local_id).await, Some(State::Expired));
    let mailbox: Address = BYGGLOV.parse().unwrap();
    let listed = broker
        .store()
        .list(&mailbox, &MailboxQuery::default())
        .await
        .unwrap();
    assert!(listed.is_empty());
    // The portal is not hosted here (the test configuration hosts only 2120000142): its
    // error goes through routing, so the notice waits as a routing job.
    let jobs = broker.store().pending_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let notice = &jobs[0].message;
    assert_eq!(notice.summary.product, "urn:X-shs:error");
    assert_eq!(notice.summary.corr_id, old.summary.corr_id);
    assert_eq!(notice.summary.to.as_deref(), Some(PORTAL));
    assert!(portal_mailbox(&broker).await.is_empty());
    let document = broker
        .store()
        .read_chunk(notice.payload.id, 0, 0)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&document).into_owned();
    assert!(text.contains("MissingDeliveryExecution"), "{text}");
    assert!(text.contains("not fetched within 30 days"), "{text}");

    // The expired message is removed after the retention period, counted from expiry.
    let report = broker.housekeep(now + 59 * DAY).await;
    assert_eq!(report, HousekeepingReport::default());
    let report = broker.housekeep(now + 61 * DAY).await;
    assert_eq!(report.removed, 1);
    assert_eq!(state(&broker, old.local_id).await, None);
}

#[tokio::test]
async fn a_shared_payload_goes_only_with_its_last_copy() {
    let broker = broker();
    let parent = stored_message(&broker, Route::Job).await;
    let Acceptance::Accepted {
        record: parent,
        job,
    } = broker.store().accept(parent).await.unwrap()
    else {
        panic!("not accepted");
    };
    let copy = |tx: &str| {
        let mut summary = parent.summary.clone();
        summary.tx_id = tx.into();
        FanOutCopy {
            local_id: LocalId::random(),
            label: parent.label.clone(),
            summary,
            route: Route::Mailbox(BYGGLOV.parse().unwrap()),
        }
    };
    let copies = vec![copy("tx-copy-1"), copy("tx-copy-2")];
    let outcome = JobOutcome::FanOut {
        copies: copies.clone(),
    };
    broker
        .store()
        .complete_job(job.unwrap(), outcome)
        .await
        .unwrap();
    let (first, second) = (copies[0].local_id, copies[1].local_id);
    broker.store().mark_fetched(first).await.unwrap();
    broker.store().acknowledge(first, None, None).await.unwrap();
    let now = clock::now();

    // The first copy is removed; its sibling still holds the payload.
    assert_eq!(broker.housekeep(now + 15 * DAY).await.removed, 1);
    assert_eq!(state(&broker, first).await, None);
    assert!(payload_readable(&broker, parent.payload.id).await);
    assert_eq!(
        state(&broker, parent.local_id).await,
        Some(State::FannedOut)
    );

    // The second copy goes later: the payload and the parent go with it.
    broker.store().mark_fetched(second).await.unwrap();
    broker
        .store()
        .acknowledge(second, None, None)
        .await
        .unwrap();
    let report = broker.housekeep(clock::now() + 15 * DAY).await;
    assert_eq!(report.removed, 2);
    assert_eq!(state(&broker, second).await, None);
    assert_eq!(state(&broker, parent.local_id).await, None);
    assert!(!payload_readable(&broker, parent.payload.id).await);
}

#[tokio::test]
async fn fetched_messages_are_removed_only_when_configured() {
    let mut config = crate::config::for_tests();
    let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    let plain = Broker::new(Arc::clone(&store), Arc::new(config.clone()));
    let fetched = delivered(&plain).await;
    store.mark_fetched(fetched.local_id).await.unwrap();
    let later = clock::now() + 15 * DAY;
    assert_eq!(plain.housekeep(later).await.removed, 0);
    assert_eq!(state(&plain, fetched.local_id).await, Some(State::Fetched));

    config.housekeeping.remove_fetched_without_ack = true;
    let eager = Broker::new(store, Arc::new(config));
    assert_eq!(eager.housekeep(later).await.removed, 1);
    assert_eq!(state(&eager, fetched.local_id).await, None);
}

#[tokio::test]
async fn batches_are_bounded_and_a_round_finishes_every_due_message() {
    let mut config = crate::config::for_tests();
    config.housekeeping.batch_size = 2;
    let store: Arc<dyn Store> = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    let broker = Broker::new(store, Arc::new(config));
    let mut ids = Vec::new();
    for _ in 0..5 {
        let record = delivered(&broker).await;
        broker.store().mark_fetched(record.local_id).await.unwrap();
        broker
            .store()
            .acknowledge(record.local_id, None, None)
            .await
            .unwrap();
        ids.push(record.local_id);
    }
    let report = broker.housekeep(clock::now() + 15 * DAY).await;
    assert_eq!(report.removed, 5);
    for id in ids {
        assert_eq!(state(&broker, id).await, None);
    }
}
