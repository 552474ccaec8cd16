//! The conformance suite: one set of behaviour tests that every engine must pass.
//!
//! Each case is an `async fn(Fixture)`; [`conformance_suite!`] instantiates all of them as
//! `#[tokio::test]`s for one engine factory, and the bottom of this file does so for the
//! memory, sled and PostgreSQL engines (the last on a server the tests start, see
//! [`super::postgres::test_server`]). A new engine adds one line. Routing-job cases live in
//! `conformance_jobs.rs`, list, fetch and acknowledge cases in `conformance_list.rs`, admin
//! search cases in `conformance_search.rs`, and tests of the group commit through
//! `KvStore` (with a counting engine wrapper) in `conformance_commit.rs`.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::memory::MemoryEngine;
use super::sled::SledConfig;
use super::*;

#[path = "conformance_admin.rs"]
mod admin;
#[path = "conformance_commit.rs"]
mod commit;
#[path = "conformance_jobs.rs"]
mod jobs;
#[path = "conformance_list.rs"]
mod list;
#[path = "conformance_props.rs"]
mod props;
#[path = "conformance_search.rs"]
mod search;

use admin::*;
use jobs::*;
use list::*;
use search::*;

/// A store under test and whatever must outlive it (a temporary directory).
pub(super) struct Fixture {
    pub store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send + Sync>,
}

pub(super) fn memory() -> Fixture {
    Fixture {
        store: Arc::new(KvStore::open(MemoryEngine::new()).unwrap()),
        _keep: Box::new(()),
    }
}

/// A small cache keeps parallel test runs light.
pub(super) fn sled_config(path: &std::path::Path) -> SledConfig {
    SledConfig {
        path: path.join("store"),
        cache_capacity: 8 * 1024 * 1024,
        segment_size: super::sled::INDEX_SEGMENT_SIZE,
    }
}

pub(super) fn sled() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let engine = super::wal::open_sled(&sled_config(dir.path()), Default::default()).unwrap();
    Fixture {
        store: Arc::new(KvStore::open(engine).unwrap()),
        _keep: Box::new(dir),
    }
}

/// A fresh database on the test PostgreSQL server ([`super::postgres::test_server`]).
pub(super) fn postgres() -> Fixture {
    Fixture {
        store: Arc::new(super::postgres::test_server::fresh_store()),
        _keep: Box::new(()),
    }
}

pub(super) const SENDER: &str = "5565317129";
pub(super) const OTHER_SENDER: &str = "2120000142";
pub(super) const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00";

pub(super) fn address(text: &str) -> Address {
    text.parse().unwrap()
}

/// A production `event` from SENDER to 2120000142 with the test product.
pub(super) fn summary(tx_id: &str) -> MessageSummary {
    MessageSummary {
        tx_id: tx_id.into(),
        timestamp: "2024-05-17T08:30:00".into(),
        corr_id: format!("corr-{tx_id}"),
        content_id: format!("content-{tx_id}"),
        size: 3,
        from: Some(format!("urn:X-shs:{SENDER}")),
        to: Some("urn:X-shs:2120000142".into()),
        product: PRODUCT.into(),
        sequence_type: "event".into(),
        status: "production".into(),
        ..MessageSummary::default()
    }
}

/// [`summary`] with another corr.id.
pub(super) fn summary_with_corr(tx_id: &str, corr_id: &str) -> MessageSummary {
    MessageSummary {
        corr_id: corr_id.into(),
        ..summary(tx_id)
    }
}

/// A confirm's summary (a management message, never indexed by corr.id) in conversation
/// `corr_id`.
pub(super) fn confirm_summary(tx_id: &str, corr_id: &str) -> MessageSummary {
    let confirm = MessageSummary {
        sequence_type: "adm".into(),
        product: "urn:X-shs:confirm".into(),
        ..summary_with_corr(tx_id, corr_id)
    };
    assert!(confirm.is_management());
    confirm
}

/// A label with ISO-8859-1 bytes, to check it is kept byte for byte.
pub(super) fn label(tx_id: &str) -> Vec<u8> {
    let mut label =
        format!("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<shs.label tx.id=\"{tx_id}\">")
            .into_bytes();
    label.extend_from_slice(b"<subject>r\xe4kning</subject></shs.label>");
    label
}

