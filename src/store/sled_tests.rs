//! sled-only tests: what survives closing, dropping and killing the process. (The
//! behaviour every engine shares is in the conformance suite.)

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::{INDEX_SEGMENT_SIZE, SEGMENT_SIZE, SledConfig, SledEngine, created_segment_size};
use crate::store::conformance::{
    SENDER, accept, address, confirm_summary, new_message, read_part, sled_config, summary,
    summary_with_corr, upload, upload_in,
};
use crate::store::kv::{Batch, KvEngine, Op};
use crate::store::lifecycle;
use crate::store::wal::{SledStoreEngine, open_sled};
use crate::store::{
    Acceptance, CHUNK_SIZE, JobOutcome, KvStore, MailboxQuery, MessageRecord, Route, State, Store,
    keys,
};

fn open(dir: &Path) -> KvStore<SledStoreEngine> {
    KvStore::open(open_sled(&sled_config(dir), Default::default()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reopen_keeps_accepted_messages_jobs_and_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = address("2120000142");
    let body: Vec<u8> = (0..(2 * CHUNK_SIZE + 99))
        .map(|i| (i % 253) as u8)
        .collect();
    let (routed, pending, acked, orphan);
    {
        let store = open(dir.path());
        let (record, job) = accept(&store, summary("tx-routed"), SENDER, Route::Job).await;
        let done = store
            .complete_job(
                job.unwrap(),
                JobOutcome::Deliver {
                    mailbox: mailbox.clone(),
                },
            )
            .await
            .unwrap();
        assert!(matches!(done, crate::store::JobCompletion::Applied { .. }));
        routed = store.message(record.local_id).await.unwrap().unwrap();

        let payload = upload(&store, &[&body, b""]).await;
        let message = new_message(summary("tx-pending"), SENDER, payload, Route::Job);
        let Acceptance::Accepted { record, job } = store.accept(message).await.unwrap() else {
            panic!("not accepted");
        };
        pending = (record, job.unwrap());

        let delivered = accept(
            &store,
            summary("tx-acked"),
            SENDER,
            Route::Mailbox(mailbox.clone()),
        )
        .await
        .0;
        store
            .acknowledge(delivered.local_id, None, None)
            .await
            .unwrap();
        acked = store.message(delivered.local_id).await.unwrap().unwrap();

        // An upload cut off by a crash: marker and chunks written, never accepted.
        orphan = crate::store::PayloadId(uuid::Uuid::new_v4());
        let mut batch = crate::store::kv::Batch::default();
        let marker = keys::PendingPayload {
            started_unix: 0,
            discarding: false,
        };
        batch.put(
            keys::pending(orphan),
            crate::store::codec::encode(&marker).unwrap(),
        );
        for index in 0..3 {
            batch.put(keys::chunk(orphan, 0, index), vec![9; CHUNK_SIZE]);
        }
        store.engine().apply(batch).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.message(routed.local_id).await.unwrap(),
        Some(routed.clone())
    );
    assert_eq!(
        store.message(acked.local_id).await.unwrap(),
        Some(acked.clone())
    );
    assert_eq!(acked.state, State::Acknowledged);
    let listed = store
        .list(&mailbox, &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(listed, [routed]);
    // Mailbox depths are counted from the index at open.
    assert_eq!(
        store.mailbox_depths().await.unwrap(),
        [(mailbox.clone(), 1)]
    );
    assert!(store.size_on_disk().await.unwrap().unwrap() > 0);

    let jobs = store.pending_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].message.clone(), jobs[0].id), pending);
    assert_eq!(
        read_part(&store, pending.0.payload.id, 0).await.unwrap(),
        body
    );
    assert_eq!(pending.0.payload.parts[1].len, 0);

    // The orphan upload was removed at open, marker and chunks.
    let engine = store.engine();
    assert_eq!(engine.get(&keys::pending(orphan)).unwrap(), None);
    let left = engine
        .scan(
            &keys::chunk_prefix(orphan),
            None,
            crate::store::kv::Direction::Forward,
            10,
        )
        .unwrap();
    assert!(left.is_empty());

    // Ids keep growing across the restart: a new arrival lists after the old ones, a new
    // job runs after the resumed one.
    let (newer, job) = accept(&store, summary("tx-newer"), SENDER, Route::Job).await;
    assert!(newer.arrival_seq > pending.0.arrival_seq);
    assert!(job.unwrap() > pending.1);
}

