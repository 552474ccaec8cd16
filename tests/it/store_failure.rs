//! A failing disk (ENOSPC on writes and syncs): new messages get 503 `OtherError`, nothing
//! half-written becomes visible, mailboxes keep being served, and intake resumes when the
//! disk recovers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use shsd::app::App;
use shsd::protocol::message_list::MessageList;
use shsd::store::KvStore;
use shsd::store::kv::{Batch, Direction, EngineError, Entry, KvEngine};
use shsd::store::sled::SledConfig;
use shsd::store::wal::{SledStoreEngine, open_sled};

use crate::harness::*;

/// sled with switches that make writes (`full`) or only disk syncs (`sync_fails`) fail as
/// a full or failing disk does.
struct FullDisk {
    inner: SledStoreEngine,
    full: Arc<AtomicBool>,
    sync_fails: Arc<AtomicBool>,
}

fn enospc() -> EngineError {
    EngineError::Io(std::io::Error::from_raw_os_error(28))
}

impl FullDisk {
    fn open(
        path: &std::path::Path,
        full: &Arc<AtomicBool>,
        sync_fails: &Arc<AtomicBool>,
    ) -> FullDisk {
        FullDisk {
            inner: open_sled(&SledConfig::new(path), Default::default()).unwrap(),
            full: Arc::clone(full),
            sync_fails: Arc::clone(sync_fails),
        }
    }

    fn check(&self) -> Result<(), EngineError> {
        if self.full.load(Ordering::SeqCst) {
            Err(enospc())
        } else {
            Ok(())
        }
    }
}

impl KvEngine for FullDisk {
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
        self.check()?;
        self.inner.apply(batch)
    }
    fn sync(&self) -> Result<(), EngineError> {
        self.check()?;
        if self.sync_fails.load(Ordering::SeqCst) {
            return Err(enospc());
        }
        self.inner.sync()
    }
    fn next_id(&self) -> Result<u64, EngineError> {
        self.inner.next_id()
    }
}

async fn start(
    dir: &std::path::Path,
    full: &Arc<AtomicBool>,
    sync_fails: &Arc<AtomicBool>,
) -> Node {
    let engine = FullDisk::open(&dir.join("store"), full, sync_fails);
    Node::start_over(Extra::default(), move |config| {
        App::with_store(config, Arc::new(KvStore::open(engine).unwrap())).unwrap()
    })
    .await
}

async fn list_bygglov(node: &Node) -> MessageList {
    let response = node
        .bygglov()
        .get(node.url("/shs/ds/2120000142.bygglov?filter=noack&maxhits=1000"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "mailboxes are served while the disk is full"
    );
    MessageList::parse(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_full_disk_refuses_new_messages_with_503_and_loses_nothing() {
    let full = Arc::new(AtomicBool::new(false));
    let sync_fails = Arc::new(AtomicBool::new(false));
    let store_dir = tempfile::tempdir().unwrap();
    let node = start(store_dir.path(), &full, &sync_fails).await;
    let portal = node.portal();

    let (body, content_type, before) = message_to(Some(BYGGLOV), b"<a>before</a>");
    assert_eq!(
        send(&node, &portal, body, &content_type).await.status(),
        202
    );

    full.store(true, Ordering::SeqCst);
    for size in [10, 100_000] {
        let (body, content_type, refused) = message_to(Some(BYGGLOV), &vec![b'x'; size]);
        let response = send(&node, &portal, body, &content_type).await;
        assert_eq!(response.status(), 503, "size {size}");
        assert_eq!(error_code(&response), "OtherError");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("os error"),
            "5xx bodies do not leak causes: {text}"
        );
        assert!(
            text.contains(&refused.corr_id),
            "the error names the label: {text}"
        );
    }
    let listed = list_bygglov(&node).await;
    assert_eq!(listed.messages.len(), 1);
    assert_eq!(listed.messages[0].tx_id, before.tx_id);

    full.store(false, Ordering::SeqCst);
    let (body, content_type, after) = message_to(Some(BYGGLOV), b"<a>after</a>");
    assert_eq!(
        send(&node, &portal, body, &content_type).await.status(),
        202
    );
    let listed: Vec<String> = list_bygglov(&node)
        .await
        .messages
        .into_iter()
        .map(|m| m.tx_id)
        .collect();
    assert_eq!(listed, vec![before.tx_id, after.tx_id]);
    node.stop().await;
}

#[tokio::test]
async fn a_failed_disk_sync_stops_intake_until_restart_and_loses_nothing() {
    let full = Arc::new(AtomicBool::new(false));
    let sync_fails = Arc::new(AtomicBool::new(false));
    let store_dir = tempfile::tempdir().unwrap();
    let node = start(store_dir.path(), &full, &sync_fails).await;
    let portal = node.portal();
    let (body, content_type, before) = message_to(Some(BYGGLOV), b"<a>before</a>");
    assert_eq!(
        send(&node, &portal, body, &content_type).await.status(),
        202
    );

    // After a failed fsync the kernel may have dropped dirty pages: no later sync can be
    // trusted to cover earlier writes, so the node refuses intake until it is restarted.
    sync_fails.store(true, Ordering::SeqCst);
    let (body, content_type, _) = message_to(Some(BYGGLOV), b"<a>lost disk</a>");
    assert_eq!(
        send(&node, &portal, body, &content_type).await.status(),
        503
    );
    sync_fails.store(false, Ordering::SeqCst);
    let (body, content_type, _) = message_to(Some(BYGGLOV), b"<a>still refused</a>");
    assert_eq!(
        send(&node, &portal, body, &content_type).await.status(),
        503
    );
    let listed = list_bygglov(&node).await;
    assert!(listed.messages.iter().any(|m| m.tx_id == before.tx_id));
    let stopped = node.stop_result().await;
    assert!(stopped.is_err(), "the final flush reports the failed disk");

    // A restart on the same store: the accepted message is there and intake works again.
    let node = start(store_dir.path(), &full, &sync_fails).await;
    let (body, content_type, after) = message_to(Some(BYGGLOV), b"<a>after restart</a>");
    assert_eq!(
        send(&node, &node.portal(), body, &content_type)
            .await
            .status(),
        202
    );
    let listed: Vec<String> = list_bygglov(&node)
        .await
        .messages
        .into_iter()
        .map(|m| m.tx_id)
        .collect();
    assert!(listed.contains(&before.tx_id), "{listed:?}");
    assert!(listed.contains(&after.tx_id), "{listed:?}");
    node.stop().await;
}
