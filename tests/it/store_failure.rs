//! A failing disk (ENOSPC on writes and syncs): new messages get 503 `OtherError`, nothing
//! half-written becomes visible, mailboxes keep being served, and intake resumes when the
//! disk recovers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use shsd::app::App;
use shsd::protocol::message_list::MessageList;
use shsd::store::KvStore;
use shsd::store::kv::{Batch, Direction, EngineError, Entry, KvEngine};
use shsd::store::sled::{SledConfig, SledEngine};

use crate::harness::*;

/// sled with a switch that makes every write and sync fail as a full disk does.
struct FullDisk {
    inner: SledEngine,
    full: Arc<AtomicBool>,
}

impl FullDisk {
    fn check(&self) -> Result<(), EngineError> {
        if self.full.load(Ordering::SeqCst) {
            Err(EngineError::Io(std::io::Error::from_raw_os_error(28))) // ENOSPC
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
        self.inner.sync()
    }
    fn next_id(&self) -> Result<u64, EngineError> {
        self.inner.next_id()
    }
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
    let switch = Arc::clone(&full);
    let store_dir = tempfile::tempdir().unwrap();
    let store_path = store_dir.path().join("store");
    let node = Node::start_over(Extra::default(), move |config| {
        let engine = FullDisk {
            inner: SledEngine::open(&SledConfig::new(store_path)).unwrap(),
            full: switch,
        };
        App::with_store(config, Arc::new(KvStore::open(engine).unwrap())).unwrap()
    })
    .await;
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