/// A store written before the housekeeping index existed gets it at open; a removal cut
/// off between its batch and the chunk deletion is finished at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_indexes_old_records_and_finishes_removals() {
    let dir = tempfile::tempdir().unwrap();
    let (record, removed_payload);
    {
        let store = open(dir.path());
        record = accept(
            &store,
            summary("tx-old"),
            SENDER,
            Route::Mailbox(address("2120000142")),
        )
        .await
        .0;
        // As an older version left it: no `h/` key, no migration marker.
        let mut batch = crate::store::kv::Batch::default();
        batch.delete(lifecycle::housekeeping_key(&record).unwrap());
        batch.delete(keys::HOUSEKEEPING_INDEXED.to_vec());
        // A payload whose removal batch committed but whose chunks were not deleted yet.
        removed_payload = crate::store::PayloadId(uuid::Uuid::new_v4());
        let marker = keys::PendingPayload {
            started_unix: 0,
            discarding: true,
        };
        batch.put(
            keys::pending(removed_payload),
            crate::store::codec::encode(&marker).unwrap(),
        );
        batch.put(keys::chunk(removed_payload, 0, 0), vec![1; 8]);
        store.engine().apply(batch).unwrap();
        store.flush().await.unwrap();
        let soon = chrono::Utc::now() + std::time::Duration::from_secs(1);
        assert!(
            store
                .due(crate::store::Due::Unfetched, soon, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let store = open(dir.path());
    let soon = chrono::Utc::now() + std::time::Duration::from_secs(1);
    let due = store
        .due(crate::store::Due::Unfetched, soon, 10)
        .await
        .unwrap();
    assert_eq!(due, [record.local_id]);
    let chunk = store
        .engine()
        .get(&keys::chunk(removed_payload, 0, 0))
        .unwrap();
    assert_eq!(chunk, None);
}

/// What earlier builds wrote is still served and cleaned up: a record in the JSON form
/// (format version 1) is found by tx.id and fetched, and its removal also deletes the
/// mailbox/tx.id key those builds wrote beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_of_earlier_builds_are_served_and_removed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = address("2120000142");
    let store = open(dir.path());
    let record = accept(
        &store,
        summary("tx-earlier"),
        SENDER,
        Route::Mailbox(mailbox.clone()),
    )
    .await
    .0;
    let legacy = keys::legacy_mailbox_tx(&mailbox, &record.tx_id);
    let mut json = vec![crate::store::codec::JSON_VERSION];
    json.extend(serde_json::to_vec(&record).unwrap());
    let mut batch = Batch::default();
    batch.put(keys::message(record.local_id), json);
    batch.put(
        legacy.clone(),
        crate::store::codec::encode(&record.local_id).unwrap(),
    );
    store.engine().apply(batch).unwrap();

    let found = store.find_in_mailbox(&mailbox, "tx-earlier").await.unwrap();
    assert_eq!(found.as_ref(), Some(&record));
    assert_eq!(
        store
            .find_in_mailbox(&address("2120000142.other"), "tx-earlier")
            .await
            .unwrap(),
        None
    );
    let fetched = store.mark_fetched(record.local_id).await.unwrap();
    assert_eq!(fetched.state, State::Fetched);

    store.remove(record.local_id).await.unwrap();
    assert_eq!(store.engine().get(&legacy).unwrap(), None);
    assert_eq!(store.message(record.local_id).await.unwrap(), None);
}

/// A management message (a confirm) gets no corr.id key: no answer looks for one. One
/// that an earlier build indexed is not returned, and its key goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn management_messages_stay_out_of_the_corr_id_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut confirm = summary("tx-confirm");
    confirm.corr_id = "conversation".into();
    confirm.sequence_type = "adm".into();
    let mailbox = Route::Mailbox(address("5565317129"));
    let record = accept(&store, confirm.clone(), SENDER, mailbox.clone())
        .await
        .0;
    let key = keys::corr("conversation", record.local_id);
    assert_eq!(store.engine().get(&key).unwrap(), None);

    confirm.tx_id = "tx-confirm-earlier".into();
    let earlier = accept(&store, confirm, SENDER, mailbox).await.0;
    let legacy = keys::corr("conversation", earlier.local_id);
    let mut batch = Batch::default();
    batch.put(legacy.clone(), Vec::new());
    store.engine().apply(batch).unwrap();
    let found = store.with_corr_id("conversation", 10, &[]).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
    store.remove(earlier.local_id).await.unwrap();
    assert_eq!(store.engine().get(&legacy).unwrap(), None);
}

