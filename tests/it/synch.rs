//! Synchronous request/reply (spec §6): the built-in ping, a request forwarded to a local
//! business system and its reply relayed, the destination's own error passed through, a
//! timeout (504) and an unreachable destination (502), and a missing agreement (400).

use std::time::Duration;

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{Label, SequenceType, TransferType};
use shsd::protocol::mime::{Limits, split_message};

use crate::check::*;
use crate::harness::*;
use crate::receiver::{Receiver, Reply, free_port};

const PING: &str = "urn:X-shs:00000000-0000-0000-0000-000000000000";

/// A synchronous request from the portal to `to` for `product`.
fn request(to: &str, product: &str) -> Label {
    let mut label = label_to(Some(to));
    label.transfer_type = TransferType::Synch;
    label.sequence_type = SequenceType::Request;
    label.product.value = product.to_owned();
    label
}

/// A business system of the municipality answers PRODUCT requests at the receiver.
fn service(port: u16, timeout_secs: u64) -> Extra {
    Extra(format!(
        "[synch]\ntimeout_secs = {timeout_secs}\n[[synch.services]]\norganisation = \"2120000142\"\n\
         product = \"{PRODUCT}\"\nurl = \"https://localhost:{port}/svar\"\n"
    ))
}

#[tokio::test]
async fn ping_is_answered_by_the_node() {
    let node = Node::start().await;
    let label = request(KOMMUN, PING);
    let reply = post_label(&node, &node.portal(), &label).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "message/rfc822");
    let message = split_message(&reply.body, Some("message/rfc822"), Limits::default()).unwrap();
    let answer = Label::parse(&message.label).unwrap();
    assert_eq!(answer.sequence_type, SequenceType::Reply);
    assert_eq!(answer.corr_id, label.corr_id);
    assert_ne!(answer.tx_id, label.tx_id);
    assert_eq!(answer.to.unwrap().value, PORTAL);
    assert_eq!(answer.from.unwrap().value, KOMMUN);
    assert_eq!(message.parts.len(), 1);
    assert!(String::from_utf8_lossy(&message.parts[0].1).contains("pong from test-node"));
    // Nothing is in any mailbox; the exchange is in the message log, state SENT.
    assert_nothing_stored(&node).await;
    let url = format!("{}/api/messages?txid={}", node.admin_base, label.tx_id);
    let logged: serde_json::Value =
        serde_json::from_slice(&reqwest::get(&url).await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(logged[0]["state"], "SENT", "{logged}");
    assert_eq!(logged[0]["size"], 0, "no payload is kept");
    node.stop().await;
}

#[tokio::test]
async fn a_request_is_forwarded_and_its_reply_relayed() {
    let port = free_port().await;
    let node = Node::start_with(service(port, 10)).await;
    let answer_body =
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbeslut: beviljat".to_vec();
    let receiver = Receiver::start_on(
        &node,
        port,
        vec![Reply {
            status: 200,
            headers: vec![
                ("content-type", "message/rfc822".into()),
                ("x-shs-txid", "reply-tx".into()),
            ],
            body: answer_body.clone(),
            delay: Duration::ZERO,
        }],
    )
    .await;
    let label = request(BYGGLOV, PRODUCT);
    let reply = post_label(&node, &node.portal(), &label).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.body, answer_body);
    assert_eq!(reply.header("x-shs-txid"), "reply-tx");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let forwarded = split_message(
        &received[0].body,
        Some(&received[0].content_type),
        Limits::default(),
    )
    .expect("the request arrives whole");
    let forwarded_label = Label::parse(&forwarded.label).unwrap();
    assert_eq!(forwarded_label.tx_id, label.tx_id);
    assert_eq!(
        forwarded_label.history.len(),
        1,
        "this node's history entry"
    );
    assert_eq!(forwarded.parts[0].1, b"<ansokan/>");
    assert_eq!(received[0].client_cert, node.pki.server.cert_der.to_vec());
    node.stop().await;
}

#[tokio::test]
async fn errors_timeouts_and_unreachable_destinations_have_their_codes() {
    let port = free_port().await;
    let node = Node::start_with(service(port, 1)).await;
    let _receiver = Receiver::start_on(
        &node,
        port,
        vec![
            Reply {
                status: 403,
                headers: vec![("x-shs-errorcode", "IllegalReceiver".into())],
                body: b"not for us".to_vec(),
                delay: Duration::ZERO,
            },
            Reply {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
                delay: Duration::from_secs(3),
            },
        ],
    )
    .await;
    let passed = post_label(&node, &node.portal(), &request(BYGGLOV, PRODUCT)).await;
    assert_refused(&passed, 403, ErrorCode::IllegalReceiver);
    let slow = post_label(&node, &node.portal(), &request(BYGGLOV, PRODUCT)).await;
    assert_refused(&slow, 504, ErrorCode::Timeout);
    node.stop().await;

    let closed = free_port().await;
    let node = Node::start_with(service(closed, 5)).await;
    let gone = post_label(&node, &node.portal(), &request(BYGGLOV, PRODUCT)).await;
    assert_refused(&gone, 502, ErrorCode::MissingDeliveryExecution);
    // No business system for this product: no address.
    let other = request(BYGGLOV, PRODUCT_2);
    let nowhere = post_label(&node, &node.portal(), &other).await;
    assert_refused(&nowhere, 400, ErrorCode::MissingDeliveryAddress);
    node.stop().await;
}

#[tokio::test]
async fn a_synchronous_request_needs_an_agreement_where_there_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("directory.toml");
    std::fs::write(&path, "").unwrap();
    let node = Node::start_with(Extra(format!(
        "[directory]\nfile = {:?}\n",
        path.display().to_string()
    )))
    .await;
    let refused = post_label(&node, &node.portal(), &request(BYGGLOV, PING)).await;
    assert_refused(&refused, 400, ErrorCode::MissingAgreement);
    node.stop().await;
}
