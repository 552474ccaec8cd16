//! Store benches on the sled engine in a temporary directory (so: on this machine's disk).
//!
//! - `accept/sequential`: one writer, 4 KiB payload; every accept waits for its own
//!   fdatasync.
//! - `accept/concurrent_64`: 64 writers at once; group commit shares the syncs. Reported
//!   per message; the syncs per accept are printed.
//! - `list/200_of_N`: the default list (200 oldest) of a mailbox holding N messages (filled
//!   with 64-byte payloads: the payload size does not matter to listing).
//! - `list/200_summaries_of_N`: the same list as summaries only (what the broker's
//!   `shs.message-list` shows), answered from the index entries without reading records.
//! - `list/10_beside_N`: a 10-message mailbox next to the N-message one: the index is per
//!   mailbox, so its size does not matter.
//! - `list/filter_matching_none_of_N`: the worst case, a filter that matches nothing, so
//!   every record of the mailbox is read.
//!
//! - `codec/{encode,decode}_record`: a fetched record with a 1.5 KiB label in the stored
//!   form (version 3, MessagePack, fields by position); `codec/decode_record_named` and
//!   `codec/decode_record_json` read the same record in the forms earlier builds wrote
//!   (version 2, MessagePack with field names; version 1, JSON), for comparison.
//!
//! Before the list benches the store is closed and opened again, and the time the open
//! took is printed (a restart at that size).
//!
//! N is 100 000 by default; set `SHSD_BENCH_MAILBOX=1000000` for the spec's figure (§3.3).
//! Run: `cargo bench --bench store`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use shsd::protocol::urn::Address;
use shsd::store::codec;
use shsd::store::sled::SledConfig;
use shsd::store::wal::{SledStoreEngine, open_sled};
use shsd::store::{
    Acceptance, KvStore, LocalId, MailboxQuery, MessageRecord, MessageSummary, NewMessage, Route,
    Store,
};
use tokio::runtime::Runtime;

const SENDER: &str = "5565317129";

fn open(dir: &std::path::Path) -> Arc<KvStore<SledStoreEngine>> {
    let engine =
        open_sled(&SledConfig::new(dir.join("store")), Default::default()).expect("open the store");
    Arc::new(KvStore::open(engine).expect("open store"))
}

/// Uploads a payload of `len` bytes and accepts a message with it (1.5 KiB label).
async fn accept(store: &dyn Store, tx_id: String, route: Route, len: usize) {
    let mut writer = store.begin_payload().await.expect("begin");
    writer
        .start_part(b"Content-Type: text/xml\r\n".to_vec())
        .await
        .expect("part");
    writer.write(&vec![b'x'; len]).await.expect("write");
    writer.end_part().await.expect("end part");
    let payload = writer.finish().await.expect("finish");
    let summary = MessageSummary {
        tx_id,
        corr_id: "corr".into(),
        content_id: "content".into(),
        product: "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00".into(),
        sequence_type: "event".into(),
        status: "production".into(),
        from: Some(SENDER.into()),
        ..MessageSummary::default()
    };
    let message = NewMessage {
        local_id: LocalId::random(),
        sender: SENDER.parse().expect("org"),
        arrival: Utc::now(),
        label: vec![b'l'; 1500],
        summary,
        payload,
        signer: None,
        route,
    };
    let answer = store.accept(message).await.expect("accept");
    assert!(matches!(answer, Acceptance::Accepted { .. }));
}

/// Accepts `count` messages into `mailbox`, `parallel` at a time.
async fn fill(
    store: &Arc<KvStore<SledStoreEngine>>,
    mailbox: &Address,
    count: usize,
    parallel: usize,
) {
    let mut next = 0;
    while next < count {
        let batch = parallel.min(count - next);
        let tasks: Vec<_> = (next..next + batch)
            .map(|i| {
                let (store, mailbox) = (Arc::clone(store), mailbox.clone());
                tokio::spawn(async move {
                    accept(
                        &*store,
                        format!("{}-{i}", mailbox.bare()),
                        Route::Mailbox(mailbox),
                        64,
                    )
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        next += batch;
    }
}

fn accept_benches(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut group = c.benchmark_group("accept");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));

    let mut n = 0u64;
    group.bench_function("sequential", |b| {
        b.iter(|| {
            n += 1;
            runtime.block_on(accept(&*store, format!("seq-{n}"), Route::Job, 4096));
        })
    });

    let mut round = 0u64;
    let mut accepted = 0u64;
    let syncs_before = store.sync_rounds();
    group.bench_function("concurrent_64_per_message", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let started = Instant::now();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..64)
                        .map(|i| {
                            let store = Arc::clone(&store);
                            let tx = format!("par-{round}-{i}");
                            tokio::spawn(async move { accept(&*store, tx, Route::Job, 4096).await })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("task");
                    }
                });
                total += started.elapsed() / 64;
                accepted += 64;
            }
            total
        })
    });
    group.finish();
    let syncs = store.sync_rounds() - syncs_before;
    if accepted > 0 {
        println!(
            "accept/concurrent_64: {accepted} accepts, {syncs} syncs ({:.1} accepts per sync)",
            accepted as f64 / syncs.max(1) as f64
        );
    }
}