#[tokio::test]
async fn accept_returns_after_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let before = store.sync_rounds();
    accept(&store, summary("tx-synced"), SENDER, Route::Job).await;
    let after_accept = store.sync_rounds();
    assert!(after_accept > before);
    // Reads and unsynced writes do not sync.
    let (record, job) = accept(&store, summary("tx-route"), SENDER, Route::Job).await;
    let synced = store.sync_rounds();
    let deliver = JobOutcome::Deliver {
        mailbox: address("2120000142"),
    };
    store.complete_job(job.unwrap(), deliver).await.unwrap();
    store.mark_fetched(record.local_id).await.unwrap();
    store.message(record.local_id).await.unwrap();
    assert_eq!(store.sync_rounds(), synced);
    store
        .acknowledge(record.local_id, None, None)
        .await
        .unwrap();
    assert!(store.sync_rounds() > synced);
}

#[tokio::test]
async fn dropping_without_flush_after_accept_keeps_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (record, _) = accept(&store, summary("tx-drop"), SENDER, Route::Job).await;
    // No explicit flush or close: accept's own sync must be enough. (sled's Drop also
    // flushes, so only the kill -9 test below rules out help from a clean shutdown.)
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.message(record.local_id).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        read_part(&store, record.payload.id, 0).await.unwrap(),
        b"abc"
    );
}

#[tokio::test]
async fn oversized_records_stay_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // A 3 MiB label: in sled it would make a tree node larger than segment_size / 4 and
    // spill into a blob file; the index holds a pointer into the write-ahead log instead.
    let payload = upload(&store, &[b"x"]).await;
    let mut message = new_message(summary("tx-huge"), SENDER, payload, Route::Job);
    message.label = vec![b'a'; 3 * 1024 * 1024];
    let Acceptance::Accepted { record, .. } = store.accept(message).await.unwrap() else {
        panic!("not accepted");
    };
    store.engine().checkpoint().unwrap();
    assert_eq!(store.engine().index().blob_files().unwrap(), 0);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.message(record.local_id).await.unwrap(), Some(record));
}

#[tokio::test]
async fn chunks_stay_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let body = vec![7u8; 40 * CHUNK_SIZE];
    let payload = upload_in(&store, &[&body], CHUNK_SIZE).await;
    let message = new_message(summary("tx-big"), SENDER, payload, Route::Job);
    store.accept(message).await.unwrap();
    store.engine().checkpoint().unwrap();
    assert_eq!(store.engine().index().blob_files().unwrap(), 0);
}

const CHILD_ENV: &str = "SHSD_STORE_CRASH_CHILD";
const CRASH_TEST: &str = "store::sled::tests::accepted_messages_survive_kill_9";

/// The payload of message `i` in the crash test: two parts, sizes varying around chunks.
fn crash_body(i: usize) -> (Vec<u8>, Vec<u8>) {
    let first = (0..(i * 7919 % (3 * CHUNK_SIZE)))
        .map(|j| (i + j) as u8)
        .collect();
    let second = vec![i as u8; i % 5];
    (first, second)
}

