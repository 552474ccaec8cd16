//! Push delivery (spec §5.3) against a real HTTPS receiver started by the test: retries
//! with back-off until it takes the message, a 4xx that is final at once, attempts that run
//! out, and a restart in the middle of the back-off that loses nothing.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::*;
use crate::harness::*;
use crate::receiver::{Receiver, Reply, free_port};

/// The node's configuration: the municipality may exchange PRODUCT with 5560000002,
/// which is reached at `https://localhost:{port}/shs/rs`; `push` is the [push] section.
fn config(dir: &std::path::Path, port: u16, push: &str) -> Extra {
    let toml = format!(
        r#"
[[agreements]]
id = "kommun-bolaget"
principal = "2120000142"
customer = "5560000002"
products = ["{PRODUCT}"]
flow = "any"

[[addresses]]
organisation = "5560000002"
url = "https://localhost:{port}/shs/rs"
"#
    );
    let path = dir.join("directory.toml");
    std::fs::write(&path, toml).unwrap();
    Extra(format!(
        "[directory]\nfile = {:?}\n[push]\n{push}\n",
        path.display().to_string()
    ))
}

/// Sends a message from bygglov to 5560000002 and returns its tx.id.
async fn send_to_bolaget(node: &Node) -> String {
    let mut label = label_to(Some("urn:X-shs:5560000002"));
    label.from.as_mut().unwrap().value = BYGGLOV.into();
    assert_accepted(&post_label(node, &node.bygglov(), &label).await, &label);
    label.tx_id
}

/// The admin summary of `tx` once it is in `state`.
async fn wait_for_state(node: &Node, tx: &str, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let url = format!("{}/api/messages?txid={tx}", node.admin_base);
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        let hits: Value = serde_json::from_slice(&body).unwrap();
        if let Some(hit) = hits.as_array().and_then(|h| h.first())
            && hit["state"] == state
        {
            return hit.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{tx} never became {state}: {hits}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metric(node: &Node, series: &str) -> String {
    let text = reqwest::get(format!("{}/metrics", node.admin_base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing"))
        .to_owned()
}

#[tokio::test]
async fn a_push_is_retried_until_the_receiver_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let push = "attempts = 5\nfirst_retry_secs = 1\nmax_retry_secs = 1";
    let node = Node::start_with(config(dir.path(), port, push)).await;
    let receiver = Receiver::start_on(&node, port, Reply::statuses(&[503, 503])).await;

    let tx = send_to_bolaget(&node).await;
    wait_for_state(&node, &tx, "SENT", Duration::from_secs(20)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 3, "two failures, then delivered");
    let last = received.last().unwrap();
    assert_eq!(last.content_type, "message/rfc822");
    let message = shsd::protocol::mime::split_message(
        &last.body,
        Some("message/rfc822"),
        shsd::protocol::mime::Limits::default(),
    )
    .expect("a whole SHS message");
    assert!(String::from_utf8_lossy(&message.label).contains(&tx));
    assert_eq!(message.parts.len(), 1);
    assert_eq!(last.client_cert, node.pki.server.cert_der.to_vec());
    assert_eq!(
        metric(&node, r#"shsd_push_attempts_total{outcome="retried"}"#).await,
        "2"
    );
    assert_eq!(
        metric(&node, r#"shsd_push_attempts_total{outcome="sent"}"#).await,
        "1"
    );
    assert_eq!(metric(&node, "shsd_push_retries_pending").await, "0");
    node.stop().await;
}

#[tokio::test]
async fn a_refusal_is_final_and_attempts_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let push = "attempts = 2\nfirst_retry_secs = 1\nmax_retry_secs = 1";
    let node = Node::start_with(config(dir.path(), port, push)).await;
    let receiver = Receiver::start_on(&node, port, Reply::statuses(&[403, 503, 500])).await;

    // 403: quarantined at once, an error to the sender.
    let refused = send_to_bolaget(&node).await;
    let summary = wait_for_state(&node, &refused, "QUARANTINED", Duration::from_secs(10)).await;
    assert_eq!(summary["error"]["code"], "MissingDeliveryExecution");
    assert!(
        summary["error"]["text"].as_str().unwrap().contains("403"),
        "{summary}"
    );
    assert_eq!(receiver.received().len(), 1);
    let errors = wait_for_messages(&node, "2120000142.bygglov", "").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].product.as_deref(), Some("urn:X-shs:error"));

    // 503 then 500: two attempts, then quarantined.
    let failing = send_to_bolaget(&node).await;
    let summary = wait_for_state(&node, &failing, "QUARANTINED", Duration::from_secs(20)).await;
    assert!(
        summary["error"]["text"]
            .as_str()
            .unwrap()
            .contains("failed 2 times"),
        "{summary}"
    );
    assert_eq!(receiver.received().len(), 3);
    node.stop().await;
}

#[tokio::test]
async fn a_restart_during_the_back_off_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let push = "attempts = 5\nfirst_retry_secs = 2\nmax_retry_secs = 2";
    let node = Node::start_with(config(dir.path(), port, push)).await;
    let receiver = Receiver::start_on(&node, port, Reply::statuses(&[503])).await;

    let tx = send_to_bolaget(&node).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.received().is_empty() {
        assert!(Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let node = node.restart().await;
    wait_for_state(&node, &tx, "SENT", Duration::from_secs(20)).await;
    assert_eq!(receiver.received().len(), 2);
    node.stop().await;
}
