//! Routing outcomes seen through the mailboxes (spec §4.4, §5.1, §5.2): a message that
//! cannot be delivered is accepted (202), quarantined, and its sender finds an `error`
//! message with the reason's code; management messages are never answered.

use std::time::{Duration, Instant};

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{EndRecipient, Originator, Status};
use shsd::protocol::label::{Label, SequenceType};
use shsd::protocol::management::{ManagementBody, ManagementDocument};
use shsd::protocol::validate::check_label;

use crate::check::*;
use crate::harness::*;

/// Sends `label` with `client`, expects 202, then expects exactly one `error` message in
/// `sender_mailbox` about it with `code`; checks the reply label and the document.
async fn assert_error_notice(
    node: &Node,
    client: &reqwest::Client,
    label: &Label,
    sender_mailbox: &str,
    code: ErrorCode,
) {
    assert_accepted(&post_label(node, client, label).await, label);
    let errors = wait_for_messages(node, sender_mailbox, "/error").await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    let entry = &errors[0];
    assert_eq!(entry.product.as_deref(), Some("urn:X-shs:error"));
    assert_eq!(entry.sequence_type, SequenceType::Adm);
    assert_eq!(entry.corr_id.as_deref(), Some(label.corr_id.as_str()));
    assert_eq!(
        entry.content_id.as_deref(),
        Some(label.content.content_id.as_str())
    );
    assert_ne!(entry.tx_id, label.tx_id, "a new tx.id");

    let reader = if sender_mailbox.starts_with("5590000001") {
        node.portal()
    } else {
        node.bygglov()
    };
    let split = fetch(node, &reader, sender_mailbox, &entry.tx_id).await;
    let error_label = Label::parse(&split.label).unwrap();
    // The node never hands out a label its own intake would refuse (a reply label needs a
    // from or originator: DTD and spec §4.2).
    let envelope = check_label(&error_label)
        .unwrap_or_else(|err| panic!("the error label is not a valid label: {err}"));
    assert_eq!(error_label.status, label.status);
    let original_from = label.from.as_ref().unwrap().value.as_str();
    assert_eq!(error_label.to.as_ref().unwrap().value, original_from);
    // From the original receiver, or, product-addressed, from the sender's organisation.
    let expected_from = match &label.to {
        Some(to) => to.value.clone(),
        None => envelope.receiver.as_ref().unwrap().org().to_string(),
    };
    assert_eq!(error_label.from.as_ref().unwrap().value, expected_from);
    // originator and end-recipient swap (spec §4.4).
    let value = |field: Option<&str>| field.map(str::to_owned);
    assert_eq!(
        value(error_label.originator.as_ref().map(|o| o.value.as_str())),
        value(label.end_recipient.as_ref().map(|e| e.value.as_str()))
    );
    assert_eq!(
        value(error_label.end_recipient.as_ref().map(|e| e.value.as_str())),
        value(label.originator.as_ref().map(|o| o.value.as_str()))
    );
    assert_eq!(split.parts.len(), 1);
    let document = ManagementDocument::parse(&split.parts[0].1).unwrap();
    assert_eq!(document.corr_id, label.corr_id);
    assert_eq!(document.content_id, label.content.content_id);
    let ManagementBody::Error {
        code: wire, info, ..
    } = &document.body
    else {
        panic!("an error document: {document:?}");
    };
    assert_eq!(wire.code(), code);
    assert!(!info.as_deref().unwrap_or_default().is_empty());

    // The original is in no mailbox.
    for mailbox in MAILBOXES {
        let client = if mailbox.starts_with("5590000001") {
            node.portal()
        } else {
            node.bygglov()
        };
        let listed = list(node, &client, &format!("{mailbox}?filter=noack")).await;
        assert!(
            listed.messages.iter().all(|m| m.tx_id != label.tx_id),
            "{mailbox}: {listed:?}"
        );
    }
}