/// The child: accepts messages from four writers and prints each one once `accept`
/// returned, until the parent kills it.
fn crash_child(dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(open(&dir));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in (w..100_000).step_by(4) {
                        let (first, second) = crash_body(i);
                        let payload = upload_in(&*store, &[&first, &second], 5000).await;
                        let message = new_message(
                            summary(&format!("crash-{i}")),
                            SENDER,
                            payload,
                            Route::Job,
                        );
                        let Ok(Acceptance::Accepted { record, .. }) = store.accept(message).await
                        else {
                            panic!("accept failed");
                        };
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACCEPTED {i} {}", record.local_id).unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[test]
fn accepted_messages_survive_kill_9() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        crash_child(PathBuf::from(dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: Vec<(usize, LocalIdText)> = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let mut words = line.split(' ');
        if words.next() == Some("ACCEPTED") {
            let i = words.next().unwrap().parse().unwrap();
            acked.push((i, words.next().unwrap().to_owned()));
            if acked.len() == 80 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no sled flush on the way out
    child.wait().unwrap();
    assert_eq!(acked.len(), 80, "the child stopped early");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = open(dir.path());
        for (i, local_id) in &acked {
            let id = crate::store::LocalId(local_id.parse().unwrap());
            let record = store
                .message(id)
                .await
                .unwrap()
                .expect("acknowledged message lost");
            assert_eq!(record.tx_id, format!("crash-{i}"));
            let (first, second) = crash_body(*i);
            assert_eq!(
                read_part(&store, record.payload.id, 0)
                    .await
                    .unwrap_or_default(),
                first
            );
            assert_eq!(
                read_part(&store, record.payload.id, 1)
                    .await
                    .unwrap_or_default(),
                second
            );
        }
        // Nothing half-visible: every message that is there (acknowledged to the child or
        // not) is complete, and has its job.
        let jobs = store.pending_jobs(None, 100_000).await.unwrap();
        assert!(jobs.len() >= acked.len());
        for job in &jobs {
            assert_complete(&store, &job.message).await;
        }
        println!(
            "kill -9: {} acknowledged, {} present after restart",
            acked.len(),
            jobs.len()
        );
    });
}

type LocalIdText = String;

async fn assert_complete(store: &KvStore<SledStoreEngine>, record: &MessageRecord) {
    let i: usize = record.tx_id.trim_start_matches("crash-").parse().unwrap();
    let (first, second) = crash_body(i);
    assert_eq!(
        read_part(store, record.payload.id, 0)
            .await
            .unwrap_or_default(),
        first
    );
    assert_eq!(
        read_part(store, record.payload.id, 1)
            .await
            .unwrap_or_default(),
        second
    );
}

/// sled refuses a segment size other than the one a store was created with, so a store
/// made with the old 8 MiB segments must still open when the configuration says 1 MiB.
#[test]
fn a_store_keeps_the_segment_size_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let engine = SledEngine::open(&SledConfig::new(&path)).unwrap();
        engine
            .apply(Batch {
                ops: vec![Op::Put(b"k/old".to_vec(), b"kept".to_vec())],
            })
            .unwrap();
        engine.sync().unwrap();
    }
    assert_eq!(created_segment_size(&path).unwrap(), Some(SEGMENT_SIZE));
    let config = SledConfig {
        segment_size: INDEX_SEGMENT_SIZE,
        ..SledConfig::new(&path)
    };
    let engine = SledEngine::open(&config).unwrap();
    assert_eq!(engine.get(b"k/old").unwrap(), Some(b"kept".to_vec()));

    let fresh = dir.path().join("fresh");
    drop(SledEngine::open(&SledConfig {
        segment_size: INDEX_SEGMENT_SIZE,
        ..SledConfig::new(&fresh)
    }));
    assert_eq!(
        created_segment_size(&fresh).unwrap(),
        Some(INDEX_SEGMENT_SIZE)
    );
}