pub(super) fn new_message(
    summary: MessageSummary,
    sender: &str,
    payload: PayloadInfo,
    route: Route,
) -> NewMessage {
    NewMessage {
        local_id: LocalId::random(),
        sender: sender.parse().unwrap(),
        arrival: Utc.with_ymd_and_hms(2024, 5, 17, 8, 30, 1).unwrap(),
        label: label(&summary.tx_id),
        summary,
        payload,
        signer: None,
        route,
    }
}

fn part_headers(index: usize) -> Vec<u8> {
    let mut headers = b"Content-Type: application/octet-stream\r\n".to_vec();
    headers.extend_from_slice(
        format!("Content-Disposition: attachment; filename=\"r\u{e4}-{index}\"\r\n").as_bytes(),
    );
    headers.extend_from_slice(b"X-Latin1: \xe5\xe4\xf6\r\n");
    headers
}

/// Uploads `parts`, writing each in pieces of `piece` bytes.
pub(super) async fn upload_in(store: &dyn Store, parts: &[&[u8]], piece: usize) -> PayloadInfo {
    let mut writer = store.begin_payload().await.unwrap();
    for (index, part) in parts.iter().enumerate() {
        writer.start_part(part_headers(index)).await.unwrap();
        for slice in part.chunks(piece.max(1)) {
            writer.write(slice).await.unwrap();
        }
        writer.end_part().await.unwrap();
    }
    writer.finish().await.unwrap()
}

pub(super) async fn upload(store: &dyn Store, parts: &[&[u8]]) -> PayloadInfo {
    upload_in(store, parts, 4096).await
}

pub(super) async fn read_part(store: &dyn Store, payload: PayloadId, part: u32) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut index = 0;
    while let Some(chunk) = store.read_chunk(payload, part, index).await.unwrap() {
        assert!(chunk.len() <= CHUNK_SIZE);
        body.extend_from_slice(&chunk);
        index += 1;
    }
    (index > 0).then_some(body)
}

