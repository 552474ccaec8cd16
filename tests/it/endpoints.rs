//! Every endpoint of spec §3 over real mutual TLS: send in both body forms, list (with and
//! without the product segment), fetch (streamed, re-fetchable until acknowledged),
//! acknowledge, unknown paths, wrong methods, bad addresses and the path prefix.

use reqwest::Method;
use shsd::protocol::ErrorCode;
use shsd::protocol::label::Label;

use crate::check::*;
use crate::harness::*;

/// The receipt headers of spec §3.1 for a fresh (not duplicate) message.
fn assert_receipt(reply: &Reply, label: &Label) {
    assert_accepted(reply, label);
    assert_eq!(reply.header("x-shs-corrid"), label.corr_id);
    assert_eq!(reply.header("x-shs-contentid"), label.content.content_id);
    assert_eq!(reply.header("x-shs-nodeid"), "test-node");
    assert!(!reply.header("x-shs-localid").is_empty());
    assert_eq!(reply.header("x-shs-duplicatemsg"), "no");
    let arrival = reply.header("x-shs-arrivaldate");
    let parsed = chrono::NaiveDateTime::parse_from_str(arrival, "%Y-%m-%dT%H:%M:%S")
        .unwrap_or_else(|err| panic!("arrival date {arrival:?}: {err}"));
    let now = chrono::Local::now().naive_local();
    assert!(
        (now - parsed).num_seconds().abs() < 60,
        "arrival date {arrival} is node local time, now is {now}"
    );
}

#[tokio::test]
async fn send_accepts_both_body_forms_with_every_receipt_header() {
    let node = Node::start().await;
    let portal = node.portal();
    let mut sent = Vec::new();

    // Form 1: multipart/mixed with boundary, bare multipart body.
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<form1/>");
    assert_receipt(&post(&node, &portal, body, &ct).await, &label);
    sent.push(label.tx_id);

    // Form 2: message/rfc822 whose body starts with its own MIME header block (folded
    // Content-Type, an extra header), as Axel sends.
    let label = label_to(Some(BYGGLOV));
    let (bare, ct) = body_of(&label, b"<form2/>");
    let boundary = ct.split('"').nth(1).unwrap();
    let mut body = format!(
        "MIME-Version: 1.0\r\nSubject: SHS message\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend(&bare);
    assert_receipt(
        &post(&node, &portal, body.clone(), "message/rfc822").await,
        &label,
    );
    sent.push(label.tx_id);

    // Form 2 again, announced as multipart/mixed without a boundary.
    let label = label_to(Some(BYGGLOV));
    let (bare, ct) = body_of(&label, b"<form3/>");
    let boundary = ct.split('"').nth(1).unwrap();
    let mut body =
        format!("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary={boundary}\r\n\r\n")
            .into_bytes();
    body.extend(&bare);
    assert_receipt(&post(&node, &portal, body, "multipart/mixed").await, &label);
    sent.push(label.tx_id);

    let listed = list(&node, &node.bygglov(), "2120000142.bygglov").await;
    assert_eq!(tx_ids(&listed), sent, "all three, oldest first");
    for (message, data) in listed
        .messages
        .iter()
        .zip(["<form1/>", "<form2/>", "<form3/>"])
    {
        let split = fetch(&node, &node.bygglov(), "2120000142.bygglov", &message.tx_id).await;
        assert_eq!(split.parts[0].1, data.as_bytes());
    }
    node.stop().await;
}

#[tokio::test]
async fn list_answers_the_mailbox_in_every_address_form_and_by_product_segment() {
    let node = Node::start().await;
    let portal = node.portal();
    let (body, ct, first) = message_to(Some(BYGGLOV), b"<a/>");
    assert_eq!(post(&node, &portal, body, &ct).await.status, 202);
    let mut other = label_to(Some(BYGGLOV));
    other.product.value = PRODUCT_2.to_owned();
    assert_eq!(post_label(&node, &portal, &other).await.status, 202);

    let bygglov = node.bygglov();
    for path in [
        "2120000142.bygglov",
        "urn:X-shs:2120000142.bygglov",
        "urn:x-shs:2120000142.bygglov",
        "urn%3AX-shs%3A2120000142.bygglov",
    ] {
        let listed = list(&node, &bygglov, path).await;
        assert_eq!(
            tx_ids(&listed),
            [first.tx_id.as_str(), other.tx_id.as_str()],
            "{path}"
        );
        let entry = &listed.messages[0];
        assert_eq!(entry.from.as_deref(), Some(PORTAL));
        assert_eq!(entry.to.as_deref(), Some(BYGGLOV));
        assert_eq!(entry.product.as_deref(), Some(PRODUCT));
        assert_eq!(entry.corr_id.as_deref(), Some(first.corr_id.as_str()));
        assert_eq!(
            entry.content_id.as_deref(),
            Some(first.content.content_id.as_str())
        );
        assert_eq!(entry.timestamp, first.datetime);
        assert_eq!(entry.size, Some(4));
        assert_eq!(entry.data.len(), 1);
    }
    // The product path segment (prefixed UUID or special name) narrows to one product.
    let by_product = list(&node, &bygglov, &format!("2120000142.bygglov/{PRODUCT_2}")).await;
    assert_eq!(tx_ids(&by_product), [other.tx_id.as_str()]);
    let confirms = list(&node, &bygglov, "2120000142.bygglov/confirm").await;
    assert!(confirms.messages.is_empty());
    // The municipality's own mailbox is a different mailbox from its sub-addresses'.
    assert!(
        list(&node, &bygglov, "2120000142")
            .await
            .messages
            .is_empty()
    );
    node.stop().await;
}

/// Sends `data` from the portal to bygglov and fetches it as bygglov: the raw answer,
/// checked to be a 200 `message/rfc822` of that tx.id, and the label sent.
async fn send_and_fetch(node: &Node, data: &[u8]) -> (Reply, Label) {
    let (body, ct, label) = message_to(Some(BYGGLOV), data);
    assert_eq!(post(node, &node.portal(), body, &ct).await.status, 202);
    let path = format!("/shs/ds/2120000142.bygglov/{}", label.tx_id);
    let reply = call(node.bygglov().get(node.url(&path))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), "message/rfc822");
    assert_eq!(reply.header("x-shs-txid"), label.tx_id);
    (reply, label)
}

