//! The limits of spec §12, configured small: message size and label size (413
//! `IllegalMessageStructure`), data parts per message, concurrent requests per identity;
//! each violation gets its own answer, is counted in the metrics, and the node keeps serving
//! normally afterwards.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use shsd::protocol::ErrorCode;
use tokio::sync::mpsc;

use crate::admin::assert_limit_rejections;
use crate::check::*;
use crate::harness::*;

/// The node still takes, lists and fetches a small message.
async fn assert_still_serving(node: &Node) {
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<ok/>");
    assert_accepted(&post(node, &node.portal(), body, &ct).await, &label);
    let listed = list(node, &node.bygglov(), "2120000142.bygglov").await;
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    fetch(node, &node.bygglov(), "2120000142.bygglov", &label.tx_id).await;
}

/// A message whose data part has `size` bytes.
fn sized(size: usize) -> (Vec<u8>, String, shsd::protocol::label::Label) {
    message_to(Some(BYGGLOV), &vec![b'a'; size])
}

#[tokio::test]
async fn a_message_over_max_message_bytes_is_413_and_one_at_the_limit_is_taken() {
    // Every built message with the same data size has the same length (UUIDs and the
    // datetime have fixed widths), so the limit can be set to exactly one message.
    let limit = sized(1000).0.len();
    let node = Node::start_with(Extra(format!("[limits]\nmax_message_bytes = {limit}\n"))).await;
    let portal = node.portal();

    let (body, ct, label) = sized(1000);
    assert_eq!(body.len(), limit);
    assert_accepted(&post(&node, &portal, body, &ct).await, &label);

    for over in [1001, 64 * 1024, 4 * 1024 * 1024] {
        let (body, ct, _) = sized(over);
        let reply = post(&node, &portal, body, &ct).await;
        let document = assert_refused(&reply, 413, ErrorCode::IllegalMessageStructure);
        assert!(error_info(&reply).contains("message"), "{document:?}");
    }
    // Only the message at the limit was stored.
    let listed = list(&node, &node.bygglov(), "2120000142.bygglov").await;
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    let ack = format!("/shs/ds/2120000142.bygglov/{}?action=ack", label.tx_id);
    assert_eq!(call(node.bygglov().post(node.url(&ack))).await.status, 200);
    assert_still_serving(&node).await;
    assert_limit_rejections(&node, &[("message_size", 3.0)]).await;
    node.stop().await;
}

#[tokio::test]
async fn a_label_over_max_label_bytes_is_413() {
    let node = Node::start_with(Extra("[limits]\nmax_label_bytes = 2048\n".into())).await;
    let portal = node.portal();
    let mut label = label_to(Some(BYGGLOV));
    label.subject = Some("å".repeat(1500)); // 3000 bytes of UTF-8
    let reply = post_label(&node, &portal, &label).await;
    let document = assert_refused(&reply, 413, ErrorCode::IllegalMessageStructure);
    assert_eq!(document.corr_id, "unknown", "the label was not read");
    assert!(error_info(&reply).contains("label"));
    assert_nothing_stored(&node).await;

    // A label under the limit with a large data part is fine: the limit is the label's.
    let mut label = label_to(Some(BYGGLOV));
    label.subject = Some("Ansökan om bygglov".into());
    let (body, ct) = body_of(&label, &vec![b'x'; 100_000]);
    assert_accepted(&post(&node, &portal, body, &ct).await, &label);
    let ack = format!("/shs/ds/2120000142.bygglov/{}?action=ack", label.tx_id);
    assert_eq!(call(node.bygglov().post(node.url(&ack))).await.status, 200);
    assert_still_serving(&node).await;
    assert_limit_rejections(&node, &[("label_size", 1.0)]).await;
    node.stop().await;
}