/// Accepts a fresh message and returns its record and job.
pub(super) async fn accept(
    store: &dyn Store,
    summary: MessageSummary,
    sender: &str,
    route: Route,
) -> (MessageRecord, Option<JobId>) {
    let payload = upload(store, &[b"abc"]).await;
    match store
        .accept(new_message(summary, sender, payload, route))
        .await
        .unwrap()
    {
        Acceptance::Accepted { record, job } => (record, job),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// Instantiates every conformance case for one engine factory.
macro_rules! conformance_suite {
    ($factory:path) => {
        conformance_suite!(@cases $factory;
            accept_stores_record_payload_and_job,
            duplicate_from_same_sender_returns_original,
            tx_id_of_other_sender_is_refused,
            concurrent_duplicates_yield_one_acceptance,
            payload_round_trips_byte_exact,
            payload_is_invisible_until_accepted,
            aborted_or_dropped_upload_is_removed,
            discarded_payload_cannot_be_accepted,
            deliver_job_puts_message_in_mailbox,
            quarantine_job_stores_error_notice,
            fan_out_copies_share_the_payload,
            completing_a_job_twice_changes_nothing,
            pending_jobs_page_oldest_first,
            list_is_oldest_first_and_per_mailbox,
            list_filters_each_attribute,
            list_sorts_and_limits,
            fetch_then_ack_with_generated_confirm,
            a_listed_message_is_found_in_its_own_mailbox_only,
            ack_is_idempotent,
            ack_and_fetch_refuse_wrong_states,
            search_filters_each_field,
            search_is_newest_first_and_limited,
            requeue_release_and_resend_are_audited,
            admin_changes_refuse_wrong_states,
            delete_removes_every_trace_but_the_audit,
            due_messages_follow_their_state_in_time_order,
            expiry_unlists_and_stores_the_notice,
            shared_payload_goes_with_the_last_copy,
            messages_are_found_by_corr_id_and_answers_noted,
            a_conversation_begun_under_its_own_tx_id_is_found_whole,
            a_logged_message_is_sent_at_once_without_job_or_mailbox,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                super::$case($factory()).await
            }
        )*
    };
}

mod memory_engine {
    conformance_suite!(super::memory);
}

mod sled_engine {
    conformance_suite!(super::sled);
}

mod postgres_engine {
    conformance_suite!(super::postgres);
}

async fn accept_stores_record_payload_and_job(f: Fixture) {
    let store = &*f.store;
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let payload = upload(store, &[&body]).await;
    let message = new_message(summary("tx-1"), SENDER, payload.clone(), Route::Job);
    let Acceptance::Accepted { record, job } = store.accept(message.clone()).await.unwrap() else {
        panic!("not accepted");
    };
    assert_eq!(record.local_id, message.local_id);
    assert_eq!(record.tx_id, "tx-1");
    assert_eq!(record.sender.as_str(), SENDER);
    assert_eq!(record.state, State::New);
    assert_eq!(record.state_log.len(), 1);
    assert_eq!(record.arrival, message.arrival);
    assert_eq!(record.label, message.label);
    assert_eq!(record.summary, message.summary);
    assert_eq!(record.payload, payload);
    assert_eq!(record.mailbox, None);

    assert_eq!(
        store.message(record.local_id).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(read_part(store, payload.id, 0).await.unwrap(), body);
    let jobs = store.pending_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(Some(jobs[0].id), job);
    assert_eq!(jobs[0].message, record);
    assert_eq!(store.message(LocalId::random()).await.unwrap(), None);
}

async fn duplicate_from_same_sender_returns_original(f: Fixture) {
    let store = &*f.store;
    let (original, _) = accept(store, summary("tx-dup"), SENDER, Route::Job).await;
    let second_payload = upload(store, &[b"second body"]).await;
    let mut again = new_message(
        summary("tx-dup"),
        SENDER,
        second_payload.clone(),
        Route::Job,
    );
    again.arrival = Utc::now();
    let answer = store.accept(again).await.unwrap();
    assert_eq!(answer, Acceptance::Duplicate(original.clone()));
    // Nothing new: no second job, the second upload is gone, the original intact.
    assert_eq!(store.pending_jobs(None, 10).await.unwrap().len(), 1);
    assert_eq!(read_part(store, second_payload.id, 0).await, None);
    assert_eq!(
        read_part(store, original.payload.id, 0).await.unwrap(),
        b"abc"
    );
}

async fn tx_id_of_other_sender_is_refused(f: Fixture) {
    let store = &*f.store;
    let (original, _) = accept(store, summary("tx-taken"), SENDER, Route::Job).await;
    let payload = upload(store, &[b"x"]).await;
    let other = new_message(
        summary("tx-taken"),
        OTHER_SENDER,
        payload.clone(),
        Route::Job,
    );
    let answer = store.accept(other).await.unwrap();
    assert_eq!(answer, Acceptance::TxIdTakenByOtherSender);
    assert_eq!(read_part(store, payload.id, 0).await, None);
    assert_eq!(
        store.message(original.local_id).await.unwrap(),
        Some(original)
    );
}

async fn concurrent_duplicates_yield_one_acceptance(f: Fixture) {
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let store = Arc::clone(&f.store);
        tasks.push(tokio::spawn(async move {
            let payload = upload(&*store, &[b"same message"]).await;
            store
                .accept(new_message(summary("tx-race"), SENDER, payload, Route::Job))
                .await
                .unwrap()
        }));
    }
    let mut accepted = None;
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Acceptance::Accepted { record, .. } => {
                assert!(accepted.is_none(), "two acceptances");
                accepted = Some(record);
            }
            Acceptance::Duplicate(original) => duplicates.push(original),
            Acceptance::TxIdTakenByOtherSender => panic!("same sender"),
        }
    }
    let accepted = accepted.expect("one acceptance");
    assert_eq!(duplicates.len(), 23);
    assert!(duplicates.iter().all(|d| *d == accepted));
    assert_eq!(f.store.pending_jobs(None, 100).await.unwrap().len(), 1);
}