/// A message of a few KiB is answered from one buffer (with a length), byte for byte the
/// same as a streamed one, and marked FETCHED before the answer.
#[tokio::test]
async fn a_small_message_is_fetched_in_one_piece() {
    let node = Node::start().await;
    let data: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
    let (reply, label) = send_and_fetch(&node, &data).await;
    let bygglov = node.bygglov();
    assert_eq!(
        reply.header("content-length"),
        reply.body.len().to_string(),
        "assembled: {:?}",
        reply.headers
    );
    let noack = list(&node, &bygglov, "2120000142.bygglov?filter=noack").await;
    assert_eq!(tx_ids(&noack), [label.tx_id.as_str()]);
    let split = fetch(&node, &bygglov, "2120000142.bygglov", &label.tx_id).await;
    assert!(split.parts[0].1 == data, "data part byte for byte");
    assert_eq!(Label::parse(&split.label).unwrap().history.len(), 1);
    node.stop().await;
}

#[tokio::test]
async fn fetch_streams_the_message_and_can_repeat_until_acknowledged() {
    let node = Node::start().await;
    // Large enough to need many store chunks and socket writes.
    let data: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let (reply, label) = send_and_fetch(&node, &data).await;
    let bygglov = node.bygglov();
    let path = format!("/shs/ds/2120000142.bygglov/{}", label.tx_id);
    assert_eq!(reply.header("x-shs-corrid"), label.corr_id);
    assert!(
        reply.headers.get("content-length").is_none(),
        "streamed from the store, not assembled: {:?}",
        reply.headers
    );
    let split = fetch(&node, &bygglov, "2120000142.bygglov", &label.tx_id).await;
    assert!(split.parts[0].1 == data, "data part byte for byte");
    let served = Label::parse(&split.label).unwrap();
    assert_eq!(served.history.len(), 1);
    assert_eq!(
        served.history[0].tx_id.as_deref(),
        Some(label.tx_id.as_str())
    );

    // Fetched: out of the default list, in the noack list, still fetchable.
    assert!(
        list(&node, &bygglov, "2120000142.bygglov")
            .await
            .messages
            .is_empty()
    );
    let noack = list(&node, &bygglov, "2120000142.bygglov?filter=noack").await;
    assert_eq!(tx_ids(&noack), [label.tx_id.as_str()]);
    let again = fetch(&node, &bygglov, "2120000142.bygglov", &label.tx_id).await;
    assert_eq!(again.label, split.label);

    let ack = call(bygglov.post(node.url(&format!("{path}?action=ack")))).await;
    assert_eq!(ack.status, 200);
    assert_eq!(ack.text(), "OK");
    assert_eq!(ack.header("content-type"), "text/plain");
    assert_refused(
        &call(bygglov.get(node.url(&path))).await,
        404,
        ErrorCode::OtherError,
    );
    node.stop().await;
}

