//! Duplicate detection (spec §3.1): the same tx.id from the same sender is answered 202
//! with `X-shs-duplicatemsg: yes` and the original receipt, and nothing new is stored; the
//! same tx.id from another sender organisation is 409 `OtherError`.

use std::time::Duration;

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{From, Originator};

use crate::check::*;
use crate::harness::*;

const MAILBOX: &str = "2120000142.bygglov";

#[tokio::test]
async fn the_same_tx_id_from_the_same_sender_is_a_duplicate_with_the_original_receipt() {
    let node = Node::start().await;
    let portal = node.portal();
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<original/>");
    let first = post(&node, &portal, body.clone(), &ct).await;
    assert_accepted(&first, &label);
    assert_eq!(first.header("x-shs-duplicatemsg"), "no");

    // A later second, so that a fresh arrival date would differ from the original.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = post(&node, &portal, body, &ct).await;
    assert_accepted(&again, &label);
    assert_eq!(again.header("x-shs-duplicatemsg"), "yes");
    for header in [
        "x-shs-arrivaldate",
        "x-shs-localid",
        "x-shs-corrid",
        "x-shs-contentid",
        "x-shs-nodeid",
    ] {
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
    let listed = list(&node, &node.bygglov(), MAILBOX).await;
    assert_eq!(
        tx_ids(&listed),
        [label.tx_id.as_str()],
        "nothing new listed"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_duplicate_keeps_the_original_content_even_after_ack() {
    let node = Node::start().await;
    let portal = node.portal();
    let label = label_to(Some(BYGGLOV));
    let (body, ct) = body_of(&label, b"<original/>");
    assert_eq!(post(&node, &portal, body, &ct).await.status, 202);

    // Same tx.id and sender organisation (another sub-address of it), other content.
    let mut changed = label.clone();
    changed.from = Some(From {
        value: "urn:X-shs:5590000001.annan".into(),
        ..From::default()
    });
    changed.subject = Some("andra försöket".into());
    let (body, ct) = body_of(&changed, b"<changed/>");
    let reply = post(&node, &portal, body, &ct).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("x-shs-duplicatemsg"), "yes");
    let split = fetch(&node, &node.bygglov(), MAILBOX, &label.tx_id).await;
    assert_eq!(split.parts[0].1, b"<original/>");

    let ack = format!("/shs/ds/{MAILBOX}/{}?action=ack", label.tx_id);
    assert_eq!(call(node.bygglov().post(node.url(&ack))).await.status, 200);
    // Sent again after it was acknowledged: still a duplicate, not listed again.
    let (body, ct) = body_of(&label, b"<original/>");
    let reply = post(&node, &portal, body, &ct).await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.header("x-shs-duplicatemsg"), "yes");
    assert!(
        list(&node, &node.bygglov(), &format!("{MAILBOX}?filter=noack"))
            .await
            .messages
            .is_empty()
    );
    // One confirm: the duplicate did not trigger another.
    assert_eq!(
        list(&node, &portal, "5590000001/confirm")
            .await
            .messages
            .len(),
        1
    );
    node.stop().await;
}

#[tokio::test]
async fn the_sender_of_an_originator_only_label_is_its_originator() {
    let node = Node::start().await;
    let portal = node.portal();
    let mut label = label_to(Some(BYGGLOV));
    label.from = None;
    label.originator = Some(Originator {
        value: "urn:X-shs:5590000001".into(),
        ..Originator::default()
    });
    assert_eq!(post_label(&node, &portal, &label).await.status, 202);
    // The same tx.id with from = the same organisation: the same sender.
    let mut with_from = label_to(Some(BYGGLOV));
    with_from.tx_id.clone_from(&label.tx_id);
    let reply = post_label(&node, &portal, &with_from).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("x-shs-duplicatemsg"), "yes");
    assert_eq!(
        list(&node, &node.bygglov(), MAILBOX).await.messages.len(),
        1
    );
    node.stop().await;
}

#[tokio::test]
async fn the_same_tx_id_from_another_sender_organisation_is_409() {
    let node = Node::start_with(Extra(PEER_NODE_RULE.into())).await;
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<forst/>");
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);

    // The peer node forwards a message of another organisation that reuses the tx.id.
    let mut other = label_to(Some(PORTAL));
    other.tx_id.clone_from(&label.tx_id);
    other.from = Some(From {
        value: KOMMUN.into(),
        ..From::default()
    });
    let reply = post_label(&node, &node.peer_node(), &other).await;
    assert_refused_label(
        &reply,
        409,
        ErrorCode::OtherError,
        &other.corr_id,
        &other.content.content_id,
    );
    assert!(error_info(&reply).contains(&label.tx_id));

    // Nothing new anywhere; the original is untouched.
    assert!(
        list(&node, &node.portal(), "5590000001?filter=noack")
            .await
            .messages
            .is_empty()
    );
    let listed = list(&node, &node.bygglov(), MAILBOX).await;
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    let split = fetch(&node, &node.bygglov(), MAILBOX, &label.tx_id).await;
    assert_eq!(split.parts[0].1, b"<forst/>");

    // And the other way round: first the peer's, then the portal's.
    let mut first = label_to(Some(PORTAL));
    first.from = Some(From {
        value: KOMMUN.into(),
        ..From::default()
    });
    assert_eq!(
        post_label(&node, &node.peer_node(), &first).await.status,
        202
    );
    let mut second = label_to(Some(BYGGLOV));
    second.tx_id.clone_from(&first.tx_id);
    let reply = post_label(&node, &node.portal(), &second).await;
    assert_refused(&reply, 409, ErrorCode::OtherError);
    let listed = list(&node, &node.bygglov(), &format!("{MAILBOX}?filter=noack")).await;
    assert_eq!(
        tx_ids(&listed),
        [label.tx_id.as_str()],
        "only the first original"
    );
    let listed = list(&node, &node.portal(), "5590000001").await;
    assert_eq!(
        tx_ids(&listed),
        [first.tx_id.as_str()],
        "the peer's original"
    );
    node.stop().await;
}
