//! Unit tests of the admin endpoints over a broker whose store can be made to fail reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;

use crate::broker::Broker;
use crate::config::Config;
use crate::store::KvStore;
use crate::store::kv::{Batch, Direction, EngineError, Entry, KvEngine};
use crate::store::memory::MemoryEngine;

use super::{Actor, AdminServer, Readiness};

/// An in-memory engine whose reads fail while `broken` is set.
struct FlakyReads {
    inner: MemoryEngine,
    broken: Arc<AtomicBool>,
}

impl FlakyReads {
    fn check(&self) -> Result<(), EngineError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(EngineError::Io(std::io::Error::other("read error")))
        } else {
            Ok(())
        }
    }
}

impl KvEngine for FlakyReads {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.check()?;
        self.inner.get(key)
    }
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        self.check()?;
        self.inner.scan(prefix, after, direction, limit)
    }
    fn apply(&self, batch: Batch) -> Result<(), EngineError> {
        self.inner.apply(batch)
    }
    fn sync(&self) -> Result<(), EngineError> {
        self.inner.sync()
    }
    fn next_id(&self) -> Result<u64, EngineError> {
        self.inner.next_id()
    }
}

fn config() -> Config {
    crate::config::for_tests()
}

struct Fixture {
    server: Arc<AdminServer>,
    readiness: Arc<Readiness>,
    broken: Arc<AtomicBool>,
}

fn fixture() -> Fixture {
    let broken = Arc::new(AtomicBool::new(false));
    let engine = FlakyReads {
        inner: MemoryEngine::new(),
        broken: Arc::clone(&broken),
    };
    let store = Arc::new(KvStore::open(engine).unwrap());
    let broker = Broker::new(store, Arc::new(config()));
    let readiness = Readiness::new();
    Fixture {
        server: AdminServer::new(broker, Arc::clone(&readiness)),
        readiness,
        broken,
    }
}

async fn call(server: &AdminServer, method: Method, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    let response = server
        .handle(
            request,
            &Actor::Loopback {
                peer: "127.0.0.1:1".parse().unwrap(),
            },
        )
        .await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn readiness_needs_the_shs_listener_and_a_store_that_reads() {
    let fixture = fixture();
    let server = &fixture.server;
    let (status, body) = call(server, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("SHS listener is not serving"), "{body}");

    fixture.readiness.set_shs_serving(true);
    assert_eq!(call(server, Method::GET, "/readyz").await.0, StatusCode::OK);

    fixture.broken.store(true, Ordering::SeqCst);
    let (status, body) = call(server, Method::GET, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("store"), "{body}");
    assert!(
        !body.contains("read error"),
        "the cause is logged, not shown: {body}"
    );
    // Liveness does not depend on the store.
    assert_eq!(
        call(server, Method::GET, "/healthz").await,
        (StatusCode::OK, "ok\n".to_owned())
    );

    fixture.broken.store(false, Ordering::SeqCst);
    assert_eq!(call(server, Method::GET, "/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let fixture = fixture();
    let server = &fixture.server;
    assert_eq!(
        call(server, Method::GET, "/nope").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(server, Method::DELETE, "/nope").await.0,
        StatusCode::NOT_FOUND
    );
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = call(server, Method::POST, path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    let (status, body) = call(server, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("# HELP shsd_"), "{body}");
}
