//! Group commit through [`KvStore`]: a wrapper engine counts (and can fail) syncs, to show
//! that concurrent accepts share syncs and that a failed sync is never reported durable.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::*;
use crate::store::kv::{Batch, Direction, EngineError, Entry, KvEngine};

/// Wraps an engine: counts syncs, makes each take `delay` (a disk), fails them on demand.
pub(super) struct CountingEngine<E> {
    inner: E,
    syncs: Arc<AtomicU64>,
    fail: Arc<AtomicBool>,
    delay: Duration,
}

impl<E: KvEngine> KvEngine for CountingEngine<E> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        self.inner.scan(prefix, after, direction, limit)
    }

    fn apply(&self, batch: Batch) -> Result<(), EngineError> {
        self.inner.apply(batch)
    }

    fn sync(&self) -> Result<(), EngineError> {
        std::thread::sleep(self.delay);
        if self.fail.load(Ordering::SeqCst) {
            return Err(EngineError::Io(std::io::Error::other("injected EIO")));
        }
        self.inner.sync()?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn next_id(&self) -> Result<u64, EngineError> {
        self.inner.next_id()
    }
}

fn counting_store(
    delay: Duration,
) -> (
    KvStore<CountingEngine<MemoryEngine>>,
    Arc<AtomicU64>,
    Arc<AtomicBool>,
) {
    let syncs = Arc::new(AtomicU64::new(0));
    let fail = Arc::new(AtomicBool::new(false));
    let engine = CountingEngine {
        inner: MemoryEngine::new(),
        syncs: Arc::clone(&syncs),
        fail: Arc::clone(&fail),
        delay,
    };
    (KvStore::open(engine).unwrap(), syncs, fail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_accepts_share_syncs() {
    let (store, syncs, _) = counting_store(Duration::from_millis(2));
    let store: Arc<dyn Store> = Arc::new(store);
    let accepts = 500u64;
    let tasks: Vec<_> = (0..accepts)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                accept(&*store, summary(&format!("tx-{i}")), SENDER, Route::Job).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let syncs = syncs.load(Ordering::SeqCst);
    println!("group commit: {accepts} concurrent accepts took {syncs} syncs");
    assert!(syncs >= 1);
    assert!(syncs * 5 < accepts, "{syncs} syncs for {accepts} accepts");
    assert_eq!(
        store.pending_jobs(None, 1000).await.unwrap().len() as u64,
        accepts
    );
}

#[tokio::test]
async fn sequential_accepts_sync_each_without_delay() {
    let (store, syncs, _) = counting_store(Duration::ZERO);
    let started = std::time::Instant::now();
    for i in 0..20 {
        accept(&store, summary(&format!("tx-{i}")), SENDER, Route::Job).await;
    }
    // One sync per acknowledged write when nothing overlaps, and no timer in the way.
    assert_eq!(syncs.load(Ordering::SeqCst), 20);
    assert_eq!(store.sync_rounds(), 20);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_sync_is_reported_as_unavailable() {
    let (store, _, fail) = counting_store(Duration::from_millis(1));
    let delivered = accept(
        &store,
        summary("tx-ok"),
        SENDER,
        Route::Mailbox(address("2120000142")),
    )
    .await
    .0;

    fail.store(true, Ordering::SeqCst);
    let payload = upload(&store, &[b"x"]).await;
    let message = new_message(summary("tx-lost"), SENDER, payload, Route::Job);
    let err = store.accept(message).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("injected EIO"), "{err}");
    let err = store
        .acknowledge(delivered.local_id, None, None)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    // The disk coming back does not make the failed writes durable after the fact.
    fail.store(false, Ordering::SeqCst);
    let payload = upload(&store, &[b"y"]).await;
    let message = new_message(summary("tx-after"), SENDER, payload, Route::Job);
    assert!(store.accept(message).await.unwrap_err().is_unavailable());
    // Reads keep working: mailboxes are still served.
    assert!(store.message(delivered.local_id).await.unwrap().is_some());
}
