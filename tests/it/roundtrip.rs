//! The basic SHS round trip over real mutual TLS with reqwest: send, list, fetch, ack,
//! confirm back to the sender.

use shsd::protocol::label::Label;
use shsd::protocol::management::ManagementDocument;
use shsd::protocol::message_list::MessageList;
use shsd::protocol::mime::{Limits, split_message};

use crate::harness::*;

#[tokio::test]
async fn send_list_fetch_ack_and_confirm() {
    let node = Node::start().await;
    let data = "<ansökan>åäö</ansökan>".as_bytes();
    let (body, content_type, label) = message_to(Some(BYGGLOV), data);

    let response = send(&node, &node.portal(), body, &content_type).await;
    assert_eq!(response.status(), 202);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-shs-txid"], label.tx_id.as_str());
    assert_eq!(headers["x-shs-corrid"], label.corr_id.as_str());
    assert_eq!(
        headers["x-shs-contentid"],
        label.content.content_id.as_str()
    );
    assert_eq!(headers["x-shs-nodeid"], "test-node");
    assert_eq!(headers["x-shs-duplicatemsg"], "no");
    assert!(!headers["x-shs-localid"].is_empty());
    let arrival = headers["x-shs-arrivaldate"].to_str().unwrap().to_owned();
    assert!(chrono::NaiveDateTime::parse_from_str(&arrival, "%Y-%m-%dT%H:%M:%S").is_ok());
    assert_eq!(response.text().await.unwrap(), label.tx_id);

    let bygglov = node.bygglov();
    let list = bygglov
        .get(node.url("/shs/ds/urn:X-shs:2120000142.bygglov"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert!(
        list.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let list = MessageList::parse(&list.bytes().await.unwrap()).unwrap();
    assert_eq!(list.messages.len(), 1);
    assert_eq!(list.messages[0].tx_id, label.tx_id);
    assert_eq!(list.messages[0].size, Some(data.len() as u64));

    let path = format!("/shs/ds/2120000142.bygglov/{}", label.tx_id);
    let fetched = bygglov.get(node.url(&path)).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "message/rfc822");
    let fetched = fetched.bytes().await.unwrap();
    let split = split_message(&fetched, Some("message/rfc822"), Limits::default()).unwrap();
    assert_eq!(split.parts[0].1, data, "data part byte-identical");
    let served = Label::parse(&split.label).unwrap();
    assert_eq!(served.history.len(), 1);
    assert_eq!(served.history[0].node_id, "test-node");
    assert_eq!(served.history[0].comment.as_deref(), Some("Received"));
    let mut without_history = served.clone();
    without_history.history.clear();
    assert_eq!(without_history, label, "nothing but history changed");

    // Fetched messages leave the default list but stay fetchable until acknowledged.
    let list = bygglov
        .get(node.url("/shs/ds/2120000142.bygglov"))
        .send()
        .await
        .unwrap();
    assert!(
        MessageList::parse(&list.bytes().await.unwrap())
            .unwrap()
            .messages
            .is_empty()
    );
    let list = bygglov
        .get(node.url("/shs/ds/2120000142.bygglov?filter=noack"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        MessageList::parse(&list.bytes().await.unwrap())
            .unwrap()
            .messages
            .len(),
        1
    );
    let again = bygglov.get(node.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), 200);

    let ack = bygglov
        .post(node.url(&format!("{path}?action=ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), 200);
    assert_eq!(ack.text().await.unwrap(), "OK");
    let ack_again = bygglov
        .post(node.url(&format!("{path}?action=ack")))
        .send()
        .await
        .unwrap();
    assert_eq!(ack_again.status(), 200, "ack is idempotent");
    let gone = bygglov.get(node.url(&path)).send().await.unwrap();
    assert_eq!(gone.status(), 404);

    // Exactly one confirm in the sender's mailbox.
    let portal = node.portal();
    let list = portal
        .get(node.url("/shs/ds/5590000001"))
        .send()
        .await
        .unwrap();
    let list = MessageList::parse(&list.bytes().await.unwrap()).unwrap();
    assert_eq!(list.messages.len(), 1, "{list:?}");
    let confirm = &list.messages[0];
    assert_eq!(confirm.product.as_deref(), Some("urn:X-shs:confirm"));
    assert_eq!(confirm.corr_id.as_deref(), Some(label.corr_id.as_str()));
    let message = portal
        .get(node.url(&format!("/shs/ds/5590000001/{}", confirm.tx_id)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let split = split_message(&message, Some("message/rfc822"), Limits::default()).unwrap();
    let confirm_label = Label::parse(&split.label).unwrap();
    assert_eq!(confirm_label.to.unwrap().value, PORTAL);
    assert_eq!(confirm_label.from.unwrap().value, BYGGLOV);
    let document = ManagementDocument::parse(&split.parts[0].1).unwrap();
    assert_eq!(document.corr_id, label.corr_id);
    assert_eq!(document.content_id, label.content.content_id);
    assert_eq!(document.error_code(), None);
    node.stop().await;
}