#[tokio::test]
async fn fetch_of_an_unknown_tx_id_or_one_in_another_mailbox_is_404() {
    let node = Node::start().await;
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<a/>");
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);
    let bygglov = node.bygglov();
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/shs/ds/2120000142.bygglov/{unknown}"),
        format!("/shs/ds/2120000142.bygglov/not-a-uuid-{unknown}"),
        // Same organisation, other mailbox.
        format!("/shs/ds/2120000142.socialtjanst/{}", label.tx_id),
        format!("/shs/ds/2120000142/{}", label.tx_id),
    ] {
        let reply = call(bygglov.get(node.url(&path))).await;
        assert_refused(&reply, 404, ErrorCode::OtherError);
    }
    // The message itself was not disturbed.
    let listed = list(&node, &bygglov, "2120000142.bygglov").await;
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    node.stop().await;
}

#[tokio::test]
async fn ack_is_idempotent_needs_action_ack_and_stays_in_its_mailbox() {
    let node = Node::start().await;
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<a/>");
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);
    let bygglov = node.bygglov();
    let path = format!("/shs/ds/2120000142.bygglov/{}", label.tx_id);

    for query in ["", "?action=fetch", "?action=", "?act=ack"] {
        let reply = call(bygglov.post(node.url(&format!("{path}{query}")))).await;
        assert_refused(&reply, 400, ErrorCode::OtherError);
        assert!(error_info(&reply).contains("action"), "{query}");
    }
    // Ack of a message in another mailbox, or an unknown one: 404.
    let elsewhere = format!("/shs/ds/2120000142.socialtjanst/{}?action=ack", label.tx_id);
    assert_refused(
        &call(bygglov.post(node.url(&elsewhere))).await,
        404,
        ErrorCode::OtherError,
    );
    let unknown = format!(
        "/shs/ds/2120000142.bygglov/{}?action=ack",
        uuid::Uuid::new_v4()
    );
    assert_refused(
        &call(bygglov.post(node.url(&unknown))).await,
        404,
        ErrorCode::OtherError,
    );
    // None of those acknowledged anything.
    assert_eq!(
        list(&node, &bygglov, "2120000142.bygglov")
            .await
            .messages
            .len(),
        1
    );

    // Unfetched messages may be acknowledged; twice is fine.
    for _ in 0..2 {
        let reply = call(bygglov.post(node.url(&format!("{path}?action=ack")))).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.text(), "OK");
    }
    assert!(
        list(&node, &bygglov, "2120000142.bygglov?filter=noack")
            .await
            .messages
            .is_empty()
    );
    // One confirm only, however often it was acknowledged.
    let confirms = list(&node, &node.portal(), "5590000001/confirm").await;
    assert_eq!(confirms.messages.len(), 1, "{confirms:?}");
    node.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let node = Node::start().await;
    let portal = node.portal();
    let tx = uuid::Uuid::new_v4();
    for (method, path) in [
        (Method::GET, "/".to_owned()),
        (Method::GET, "/shs".to_owned()),
        (Method::GET, "/shs/ds".to_owned()),
        (Method::GET, "/shs/ds/".to_owned()),
        (Method::POST, "/shs/rs/extra".to_owned()),
        (Method::GET, format!("/shs/ds/5590000001/{tx}/more")),
        (Method::POST, "/axel/shs/rs".to_owned()),
        (Method::GET, "/admin".to_owned()),
    ] {
        let reply = call(portal.request(method.clone(), node.url(&path))).await;
        let document = assert_refused(&reply, 404, ErrorCode::OtherError);
        assert_eq!(document.corr_id, "unknown", "{method} {path}");
    }
    node.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let node = Node::start().await;
    let portal = node.portal();
    let tx = uuid::Uuid::new_v4();
    for (method, path, allow) in [
        (Method::GET, "/shs/rs".to_owned(), "POST"),
        (Method::PUT, "/shs/rs".to_owned(), "POST"),
        (Method::DELETE, "/shs/ds/5590000001".to_owned(), "GET"),
        (Method::POST, "/shs/ds/5590000001".to_owned(), "GET"),
        (Method::POST, format!("/shs/ds/5590000001/{PRODUCT}"), "GET"),
        (Method::PUT, format!("/shs/ds/5590000001/{tx}"), "GET, POST"),
        (
            Method::DELETE,
            format!("/shs/ds/5590000001/{tx}"),
            "GET, POST",
        ),
    ] {
        let reply = call(portal.request(method.clone(), node.url(&path))).await;
        assert_refused(&reply, 405, ErrorCode::OtherError);
        assert_eq!(reply.header("allow"), allow, "{method} {path}");
    }
    node.stop().await;
}