/// More data parts than `max_data_parts` are refused with **400**, not 413: the reader
/// reports the extra part as a broken MIME structure (`ProtocolError::Mime`, see
/// `protocol/mime/reader.rs`, `part_header_block`), and spec §3.2 reserves 413 for sizes
/// ("message or label over its limit"). A count is a structural limit: 400
/// `IllegalMessageStructure`, with the label's ids because the label was read first.
#[tokio::test]
async fn more_data_parts_than_max_data_parts_is_400() {
    let node = Node::start_with(Extra("[limits]\nmax_data_parts = 2\n".into())).await;
    let portal = node.portal();
    let three = raw_label().replace(
        "<data datapartType=\"xml\" filename=\"a.xml\"/>",
        "<data datapartType=\"xml\"/><data datapartType=\"xml\"/><data datapartType=\"xml\"/>",
    );
    let (body, ct) = raw_message(&three, &[b"<a/>", b"<b/>", b"<c/>"]);
    let reply = post(&node, &portal, body, &ct).await;
    let document = assert_refused(&reply, 400, ErrorCode::IllegalMessageStructure);
    assert_eq!(document.corr_id, RAW_CORR_ID);
    assert_eq!(document.content_id, RAW_CONTENT_ID);
    assert!(
        error_info(&reply).contains("data parts"),
        "{}",
        error_info(&reply)
    );
    // Extra parts beyond those described count too.
    let (body, ct) = raw_message(&raw_label(), &[b"<a/>", b"<b/>", b"<c/>"]);
    assert_refused(
        &post(&node, &portal, body, &ct).await,
        400,
        ErrorCode::IllegalMessageStructure,
    );
    assert_nothing_stored(&node).await;

    let two = raw_label().replace(
        "<data datapartType=\"xml\" filename=\"a.xml\"/>",
        "<data datapartType=\"xml\"/><data datapartType=\"xml\"/>",
    );
    let (body, ct) = raw_message(&two, &[b"<a/>", b"<b/>"]);
    let reply = post(&node, &portal, body, &ct).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let split = fetch(&node, &node.bygglov(), "2120000142.bygglov", RAW_TX_ID).await;
    assert_eq!(split.parts.len(), 2);
    assert_limit_rejections(&node, &[("parts", 2.0)]).await;
    node.stop().await;
}

/// A request body fed by the test, chunk by chunk, so that a request stays in flight.
struct SlowBody(mpsc::Receiver<Bytes>);

impl Body for SlowBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn max_requests_per_identity_refuses_the_extra_request_with_503() {
    let node = Node::start_with(Extra("[limits]\nmax_requests_per_identity = 1\n".into())).await;
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<langsam/>");
    let (feed, receiver) = mpsc::channel(4);
    let slow = node
        .portal()
        .post(node.url("/shs/rs"))
        .header("content-type", ct)
        .body(reqwest::Body::wrap(SlowBody(receiver)))
        .send();
    let slow = tokio::spawn(slow);
    let (head, tail) = body.split_at(body.len() / 2);
    feed.send(Bytes::copy_from_slice(head)).await.unwrap();