async fn payload_round_trips_byte_exact(f: Fixture) {
    let store = &*f.store;
    let big: Vec<u8> = (0..(3 * CHUNK_SIZE + 17))
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let exact: Vec<u8> = vec![0xA5; 2 * CHUNK_SIZE];
    let parts: [&[u8]; 5] = [b"<xml/>", &big, b"", &exact, b"\r\n--not-a-boundary\r\n"];
    // Odd piece sizes cross chunk boundaries at every offset.
    let payload = upload_in(store, &parts, 7001).await;
    assert_eq!(payload.parts.len(), 5);
    let chunks: Vec<u32> = payload.parts.iter().map(|p| p.chunks).collect();
    assert_eq!(chunks, [1, 4, 0, 2, 1]);
    let lens: Vec<u64> = payload.parts.iter().map(|p| p.len).collect();
    assert_eq!(lens, parts.map(|p| p.len() as u64));
    assert_eq!(payload.size, lens.iter().sum::<u64>());
    assert_eq!(payload.parts[1].raw_headers, part_headers(1));

    let (record, _) = {
        let message = new_message(summary("tx-parts"), SENDER, payload.clone(), Route::Job);
        match store.accept(message).await.unwrap() {
            Acceptance::Accepted { record, job } => (record, job),
            other => panic!("{other:?}"),
        }
    };
    let stored = store.message(record.local_id).await.unwrap().unwrap();
    assert_eq!(stored.payload, payload);
    for (index, part) in parts.iter().enumerate() {
        let body = read_part(store, payload.id, index as u32)
            .await
            .unwrap_or_default();
        assert_eq!(body, *part, "part {index}");
    }
    assert_eq!(store.read_chunk(payload.id, 1, 4).await.unwrap(), None);
    assert_eq!(store.read_chunk(payload.id, 9, 0).await.unwrap(), None);
}

async fn payload_is_invisible_until_accepted(f: Fixture) {
    let store = &*f.store;
    let payload = upload(store, &[b"hidden"]).await;
    assert_eq!(store.read_chunk(payload.id, 0, 0).await.unwrap(), None);
    let message = new_message(summary("tx-vis"), SENDER, payload.clone(), Route::Job);
    store.accept(message).await.unwrap();
    assert_eq!(read_part(store, payload.id, 0).await.unwrap(), b"hidden");
}

async fn aborted_or_dropped_upload_is_removed(f: Fixture) {
    let store = &*f.store;
    let mut writer = store.begin_payload().await.unwrap();
    let aborted = writer.id();
    writer.start_part(b"H: v\r\n".to_vec()).await.unwrap();
    writer.write(&vec![1; 2 * CHUNK_SIZE + 1]).await.unwrap();
    writer.abort().await.unwrap();
    let info = PayloadInfo {
        id: aborted,
        parts: Vec::new(),
        size: 0,
    };
    let message = new_message(summary("tx-aborted"), SENDER, info, Route::Job);
    assert_eq!(
        store.accept(message).await.unwrap_err(),
        StoreError::PayloadNotPending(aborted)
    );

    let mut writer = store.begin_payload().await.unwrap();
    let dropped = writer.id();
    writer.start_part(Vec::new()).await.unwrap();
    writer.write(&vec![2; CHUNK_SIZE + 5]).await.unwrap();
    drop(writer);
    // The drop cleans up in the background.
    for _ in 0..200 {
        if matches!(
            store.discard_payload(dropped).await,
            Err(StoreError::PayloadNotPending(_))
        ) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        store.discard_payload(dropped).await.unwrap_err(),
        StoreError::PayloadNotPending(dropped)
    );
    assert_eq!(store.read_chunk(dropped, 0, 0).await.unwrap(), None);
}

async fn discarded_payload_cannot_be_accepted(f: Fixture) {
    let store = &*f.store;
    let payload = upload(store, &[b"unwanted"]).await;
    store.discard_payload(payload.id).await.unwrap();
    assert_eq!(
        store.discard_payload(payload.id).await.unwrap_err(),
        StoreError::PayloadNotPending(payload.id)
    );
    let message = new_message(summary("tx-disc"), SENDER, payload.clone(), Route::Job);
    assert!(matches!(
        store.accept(message).await,
        Err(StoreError::PayloadNotPending(_))
    ));
    // The tx.id was not consumed by the failed accept.
    accept(store, summary("tx-disc"), SENDER, Route::Job).await;
    // Misuse of the writer is reported, not ignored.
    let mut writer = store.begin_payload().await.unwrap();
    assert!(matches!(
        writer.write(b"x").await,
        Err(StoreError::WriterMisuse(_))
    ));
    writer.start_part(Vec::new()).await.unwrap();
    assert!(matches!(
        writer.start_part(Vec::new()).await,
        Err(StoreError::WriterMisuse(_))
    ));
    assert!(matches!(
        writer.finish().await,
        Err(StoreError::WriterMisuse(_))
    ));
}