#[tokio::test]
async fn a_mailbox_that_is_not_an_address_is_400() {
    let node = Node::start().await;
    let portal = node.portal();
    for path in [
        "/shs/ds/kalle",
        "/shs/ds/559000000",
        "/shs/ds/%zz",
        "/shs/ds/kalle/x",
    ] {
        let reply = call(portal.get(node.url(path))).await;
        assert_refused(&reply, 400, ErrorCode::OtherError);
    }
    node.stop().await;
}

#[tokio::test]
async fn a_configured_path_prefix_precedes_every_endpoint() {
    let node = Node::start_custom("/axel", |_| String::new()).await;
    let portal = node.portal();
    let bygglov = node.bygglov();
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<a/>");

    // Without the prefix nothing is found, and nothing was taken in.
    let reply = call(
        portal
            .post(node.url("/shs/rs"))
            .header("content-type", &ct)
            .body(body.clone()),
    )
    .await;
    assert_refused(&reply, 404, ErrorCode::OtherError);
    assert_refused(
        &call(bygglov.get(node.url("/shs/ds/2120000142.bygglov"))).await,
        404,
        ErrorCode::OtherError,
    );

    let reply = call(
        portal
            .post(node.url("/axel/shs/rs"))
            .header("content-type", &ct)
            .body(body),
    )
    .await;
    assert_accepted(&reply, &label);
    let listed = call(bygglov.get(node.url("/axel/shs/ds/2120000142.bygglov"))).await;
    assert_eq!(listed.status, 200);
    let listed = shsd::protocol::message_list::MessageList::parse(&listed.body).unwrap();
    assert_eq!(tx_ids(&listed), [label.tx_id.as_str()]);
    let path = format!("/axel/shs/ds/2120000142.bygglov/{}", label.tx_id);
    let fetched = call(bygglov.get(node.url(&path))).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("content-type"), "message/rfc822");
    let ack = call(bygglov.post(node.url(&format!("{path}?action=ack")))).await;
    assert_eq!(ack.status, 200);
    let reply = call(portal.get(node.url("/axel/shs/rs"))).await;
    assert_refused(&reply, 405, ErrorCode::OtherError);
    assert_eq!(reply.header("allow"), "POST");
    node.stop().await;
}

#[tokio::test]
async fn the_stored_label_is_the_senders_bytes_with_history_appended() {
    let node = Node::start().await;
    // An ISO-8859-1 label whose MIME charset disagrees (the XML declaration wins), with
    // attributes in an unusual layout that a rewrite would normalise.
    let xml = raw_label()
        .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
        .replace(
            "<datetime>",
            "<subject>Ansökan om bygglov, Åby</subject>\n<datetime>",
        )
        .replace("<content content.id", "<content   content.id");
    let latin1: Vec<u8> = xml
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let boundary = RAW_BOUNDARY;
    let mut body =
        format!("--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\n\r\n").into_bytes();
    body.extend(&latin1);
    body.extend(
        format!("\r\n--{boundary}\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--{boundary}--\r\n")
            .as_bytes(),
    );
    let reply = post(&node, &node.portal(), body, &multipart(boundary)).await;
    assert_eq!(reply.status, 202, "{}", reply.text());

    let bygglov = node.bygglov();
    let listed = list(&node, &bygglov, "2120000142.bygglov").await;
    assert_eq!(
        listed.messages[0].subject.as_deref(),
        Some("Ansökan om bygglov, Åby")
    );
    let split = fetch(&node, &bygglov, "2120000142.bygglov", RAW_TX_ID).await;
    let close = b"</shs.label>";
    let head = &latin1[..latin1.len() - close.len()];
    assert!(
        split.label.starts_with(head),
        "the original bytes, untouched"
    );
    assert!(split.label.ends_with(close));
    let served = Label::parse(&split.label).unwrap();
    assert_eq!(served.subject.as_deref(), Some("Ansökan om bygglov, Åby"));
    assert_eq!(served.history.len(), 1);
    assert_eq!(served.history[0].comment.as_deref(), Some("Received"));
    node.stop().await;
}