/// Accepts a message from [`SENDER`] with `tx_id` and `corr_id` into the municipality's
/// mailbox.
async fn accept_in_conversation(
    store: &KvStore<SledStoreEngine>,
    tx_id: &str,
    corr_id: &str,
) -> MessageRecord {
    let route = Route::Mailbox(address("2120000142"));
    accept(store, summary_with_corr(tx_id, corr_id), SENDER, route)
        .await
        .0
}

/// The store knows which corr.ids only one indexed message has, also after a reopen (the
/// filters are filled again from the `c/` index); management messages are not indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corr_ids_shared_by_two_messages_are_known_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.wait_for_key_filters();
        accept_in_conversation(&store, "tx-1", "shared").await;
        accept_in_conversation(&store, "tx-2", "alone").await;
        assert!(!store.corr_id_may_be_shared("shared"));
        accept_in_conversation(&store, "tx-3", "shared").await;
        accept(
            &store,
            confirm_summary("tx-4", "alone"),
            SENDER,
            Route::Mailbox(address("2120000142")),
        )
        .await;
        assert!(store.corr_id_may_be_shared("shared"));
        assert!(
            !store.corr_id_may_be_shared("alone"),
            "a confirm is not indexed"
        );
        assert!(!store.corr_id_may_be_shared("never"));
    }
    let store = open(dir.path());
    store.wait_for_key_filters();
    assert!(store.corr_id_may_be_shared("shared"));
    assert!(!store.corr_id_may_be_shared("alone"));
    accept_in_conversation(&store, "tx-5", "alone").await;
    assert!(store.corr_id_may_be_shared("alone"));
}

/// A conversation's first message indexed by corr.id through its `t/` key counts in the
/// filters like a `c/` key, also when they are filled again after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corr_id_indexed_by_its_tx_id_counts_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.wait_for_key_filters();
        let first = accept_in_conversation(&store, "conv-1", "conv-1").await;
        accept_in_conversation(&store, "conv-3", "conv-3").await;
        assert!(!store.corr_id_may_be_shared("conv-1"));
        accept_in_conversation(&store, "conv-2", "conv-1").await;
        assert!(store.corr_id_may_be_shared("conv-1"));
        let own_key = keys::corr("conv-1", first.local_id);
        assert_eq!(store.engine().get(&own_key).unwrap(), None, "no c/ key");
    }
    let store = open(dir.path());
    store.wait_for_key_filters();
    assert!(store.corr_id_may_be_shared("conv-1"), "t/ and c/ together");
    assert!(!store.corr_id_may_be_shared("conv-3"));
    assert_eq!(
        store.with_corr_id("conv-1", 10, &[]).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.with_corr_id("conv-3", 10, &[]).await.unwrap().len(),
        1
    );
}

/// tx.ids stored before a reopen are still duplicates after it (the filter of tx.ids is
/// filled again from the `t/` index), for the same sender and for another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_id_stored_before_a_reopen_is_still_taken() {
    let dir = tempfile::tempdir().unwrap();
    let route = || Route::Mailbox(address("2120000142"));
    let original = {
        let store = open(dir.path());
        accept(&store, summary("tx-kept"), SENDER, route()).await.0
    };
    let store = open(dir.path());
    // Filled, the filter is what answers; before, every tx.id is looked up.
    store.wait_for_key_filters();
    let again = |sender: &'static str| {
        let store = &store;
        async move {
            let payload = upload(store, &[b"abc"]).await;
            let message = new_message(summary("tx-kept"), sender, payload, route());
            store.accept(message).await.unwrap()
        }
    };
    assert_eq!(again(SENDER).await, Acceptance::Duplicate(original));
    assert_eq!(
        again(crate::store::conformance::OTHER_SENDER).await,
        Acceptance::TxIdTakenByOtherSender
    );
}