#[tokio::test]
async fn to_an_organisation_not_hosted_here_is_missing_delivery_address() {
    let node = Node::start().await;
    let label = label_to(Some("urn:X-shs:5560000002"));
    let code = ErrorCode::MissingDeliveryAddress;
    assert_error_notice(&node, &node.portal(), &label, "5590000001", code).await;
    node.stop().await;
}

#[tokio::test]
async fn to_an_unknown_sub_address_of_a_local_organisation_is_missing_delivery_address() {
    let node = Node::start().await;
    let label = label_to(Some("urn:X-shs:2120000142.okand"));
    let code = ErrorCode::MissingDeliveryAddress;
    assert_error_notice(&node, &node.portal(), &label, "5590000001", code).await;
    // A sub-address that only contains a known one is not it either.
    let label = label_to(Some("urn:X-shs:2120000142.bygglov2"));
    assert_accepted(&post_label(&node, &node.portal(), &label).await, &label);
    assert!(
        list(&node, &node.bygglov(), "2120000142.bygglov")
            .await
            .messages
            .is_empty()
    );
    node.stop().await;
}

#[tokio::test]
async fn without_to_it_is_unresolved_receiver() {
    let node = Node::start().await;
    let label = label_to(None);
    let code = ErrorCode::UnresolvedReceiver;
    assert_error_notice(&node, &node.portal(), &label, "5590000001", code).await;
    node.stop().await;
}

#[tokio::test]
async fn the_error_label_swaps_originator_and_end_recipient_and_keeps_the_status() {
    let node = Node::start().await;
    let mut label = label_to(Some("urn:X-shs:5560000002"));
    label.originator = Some(Originator {
        value: "urn:X-shs:1212121212".into(),
        ..Originator::default()
    });
    label.end_recipient = Some(EndRecipient {
        value: "urn:X-shs:5560000002.diarium".into(),
        ..EndRecipient::default()
    });
    let code = ErrorCode::MissingDeliveryAddress;
    assert_error_notice(&node, &node.portal(), &label, "5590000001", code).await;

    // A test message's error is a test message: listed only with status=test.
    let mut test = label_to(None);
    test.status = Status::Test;
    assert_accepted(&post_label(&node, &node.portal(), &test).await, &test);
    let errors = wait_for_messages(&node, "5590000001", "/error?status=test").await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].corr_id.as_deref(), Some(test.corr_id.as_str()));
    node.stop().await;
}

#[tokio::test]
async fn a_business_system_gets_its_error_in_its_own_mailbox() {
    let node = Node::start().await;
    let (_, _, mut label) = message_from(BYGGLOV, Some("urn:X-shs:5560000002"), b"<svar/>");
    label.sequence_type = SequenceType::Reply;
    let code = ErrorCode::MissingDeliveryAddress;
    assert_error_notice(&node, &node.bygglov(), &label, "2120000142.bygglov", code).await;
    node.stop().await;
}

#[tokio::test]
async fn undeliverable_management_messages_are_not_answered() {
    let node = Node::start_with(Extra(PEER_NODE_RULE.into())).await;
    let peer = node.peer_node();
    // A remote sender's message to a remote receiver: the error goes back towards the
    // remote sender, cannot be delivered either, and must not start a ping-pong.
    let label = message_from(
        "urn:X-shs:5560000099",
        Some("urn:X-shs:5560000098"),
        b"<x/>",
    )
    .2;
    assert_accepted(&post_label(&node, &peer, &label).await, &label);
    // An error message for a remote organisation, as another node would send it.
    let mut error = label_to(Some("urn:X-shs:5560000097"));
    error.from.as_mut().unwrap().value = "urn:X-shs:5560000099".into();
    error.product.value = "urn:X-shs:error".into();
    error.sequence_type = SequenceType::Adm;
    assert_accepted(&post_label(&node, &peer, &error).await, &error);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = node
            .app_broker
            .store()
            .pending_jobs(None, 10)
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "routing jobs never finish: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_nothing_stored(&node).await;
    node.stop().await;
}