    // Wait until the node holds the slow request's slot, then try a second one from the
    // same organisation on another connection.
    let portal = node.portal();
    let mut refused = None;
    for _ in 0..200 {
        let reply = call(portal.get(node.url("/shs/ds/5590000001"))).await;
        if reply.status == 503 {
            refused = Some(reply);
            break;
        }
        assert_eq!(reply.status, 200, "{}", reply.text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = refused.expect("the second request of the identity is refused");
    assert_refused(&refused, 503, ErrorCode::OtherError);
    // Other identities are not affected.
    assert_eq!(
        list(&node, &node.bygglov(), "2120000142.bygglov")
            .await
            .messages
            .len(),
        0
    );

    feed.send(Bytes::copy_from_slice(tail)).await.unwrap();
    drop(feed);
    let reply = Reply::of(slow.await.unwrap().expect("slow send")).await;
    assert_accepted(&reply, &label);
    // The slot is free again.
    let listed = list(&node, &portal, "5590000001").await;
    assert!(listed.messages.is_empty());
    assert_still_serving_after(&node, &label.tx_id).await;
    assert_limit_rejections(&node, &[("per_identity", 1.0)]).await;
    node.stop().await;
}

/// [`assert_still_serving`] when bygglov's mailbox already holds `tx`.
async fn assert_still_serving_after(node: &Node, tx: &str) {
    let ack = format!("/shs/ds/2120000142.bygglov/{tx}?action=ack");
    assert_eq!(call(node.bygglov().post(node.url(&ack))).await.status, 200);
    assert_still_serving(node).await;
}

#[tokio::test]
async fn a_stalled_body_is_refused_after_the_idle_timeout_and_nothing_is_kept() {
    let node = Node::start_with(Extra("[limits]\nbody_idle_timeout_secs = 1\n".into())).await;
    let (body, ct, label) = message_to(Some(BYGGLOV), &vec![b'x'; 200_000]);
    let (feed, receiver) = mpsc::channel(4);
    let stalled = node
        .portal()
        .post(node.url("/shs/rs"))
        .header("content-type", ct)
        .body(reqwest::Body::wrap(SlowBody(receiver)))
        .send();
    let stalled = tokio::spawn(stalled);
    // The label and part of the data part, then silence.
    feed.send(Bytes::copy_from_slice(&body[..100_000]))
        .await
        .unwrap();
    let reply = Reply::of(stalled.await.unwrap().expect("an answer, not a hang")).await;
    let document = assert_refused(&reply, 400, ErrorCode::IllegalMessageStructure);
    assert_eq!(document.corr_id, label.corr_id);
    assert!(
        error_info(&reply).contains("stalled"),
        "{}",
        error_info(&reply)
    );
    drop(feed);
    assert_nothing_stored(&node).await;
    assert_still_serving(&node).await;
    assert_limit_rejections(&node, &[("body_idle", 1.0)]).await;
    node.stop().await;
}

#[tokio::test]
async fn an_idle_connection_cannot_hold_the_last_connection_slot() {
    let node = Node::start_with(Extra(
        "[limits]\nmax_connections = 1\nheader_timeout_secs = 1\n".into(),
    ))
    .await;
    let port = node
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    // A TCP connection that never starts TLS takes the only slot...
    let idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...until the handshake timeout drops it; then the waiting client is served.
    let started = std::time::Instant::now();
    let listed = list(&node, &node.portal(), "5590000001").await;
    assert!(listed.messages.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served only after the idle connection was dropped: {:?}",
        started.elapsed()
    );
    drop(idle);
    node.stop().await;
}

#[tokio::test]
async fn a_streaming_fetch_holds_its_identitys_slot_until_the_body_is_sent() {
    let node = Node::start_with(Extra("[limits]\nmax_requests_per_identity = 1\n".into())).await;
    let data = vec![b'z'; 8 << 20];
    let (body, ct, label) = message_to(Some(BYGGLOV), &data);
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);

    let bygglov = node.bygglov();
    let path = format!("/shs/ds/2120000142.bygglov/{}", label.tx_id);
    let mut fetching = bygglov.get(node.url(&path)).send().await.unwrap();
    assert_eq!(fetching.status(), 200);
    let mut received = fetching
        .chunk()
        .await
        .unwrap()
        .expect("a first chunk")
        .len();
    // The handler has answered, but the body is still streaming: still in flight.
    let reply = call(node.bygglov().get(node.url("/shs/ds/2120000142.bygglov"))).await;
    assert_refused(&reply, 503, ErrorCode::OtherError);
    assert_eq!(
        list(&node, &node.portal(), "5590000001")
            .await
            .messages
            .len(),
        0
    );

    while let Some(chunk) = fetching.chunk().await.unwrap() {
        received += chunk.len();
    }
    assert!(received > data.len());
    let listed = list(&node, &node.bygglov(), "2120000142.bygglov?filter=noack").await;
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    node.stop().await;
}

/// A part header block is bounded too (64 KiB, not configurable): a size limit, so 413.
#[tokio::test]
async fn a_data_part_header_block_over_64_kib_is_413() {
    let node = Node::start().await;
    let boundary = RAW_BOUNDARY;
    let mut body = format!(
        "--{boundary}\r\nContent-Type: text/xml\r\n\r\n{}\r\n",
        raw_label()
    )
    .into_bytes();
    body.extend(format!("--{boundary}\r\nContent-Type: text/xml\r\nX-Padding: ").as_bytes());
    body.extend(vec![b'a'; 70 * 1024]);
    body.extend(format!("\r\n\r\n<a/>\r\n--{boundary}--\r\n").as_bytes());
    let reply = post(&node, &node.portal(), body, &multipart(boundary)).await;
    let document = assert_refused(&reply, 413, ErrorCode::IllegalMessageStructure);
    assert_eq!(document.corr_id, RAW_CORR_ID, "the label was read first");
    assert_nothing_stored(&node).await;
    assert_still_serving(&node).await;
    node.stop().await;
}