fn list_benches(c: &mut Criterion) {
    let size: usize = std::env::var("SHSD_BENCH_MAILBOX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let big: Address = "2120000142".parse().expect("address");
    let small: Address = "2120000142.small".parse().expect("address");
    let started = Instant::now();
    runtime.block_on(fill(&store, &big, size, 256));
    runtime.block_on(fill(&store, &small, 10, 10));
    // Let the index catch up with the fill (a checkpoint, as the store's own thread makes
    // every 2 s), so that what is measured is a list, not a list beside a checkpoint.
    let settled = Instant::now();
    store.engine().checkpoint().expect("checkpoint");
    println!(
        "list: the index caught up with the fill in {:.1?}",
        settled.elapsed()
    );
    println!(
        "list: filled a mailbox with {size} messages in {:.1?}",
        started.elapsed()
    );
    // What a restart costs at this size: the store's scans of its index keys at open
    // (mailbox depths, the filters of tx.ids and corr.ids), after the log's replay.
    drop(store);
    let reopening = Instant::now();
    let store = open(dir.path());
    println!(
        "list: reopened the store of {} messages in {:.1?}",
        size + 10,
        reopening.elapsed()
    );

    let mut group = c.benchmark_group("list");
    let query = MailboxQuery::default();
    group.bench_function(format!("200_of_{size}"), |b| {
        b.iter(|| {
            let listed = runtime.block_on(store.list(&big, &query)).expect("list");
            assert_eq!(listed.len(), 200);
        })
    });
    // What the broker's list answer reads: the summaries, from the index entries alone.
    group.bench_function(format!("200_summaries_of_{size}"), |b| {
        b.iter(|| {
            let listed = runtime
                .block_on(store.list_summaries(&big, &query))
                .expect("list");
            assert_eq!(listed.len(), 200);
        })
    });
    group.bench_function(format!("10_beside_{size}"), |b| {
        b.iter(|| {
            let listed = runtime.block_on(store.list(&small, &query)).expect("list");
            assert_eq!(listed.len(), 10);
        })
    });
    // The worst case: a filter that matches nothing walks the whole mailbox index.
    let nothing = MailboxQuery {
        corr_id: Some("no-such-corr".into()),
        ..MailboxQuery::default()
    };
    group.sample_size(10);
    group.bench_function(format!("filter_matching_none_of_{size}"), |b| {
        b.iter(|| {
            let listed = runtime.block_on(store.list(&big, &nothing)).expect("list");
            assert!(listed.is_empty());
        })
    });
    group.finish();
}

fn codec_benches(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mailbox: Address = "2120000142".parse().expect("address");
    runtime.block_on(fill(&store, &mailbox, 1, 1));
    let listed = runtime
        .block_on(store.list(&mailbox, &MailboxQuery::default()))
        .expect("list");
    let id = listed.first().expect("one record").local_id;
    let record = runtime.block_on(store.mark_fetched(id)).expect("fetched");
    let stored = codec::encode(&record).expect("encode");
    let mut named = vec![codec::NAMED_VERSION];
    serde::Serialize::serialize(
        &record,
        &mut rmp_serde::Serializer::new(&mut named).with_struct_map(),
    )
    .expect("named");
    let mut json = vec![codec::JSON_VERSION];
    json.extend(serde_json::to_vec(&record).expect("json"));
    println!(
        "codec: the record is {} bytes stored, {} with field names, {} as JSON",
        stored.len(),
        named.len(),
        json.len()
    );

    let mut group = c.benchmark_group("codec");
    group.bench_function("encode_record", |b| {
        b.iter(|| codec::encode(std::hint::black_box(&record)).expect("encode"))
    });
    group.bench_function("decode_record", |b| {
        b.iter(|| codec::decode::<MessageRecord>(std::hint::black_box(&stored)).expect("decode"))
    });
    group.bench_function("decode_record_named", |b| {
        b.iter(|| codec::decode::<MessageRecord>(std::hint::black_box(&named)).expect("decode"))
    });
    group.bench_function("decode_record_json", |b| {
        b.iter(|| codec::decode::<MessageRecord>(std::hint::black_box(&json)).expect("decode"))
    });
    group.finish();
}

criterion_group!(benches, accept_benches, list_benches, codec_benches);
criterion_main!(benches);
