//! Unit tests of the console's routing and headers over an empty in-memory broker; the
//! pages over real traffic are tested in `tests/it/console.rs`.

use std::sync::Arc;

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;

use crate::admin::{Actor, AdminServer, Readiness};
use crate::broker::Broker;
use crate::store::KvStore;
use crate::store::memory::MemoryEngine;

fn server() -> Arc<AdminServer> {
    let store = Arc::new(KvStore::open(MemoryEngine::new()).unwrap());
    let broker = Broker::new(store, Arc::new(crate::config::for_tests()));
    AdminServer::new(broker, Readiness::new())
}

async fn call(method: Method, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    let actor = Actor::Loopback {
        peer: "127.0.0.1:1".parse().unwrap(),
    };
    let response = server().handle(request, &actor).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_root_redirects_to_the_console() {
    let (status, headers, _) = call(Method::GET, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/console");
}

#[tokio::test]
async fn every_page_is_locked_down_html() {
    for path in [
        "/console",
        "/console/messages",
        "/console/messages?state=QUARANTINED&org=2120000142",
        "/console/quarantine",
        "/console/directory",
    ] {
        let (status, headers, body) = call(Method::GET, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(
            !csp.contains("script-src"),
            "no script source at all: {csp}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(!body.contains("<script"), "{path}");
        assert!(
            body.contains("loopback 127.0.0.1:1"),
            "who is signed in: {path}"
        );
    }
}

#[tokio::test]
async fn bad_requests_get_error_pages() {
    let (status, _, body) = call(Method::GET, "/console/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, body) = call(Method::GET, "/console/messages/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = call(
        Method::GET,
        "/console/messages/6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A bad field is named on the form page, and its value comes back escaped.
    let (status, _, body) = call(Method::GET, "/console/messages?org=%3Cb%3Ex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Invalid org"), "{body}");
    assert!(body.contains("value=\"&lt;b&gt;x\""), "{body}");
    assert!(!body.contains("<b>x"), "{body}");
    let (status, headers, _) = call(Method::DELETE, "/console").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.contains_key("allow"));
}
