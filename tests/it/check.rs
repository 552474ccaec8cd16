//! Answers read whole and the assertions every test module shares: the error contract of
//! spec §3.2 (status, `X-shs-errorcode`, `Content-Type`, `shs.management` body), list
//! answers, and "nothing was stored anywhere".

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use shsd::protocol::ErrorCode;
use shsd::protocol::label::Label;
use shsd::protocol::management::{ManagementBody, ManagementDocument};
use shsd::protocol::message_list::{ListedMessage, MessageList};
use shsd::protocol::mime::{Limits, SplitMessage, split_message};

use crate::harness::*;

/// A whole answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads a response to its end.
    pub async fn of(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body");
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
            .unwrap_or_default()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request and reads the answer whole.
pub async fn call(request: reqwest::RequestBuilder) -> Reply {
    Reply::of(request.send().await.expect("request")).await
}

/// Posts a message body to `/shs/rs`.
pub async fn post(node: &Node, client: &reqwest::Client, body: Vec<u8>, ct: &str) -> Reply {
    Reply::of(send(node, client, body, ct).await).await
}

/// Posts `label` with one XML data part.
pub async fn post_label(node: &Node, client: &reqwest::Client, label: &Label) -> Reply {
    let (body, ct) = body_of(label, b"<ansokan/>");
    post(node, client, body, &ct).await
}

/// Asserts the 202 of spec §3.1 for `label` and returns the answer.
pub fn assert_accepted(reply: &Reply, label: &Label) {
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "text/plain");
    assert_eq!(reply.header("x-shs-txid"), label.tx_id);
    assert_eq!(reply.text(), label.tx_id);
}

/// Asserts the error contract of spec §3.2 and returns the parsed error document: the
/// status, a non-empty `X-shs-errorcode` equal to `code`, an XML body whose `errorcode`
/// matches and whose `errorinfo` is one non-empty line.
pub fn assert_refused(reply: &Reply, status: u16, code: ErrorCode) -> ManagementDocument {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text());
    let header = reply.header("x-shs-errorcode");
    assert!(!header.is_empty(), "X-shs-errorcode is never empty");
    assert_eq!(header, code.as_str(), "{}", reply.text());
    assert!(
        reply.header("content-type").starts_with("application/xml"),
        "content type {:?}",
        reply.header("content-type")
    );
    let document = ManagementDocument::parse(&reply.body)
        .unwrap_or_else(|err| panic!("error body is not shs.management: {err}: {}", reply.text()));
    let ManagementBody::Error {
        code: wire, info, ..
    } = &document.body
    else {
        panic!("an error document, got {document:?}");
    };
    assert_eq!(wire.as_str(), code.as_str());
    let info = info.as_deref().unwrap_or_default();
    assert!(!info.trim().is_empty(), "errorinfo says why");
    assert!(!info.contains('\n'), "errorinfo is one line: {info:?}");
    document
}

/// [`assert_refused`], and the document names the label's corr.id and content.id.
pub fn assert_refused_label(
    reply: &Reply,
    status: u16,
    code: ErrorCode,
    corr: &str,
    content: &str,
) {
    let document = assert_refused(reply, status, code);
    assert_eq!(document.corr_id, corr, "corr.id from the label");
    assert_eq!(document.content_id, content, "content.id from the label");
}

/// The errorinfo of an error answer.
pub fn error_info(reply: &Reply) -> String {
    match ManagementDocument::parse(&reply.body)
        .expect("error document")
        .body
    {
        ManagementBody::Error { info, .. } => info.unwrap_or_default(),
        other => panic!("{other:?}"),
    }
}

/// Lists `path_and_query` (after `/shs/ds/`) with `client`, asserting 200 and XML.
pub async fn list(node: &Node, client: &reqwest::Client, path_and_query: &str) -> MessageList {
    let reply = call(client.get(node.url(&format!("/shs/ds/{path_and_query}")))).await;
    assert_eq!(reply.status, 200, "{path_and_query}: {}", reply.text());
    assert!(
        reply.header("content-type").starts_with("application/xml"),
        "{:?}",
        reply.header("content-type")
    );
    MessageList::parse(&reply.body).expect("shs.message-list")
}

/// The tx.ids of a list, in order.
pub fn tx_ids(list: &MessageList) -> Vec<&str> {
    list.messages.iter().map(|m| m.tx_id.as_str()).collect()
}

/// Fetches a message, asserting 200 and `message/rfc822`, and splits it.
pub async fn fetch(node: &Node, client: &reqwest::Client, mailbox: &str, tx: &str) -> SplitMessage {
    let reply = call(client.get(node.url(&format!("/shs/ds/{mailbox}/{tx}")))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), "message/rfc822");
    split_message(&reply.body, Some("message/rfc822"), Limits::default()).expect("fetched message")
}

/// The client that may read `mailbox` (bare form).
fn reader_of(node: &Node, mailbox: &str) -> reqwest::Client {
    if mailbox.starts_with("5590000001") {
        node.portal()
    } else if mailbox.starts_with("5560000002") {
        node.peer_node()
    } else {
        node.bygglov()
    }
}

/// Asserts that no message is listed in any mailbox of the node, in any state or status a
/// list can show, and that no routing job is pending: a refused message left nothing.
pub async fn assert_nothing_stored(node: &Node) {
    for mailbox in MAILBOXES {
        let client = reader_of(node, mailbox);
        for query in ["", "?filter=noack", "?status=test&filter=noack"] {
            let list = list(node, &client, &format!("{mailbox}{query}")).await;
            assert!(list.messages.is_empty(), "{mailbox}{query}: {list:?}");
        }
    }
    let jobs = node
        .app_broker
        .store()
        .pending_jobs(None, 10)
        .await
        .expect("jobs");
    assert!(jobs.is_empty(), "no routing job left: {jobs:?}");
}

/// Polls `mailbox` until it lists at least one message (routing may run after the 202),
/// then returns the list.
pub async fn wait_for_messages(node: &Node, mailbox: &str, query: &str) -> Vec<ListedMessage> {
    let client = reader_of(node, mailbox);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = list(node, &client, &format!("{mailbox}{query}")).await;
        if !list.messages.is_empty() || Instant::now() > deadline {
            return list.messages;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
