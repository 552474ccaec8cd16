//! Two real shsd nodes on loopback, one PKI (issue 4; the asynchronous SHS 1.2 interop
//! cases TS41-K): node A hosts the portal (5590000001), node B the municipality
//! (2120000142 with bygglov and socialtjanst) and a second organisation (5560000002). Each
//! node's file directory names the other node's organisations with their delivery address
//! and the agreements, and each trusts the other's node certificate as a `peer-node`.
//!
//! - direct addressing A→B, fetched on B, the confirm pushed back into the portal's mailbox;
//! - a reply from B to the portal, allowed against the agreement's flow;
//! - product addressing on A fanning out to both organisations on B (and their confirms),
//!   and a product with a single receiver;
//! - refusals after the 202, each on the node that can tell: a missing agreement on A (no
//!   agreement anywhere) and on B (A's directory has one that B's lacks), a sub-address B
//!   does not host; the `error` reaches the portal's mailbox on A;
//! - a push that waits for B to come up;
//! - a 17 MB message and Swedish metadata (UTF-8 and ISO-8859-1 labels) intact end to end;
//! - a synchronous ping from the portal on A answered by B through A (TS42), and a
//!   synchronous request without an agreement refused at once.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shsd::client::{OutgoingPart, build_message, write_message};
use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::ErrorCode;
use shsd::protocol::label::{Label, Meta, SequenceType};
use shsd::protocol::management::ManagementDocument;
use shsd::protocol::message_list::ListedMessage;
use shsd::protocol::mime::SplitMessage;

use crate::check::*;
use crate::harness::*;

/// The second organisation on node B (its `peer_node` certificate reads its mailbox).
const BOLAGET: &str = "urn:X-shs:5560000002";
/// A product without any agreement, in either directory.
const PRODUCT_NONE: &str = "urn:X-shs:3c9e1f52-7a4d-4b8e-9f06-2d5b8c1a7e43";
/// How long a message may take from one node's mailbox to the other's.
const ACROSS: Duration = Duration::from_secs(20);

/// The two nodes, started in order: B first on a free port (its address goes into A's
/// directory), then A, then B's directory is rewritten with A's real address and reloaded
/// (as SIGHUP would).
struct Network {
    a: Node,
    b: Node,
    /// Where B's business system for synchronous PRODUCT requests listens; nothing does
    /// until a test starts a receiver there.
    service_port: u16,
    _dir: tempfile::TempDir,
}

impl Network {
    async fn start() -> Network {
        let pki = Arc::new(ExamplePki::generate(PkiOptions::default()).expect("pki"));
        let dir = tempfile::tempdir().unwrap();
        let service_port = crate::receiver::free_port().await;
        let b = start_b(&pki, dir.path(), None, 0, service_port).await;
        let a = start_a(&pki, dir.path(), &b.base).await;
        std::fs::write(
            dir.path().join("directory-b.toml"),
            directory_b(Some(&a.base)),
        )
        .unwrap();
        b.app_broker
            .directory()
            .expect("B has a directory")
            .reload()
            .await
            .expect("B's directory reloads");
        Network {
            a,
            b,
            service_port,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

/// Node B (municipality and 5560000002) on `port` (0: any), its directory in `dir`
/// naming A at `a_base` if known.
async fn start_b(
    pki: &Arc<ExamplePki>,
    dir: &Path,
    a_base: Option<&str>,
    port: u16,
    service_port: u16,
) -> Node {
    let directory = dir.join("directory-b.toml");
    std::fs::write(&directory, directory_b(a_base)).unwrap();
    let setup = Setup {
        node_id: "node-b".into(),
        organisations: r#"
[[organisations]]
number = "2120000142"
name = "Exempelkommun"
sub_addresses = ["bygglov", "socialtjanst"]
[[organisations]]
number = "5560000002"
name = "Exempelnoden AB"
"#
        .into(),
        extra: format!(
            "{}\n[[synch.services]]\norganisation = \"2120000142\"\nproduct = \"{PRODUCT}\"\n\
             url = \"https://localhost:{service_port}/svar\"\n",
            extra(pki, &directory, "5590000001")
        ),
        port,
    };
    Node::start_sharing(Arc::clone(pki), &setup).await
}

/// Node A (the portal), its directory in `dir` naming B at `b_base`.
async fn start_a(pki: &Arc<ExamplePki>, dir: &Path, b_base: &str) -> Node {
    let directory = dir.join("directory-a.toml");
    std::fs::write(&directory, directory_a(b_base)).unwrap();
    let setup = Setup {
        node_id: "node-a".into(),
        organisations:
            "[[organisations]]\nnumber = \"5590000001\"\nname = \"Exempelportalen AB\"\n".into(),
        extra: extra(pki, &directory, "2120000142"),
        port: 0,
    };
    Node::start_sharing(Arc::clone(pki), &setup).await
}

/// The configuration both nodes share besides their organisations: the directory, quick
/// push retries, and the other node's certificate (the PKI's node certificate, which both
/// present) as a peer node acting for `peer_org`.
fn extra(pki: &ExamplePki, directory: &Path, peer_org: &str) -> String {
    format!(
        r#"
[directory]
file = {directory:?}
[push]
attempts = 10
first_retry_secs = 1
max_retry_secs = 1
timeout_secs = 30
[[clients]]
fingerprint = "{fingerprint}"
role = "peer-node"
acts_for = "{peer_org}"
"#,
        directory = directory.display().to_string(),
        fingerprint = pki.server.fingerprint(),
    )
}

/// The agreements both directories have: the portal may send PRODUCT and PRODUCT_2 to the
/// municipality, and PRODUCT_2 to 5560000002.
fn common_agreements() -> String {
    format!(
        r#"
[[agreements]]
id = "portal-kommun"
principal = "2120000142"
customer = "5590000001"
products = ["{PRODUCT}", "{PRODUCT_2}"]
flow = "from-customer"

[[agreements]]
id = "portal-bolaget"
principal = "5560000002"
customer = "5590000001"
products = ["{PRODUCT_2}"]
flow = "from-customer"

[[agreements]]
id = "portal-kommun-ping"
principal = "2120000142"
customer = "5590000001"
products = ["{PING}"]
flow = "from-customer"
transfer_type = "synch"
"#
    )
}

/// The built-in ping product.
const PING: &str = "urn:X-shs:00000000-0000-0000-0000-000000000000";

/// Node A's directory: the common agreements, one for PRODUCT_3 that B does not have, and
/// B's organisations at B's address.
fn directory_a(b_base: &str) -> String {
    format!(
        r#"{common}
[[agreements]]
id = "portal-kommun-only-on-a"
principal = "2120000142"
customer = "5590000001"
products = ["{PRODUCT_3}"]
flow = "from-customer"

[[addresses]]
organisation = "2120000142"
url = "{b_base}/shs/rs"

[[addresses]]
organisation = "5560000002"
url = "{b_base}/shs/rs"
"#,
        common = common_agreements()
    )
}

/// Node B's directory: the common agreements and, once A runs, the portal at A's address.
fn directory_b(a_base: Option<&str>) -> String {
    let address = a_base
        .map(|base| {
            format!("[[addresses]]\norganisation = \"5590000001\"\nurl = \"{base}/shs/rs\"\n")
        })
        .unwrap_or_default();
    format!("{}\n{address}", common_agreements())
}

/// The admin summary of `tx` on `node` once it is in `state`.
async fn wait_for_state(node: &Node, tx: &str, state: &str) -> Value {
    let deadline = Instant::now() + ACROSS;
    loop {
        let url = format!("{}/api/messages?txid={tx}", node.admin_base);
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        let hits: Value = serde_json::from_slice(&body).unwrap();
        if let Some(hit) = hits
            .as_array()
            .and_then(|h| h.iter().find(|hit| hit["state"] == state))
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

/// Polls `mailbox` on `node` until it lists `count` messages matching `query`.
async fn wait_for(node: &Node, mailbox: &str, query: &str, count: usize) -> Vec<ListedMessage> {
    let deadline = Instant::now() + ACROSS;
    loop {
        let listed = wait_for_messages(node, mailbox, query).await;
        if listed.len() >= count {
            assert_eq!(listed.len(), count, "{mailbox}{query}: {listed:?}");
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "{mailbox}{query} on {}: {listed:?}",
            node.base
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The label of a fetched message.
fn label_of(split: &SplitMessage) -> Label {
    Label::parse(&split.label).expect("a label")
}

/// The node ids of a label's history, in order.
fn path_of(label: &Label) -> Vec<&str> {
    label.history.iter().map(|h| h.node_id.as_str()).collect()
}

/// Asserts that `label` is `sent` with one history entry from A and one from B appended.
fn assert_travelled(label: &Label, sent: &Label) {
    assert_eq!(path_of(label), ["node-a", "node-b"], "{label:?}");
    for history in &label.history {
        assert_eq!(history.comment.as_deref(), Some("Received"));
        assert_eq!(history.tx_id.as_deref(), Some(sent.tx_id.as_str()));
    }
    let mut without = label.clone();
    without.history.clear();
    assert_eq!(&without, sent, "nothing but history changed on the way");
}

/// The error document of an `error` message in the portal's mailbox on A.
async fn portal_error(net: &Network, corr: &str) -> (Label, ManagementDocument) {
    let errors = wait_for(&net.a, "5590000001", &format!("?corrid={corr}"), 1).await;
    assert_eq!(errors[0].product.as_deref(), Some("urn:X-shs:error"));
    let notice = fetch(&net.a, &net.a.portal(), "5590000001", &errors[0].tx_id).await;
    let document = ManagementDocument::parse(&notice.parts[0].1).expect("shs.management");
    (label_of(&notice), document)
}

#[tokio::test]
async fn direct_message_travels_to_b_and_the_confirm_comes_back_to_a() {
    let net = Network::start().await;
    let data = "<ansökan><sökande>Åsa Öberg</sökande></ansökan>".as_bytes();
    let (body, content_type, sent) = message_to(Some(BYGGLOV), data);
    let reply = post(&net.a, &net.a.portal(), body, &content_type).await;
    assert_accepted(&reply, &sent);
    assert_eq!(reply.header("x-shs-nodeid"), "node-a");

    // A pushed it to B, where it is a message from the portal in bygglov's mailbox.
    let on_a = wait_for_state(&net.a, &sent.tx_id, "SENT").await;
    assert_eq!(on_a["sender"], "5590000001", "{on_a}");
    let listed = wait_for(&net.b, "2120000142.bygglov", "", 1).await;
    assert_eq!(
        listed[0].tx_id, sent.tx_id,
        "direct addressing keeps the tx.id"
    );
    assert_eq!(listed[0].corr_id.as_deref(), Some(sent.corr_id.as_str()));
    assert_eq!(listed[0].from.as_deref(), Some(PORTAL));
    assert_eq!(listed[0].size, Some(data.len() as u64));
    let on_b = wait_for_state(&net.b, &sent.tx_id, "RECEIVED").await;
    assert_eq!(on_b["sender"], "5590000001", "B records the portal: {on_b}");

    let bygglov = net.b.bygglov();
    let fetched = fetch(&net.b, &bygglov, "2120000142.bygglov", &sent.tx_id).await;
    assert_eq!(fetched.parts.len(), 1);
    assert_eq!(fetched.parts[0].1, data, "the data part byte for byte");
    assert_eq!(
        fetched.parts[0].0.filename().as_deref(),
        Some("ansökan.xml")
    );
    assert_travelled(&label_of(&fetched), &sent);

    // The acknowledgement on B sends a confirm, which B pushes to A.
    let path = format!("/shs/ds/2120000142.bygglov/{}?action=ack", sent.tx_id);
    let ack = call(bygglov.post(net.b.url(&path))).await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    let confirms = wait_for(
        &net.a,
        "5590000001",
        &format!("?corrid={}", sent.corr_id),
        1,
    )
    .await;
    let confirm = &confirms[0];
    assert_eq!(confirm.product.as_deref(), Some("urn:X-shs:confirm"));
    assert_eq!(
        confirm.content_id.as_deref(),
        Some(sent.content.content_id.as_str())
    );
    assert_eq!(confirm.from.as_deref(), Some(BYGGLOV));
    assert_eq!(confirm.to.as_deref(), Some(PORTAL));
    wait_for_state(&net.b, &confirm.tx_id, "SENT").await;
    let on_a = wait_for_state(&net.a, &confirm.tx_id, "RECEIVED").await;
    assert_eq!(on_a["sender"], "2120000142", "{on_a}");

    let split = fetch(&net.a, &net.a.portal(), "5590000001", &confirm.tx_id).await;
    let label = label_of(&split);
    assert_eq!(label.sequence_type, SequenceType::Adm);
    assert_eq!(path_of(&label), ["node-b", "node-a"]);
    let document = ManagementDocument::parse(&split.parts[0].1).unwrap();
    assert_eq!(document.corr_id, sent.corr_id);
    assert_eq!(document.content_id, sent.content.content_id);
    assert_eq!(document.error_code(), None, "a confirmation");

    // The confirm is noted on the message it answers, on A (spec §4.4).
    let original = wait_for_state(&net.a, &sent.tx_id, "SENT").await;
    let id = original["local_id"].as_str().unwrap();
    let url = format!("{}/api/messages/{id}", net.a.admin_base);
    let detail: Value =
        serde_json::from_slice(&reqwest::get(&url).await.unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(detail["answer"]["kind"], "confirm", "{detail}");
    assert_eq!(detail["answer"]["tx_id"], confirm.tx_id.as_str());
    net.stop().await;
}

#[tokio::test]
async fn a_reply_from_b_travels_against_the_agreement_to_a() {
    let net = Network::start().await;
    let (body, content_type, request) = message_to(Some(BYGGLOV), b"<fraga/>");
    assert_accepted(
        &post(&net.a, &net.a.portal(), body, &content_type).await,
        &request,
    );
    wait_for(&net.b, "2120000142.bygglov", "", 1).await;

    // The building-permit system answers on B with a reply under the same corr.id; the
    // agreement (portal to municipality) allows it against its flow, on both nodes.
    let data = "<svar>Beviljas</svar>".as_bytes();
    let (_, _, mut reply) = message_from(BYGGLOV, Some(PORTAL), data);
    reply.sequence_type = SequenceType::Reply;
    reply.corr_id = request.corr_id.clone();
    let (body, content_type) = body_of(&reply, data);
    assert_accepted(
        &post(&net.b, &net.b.bygglov(), body, &content_type).await,
        &reply,
    );
    wait_for_state(&net.b, &reply.tx_id, "SENT").await;
    let listed = wait_for(
        &net.a,
        "5590000001",
        &format!("?corrid={}", request.corr_id),
        1,
    )
    .await;
    assert_eq!(listed[0].tx_id, reply.tx_id);
    assert_eq!(listed[0].sequence_type, SequenceType::Reply);
    let on_a = wait_for_state(&net.a, &reply.tx_id, "RECEIVED").await;
    assert_eq!(on_a["sender"], "2120000142", "{on_a}");
    let fetched = fetch(&net.a, &net.a.portal(), "5590000001", &reply.tx_id).await;
    assert_eq!(fetched.parts[0].1, data);
    let label = label_of(&fetched);
    assert_eq!(path_of(&label), ["node-b", "node-a"]);

    // An event the other way has no agreement: B, the sender's node, refuses it before
    // any push, and bygglov gets the error.
    let (_, _, mut event) = message_from(BYGGLOV, Some(PORTAL), data);
    event.corr_id = "corr-against".into();
    let (body, content_type) = body_of(&event, data);
    assert_accepted(
        &post(&net.b, &net.b.bygglov(), body, &content_type).await,
        &event,
    );
    let on_b = wait_for_state(&net.b, &event.tx_id, "QUARANTINED").await;
    assert_eq!(on_b["error"]["code"], "MissingAgreement", "{on_b}");
    let errors = wait_for(&net.b, "2120000142.bygglov", "?corrid=corr-against", 1).await;
    assert_eq!(errors[0].product.as_deref(), Some("urn:X-shs:error"));
    net.stop().await;
}

#[tokio::test]
async fn product_addressing_on_a_fans_out_to_two_organisations_on_b() {
    let net = Network::start().await;
    let data = b"<anmalan>spridning</anmalan>";
    let (_, _, mut sent) = message_to(None, data);
    sent.product.value = PRODUCT_2.into();
    sent.corr_id = "corr-fan-out".into();
    let (body, content_type) = body_of(&sent, data);
    assert_accepted(
        &post(&net.a, &net.a.portal(), body, &content_type).await,
        &sent,
    );
    wait_for_state(&net.a, &sent.tx_id, "FANNED_OUT").await;

    let kommun = wait_for(&net.b, "2120000142", "?corrid=corr-fan-out", 1).await;
    let bolaget = wait_for(&net.b, "5560000002", "?corrid=corr-fan-out", 1).await;
    let copies = [(&kommun[0], KOMMUN), (&bolaget[0], BOLAGET)];
    for (copy, to) in copies {
        assert_ne!(copy.tx_id, sent.tx_id, "a copy has its own tx.id");
        assert_eq!(copy.to.as_deref(), Some(to));
        assert_eq!(copy.from.as_deref(), Some(PORTAL));
        assert_eq!(copy.corr_id.as_deref(), Some("corr-fan-out"));
        assert_eq!(
            copy.content_id.as_deref(),
            Some(sent.content.content_id.as_str())
        );
        assert_eq!(copy.product.as_deref(), Some(PRODUCT_2));
        // Each copy left A as its own message.
        wait_for_state(&net.a, &copy.tx_id, "SENT").await;
    }
    assert_ne!(kommun[0].tx_id, bolaget[0].tx_id);

    for (client, mailbox, copy) in [
        (net.b.bygglov(), "2120000142", &kommun[0]),
        (net.b.peer_node(), "5560000002", &bolaget[0]),
    ] {
        let fetched = fetch(&net.b, &client, mailbox, &copy.tx_id).await;
        assert_eq!(fetched.parts.len(), 1);
        assert_eq!(fetched.parts[0].1, data);
        let label = label_of(&fetched);
        assert_eq!(path_of(&label), ["node-a", "node-b"]);
        assert_eq!(label.tx_id, copy.tx_id);
        assert_eq!(label.corr_id, "corr-fan-out");
        let ack = format!("/shs/ds/{mailbox}/{}?action=ack", copy.tx_id);
        assert_eq!(call(client.post(net.b.url(&ack))).await.status, 200);
    }
    // Each organisation's acknowledgement sends the portal its own confirm.
    let confirms = wait_for(&net.a, "5590000001", "?corrid=corr-fan-out", 2).await;
    let mut from: Vec<_> = confirms.iter().map(|c| c.from.clone()).collect();
    from.sort();
    assert_eq!(from, [Some(KOMMUN.to_owned()), Some(BOLAGET.to_owned())]);
    for confirm in &confirms {
        assert_eq!(confirm.product.as_deref(), Some("urn:X-shs:confirm"));
        assert_eq!(
            confirm.content_id.as_deref(),
            Some(sent.content.content_id.as_str())
        );
    }

    // A product with one receiver: the message itself (no copy, no `to`) goes to B, whose
    // own agreements resolve it to the municipality's mailbox.
    let (_, _, mut single) = message_to(None, data);
    single.corr_id = "corr-single".into();
    let (body, content_type) = body_of(&single, data);
    assert_accepted(
        &post(&net.a, &net.a.portal(), body, &content_type).await,
        &single,
    );
    wait_for_state(&net.a, &single.tx_id, "SENT").await;
    let listed = wait_for(&net.b, "2120000142", "?corrid=corr-single", 1).await;
    assert_eq!(listed[0].tx_id, single.tx_id);
    assert_eq!(listed[0].to, None, "the sender's label, untouched");

    // Nothing else arrived on B.
    for (mailbox, client) in [
        ("2120000142.bygglov", net.b.bygglov()),
        ("2120000142.socialtjanst", net.b.socialtjanst()),
    ] {
        assert!(list(&net.b, &client, mailbox).await.messages.is_empty());
    }
    net.stop().await;
}

#[tokio::test]
async fn a_missing_agreement_returns_an_error_to_the_portal() {
    let net = Network::start().await;

    // No agreement anywhere: A, the sender's node, refuses before any push.
    let mut none = label_to(Some(BYGGLOV));
    none.product.value = PRODUCT_NONE.into();
    none.corr_id = "corr-none".into();
    assert_accepted(&post_label(&net.a, &net.a.portal(), &none).await, &none);
    let on_a = wait_for_state(&net.a, &none.tx_id, "QUARANTINED").await;
    assert_eq!(on_a["error"]["code"], "MissingAgreement", "{on_a}");
    let (label, document) = portal_error(&net, "corr-none").await;
    assert_eq!(document.error_code(), Some(ErrorCode::MissingAgreement));
    assert_eq!(document.content_id, none.content.content_id);
    assert_eq!(path_of(&label), ["node-a"], "never left A");

    // A's directory has an agreement for PRODUCT_3 that B's lacks: A pushes, B, the
    // receiver's node, refuses and pushes the error back to A.
    let mut stale = label_to(Some(BYGGLOV));
    stale.product.value = PRODUCT_3.into();
    stale.corr_id = "corr-stale".into();
    assert_accepted(&post_label(&net.a, &net.a.portal(), &stale).await, &stale);
    wait_for_state(&net.a, &stale.tx_id, "SENT").await;
    let on_b = wait_for_state(&net.b, &stale.tx_id, "QUARANTINED").await;
    assert_eq!(on_b["error"]["code"], "MissingAgreement", "{on_b}");
    let (label, document) = portal_error(&net, "corr-stale").await;
    assert_eq!(document.error_code(), Some(ErrorCode::MissingAgreement));
    assert_eq!(document.content_id, stale.content.content_id);
    assert_eq!(path_of(&label), ["node-b", "node-a"]);
    assert_eq!(label.from.as_ref().map(|f| f.value.as_str()), Some(BYGGLOV));
    assert_eq!(label.to.as_ref().map(|t| t.value.as_str()), Some(PORTAL));
    let bygglov = list(&net.b, &net.b.bygglov(), "2120000142.bygglov?filter=noack").await;
    assert!(bygglov.messages.is_empty(), "nothing delivered on B");
    net.stop().await;
}

#[tokio::test]
async fn an_address_that_b_does_not_host_returns_an_error_from_b() {
    let net = Network::start().await;
    // A knows the municipality and the agreement, not its sub-addresses: it pushes, and B
    // refuses the sub-address it does not host.
    let mut label = label_to(Some("urn:X-shs:2120000142.okand"));
    label.corr_id = "corr-okand".into();
    assert_accepted(&post_label(&net.a, &net.a.portal(), &label).await, &label);
    wait_for_state(&net.a, &label.tx_id, "SENT").await;
    let on_b = wait_for_state(&net.b, &label.tx_id, "QUARANTINED").await;
    assert_eq!(on_b["error"]["code"], "MissingDeliveryAddress", "{on_b}");
    let (notice, document) = portal_error(&net, "corr-okand").await;
    assert_eq!(
        document.error_code(),
        Some(ErrorCode::MissingDeliveryAddress)
    );
    assert_eq!(
        notice.from.as_ref().map(|f| f.value.as_str()),
        Some("urn:X-shs:2120000142.okand")
    );
    assert_eq!(path_of(&notice), ["node-b", "node-a"]);
    net.stop().await;
}

/// `len` bytes that are not all alike (so a shifted or truncated copy would show).
fn big_payload(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn a_17_mb_message_arrives_whole() {
    let net = Network::start().await;
    let started = Instant::now();
    let bytes = big_payload(17 * 1024 * 1024);
    let part = OutgoingPart {
        datapart_type: "bilaga".into(),
        content_type: "application/octet-stream".into(),
        filename: Some("ritningar.bin".into()),
        bytes: bytes.clone(),
    };
    let (body, boundary, sent) = build_message(
        PORTAL,
        Some(BYGGLOV),
        PRODUCT,
        SequenceType::Event,
        std::slice::from_ref(&part),
    );
    let reply = post(&net.a, &net.a.portal(), body, &multipart(&boundary)).await;
    assert_accepted(&reply, &sent);
    let listed = wait_for(&net.b, "2120000142.bygglov", "", 1).await;
    assert_eq!(listed[0].size, Some(bytes.len() as u64));
    let fetched = fetch(&net.b, &net.b.bygglov(), "2120000142.bygglov", &sent.tx_id).await;
    assert_eq!(fetched.parts.len(), 1);
    assert!(fetched.parts[0].1 == bytes, "17 MB byte for byte");
    assert_travelled(&label_of(&fetched), &sent);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    net.stop().await;
}

#[tokio::test]
async fn swedish_metadata_arrives_intact() {
    let net = Network::start().await;
    let bygglov = net.b.bygglov();

    // A UTF-8 label with Swedish subject, meta and file names (RFC 2231 in the part).
    let parts = [
        OutgoingPart {
            datapart_type: "ansökan".into(),
            content_type: "text/xml; charset=UTF-8".into(),
            filename: Some("ansökan-Åby.xml".into()),
            bytes: "<ansökan>Bygglov för förråd på Ödegärdet</ansökan>".into(),
        },
        OutgoingPart {
            datapart_type: "bilaga".into(),
            content_type: "text/plain; charset=ISO-8859-1".into(),
            filename: Some("ritning-väg-ö.txt".into()),
            bytes: b"Fr\xe5n \xc5sa \xd6berg".to_vec(),
        },
    ];
    let (_, _, mut sent) =
        build_message(PORTAL, Some(BYGGLOV), PRODUCT, SequenceType::Event, &parts);
    sent.subject = Some("Ansökan om bygglov, Åby ängar".into());
    sent.meta = vec![
        Meta {
            name: "fastighet".into(),
            value: "Åby 1:23".into(),
        },
        Meta {
            name: "sökande".into(),
            value: "Åsa Öberg".into(),
        },
    ];
    let (body, boundary) = write_message(&sent, &parts);
    assert_accepted(
        &post(&net.a, &net.a.portal(), body, &multipart(&boundary)).await,
        &sent,
    );
    let listed = wait_for(&net.b, "2120000142.bygglov", "", 1).await;
    assert_eq!(listed[0].subject, sent.subject);
    assert_eq!(listed[0].meta, sent.meta);
    let fetched = fetch(&net.b, &bygglov, "2120000142.bygglov", &sent.tx_id).await;
    assert_travelled(&label_of(&fetched), &sent);
    for ((headers, bytes), part) in fetched.parts.iter().zip(&parts) {
        assert_eq!(bytes, &part.bytes);
        assert_eq!(headers.filename(), part.filename);
    }
    let ack = format!("/shs/ds/2120000142.bygglov/{}?action=ack", sent.tx_id);
    assert_eq!(call(bygglov.post(net.b.url(&ack))).await.status, 200);

    // An ISO-8859-1 label, and a raw ISO-8859-1 file name in the part header: the label's
    // bytes reach B as the portal wrote them, each node appending only its history.
    let xml = raw_label()
        .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"")
        .replace(
            "<datetime>",
            "<meta name=\"kommundel\">Älvsjö</meta>\n<subject>Förhandsbesked, Öster-Åby</subject>\n<datetime>",
        );
    let latin1: Vec<u8> = xml
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let data = b"<beskrivning>Tv\xe5 v\xe5ningar</beskrivning>";
    let mut body = format!("--{RAW_BOUNDARY}\r\nContent-Type: text/xml\r\n\r\n").into_bytes();
    body.extend(&latin1);
    body.extend(format!("\r\n--{RAW_BOUNDARY}\r\nContent-Type: text/xml; charset=ISO-8859-1\r\nContent-Disposition: attachment; filename=\"").as_bytes());
    body.extend(b"beskrivning-\xe5\xe4\xf6.xml\"\r\n\r\n");
    body.extend(data);
    body.extend(format!("\r\n--{RAW_BOUNDARY}--\r\n").as_bytes());
    let reply = post(&net.a, &net.a.portal(), body, &multipart(RAW_BOUNDARY)).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let listed = wait_for(&net.b, "2120000142.bygglov", "", 1).await;
    assert_eq!(listed[0].tx_id, RAW_TX_ID);
    assert_eq!(
        listed[0].subject.as_deref(),
        Some("Förhandsbesked, Öster-Åby")
    );
    let fetched = fetch(&net.b, &bygglov, "2120000142.bygglov", RAW_TX_ID).await;
    let close = b"</shs.label>";
    assert!(
        fetched
            .label
            .starts_with(&latin1[..latin1.len() - close.len()]),
        "the portal's ISO-8859-1 bytes, untouched: {}",
        String::from_utf8_lossy(&fetched.label)
    );
    let label = label_of(&fetched);
    assert_eq!(path_of(&label), ["node-a", "node-b"]);
    assert_eq!(label.subject.as_deref(), Some("Förhandsbesked, Öster-Åby"));
    assert_eq!(label.meta[0].value, "Älvsjö");
    assert_eq!(fetched.parts[0].1, data);
    assert_eq!(
        fetched.parts[0].0.filename().as_deref(),
        Some("beskrivning-åäö.xml")
    );
    net.stop().await;
}

#[tokio::test]
async fn a_push_waits_for_b_to_come_up() {
    let pki = Arc::new(ExamplePki::generate(PkiOptions::default()).expect("pki"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = start_a(&pki, dir.path(), &format!("https://localhost:{port}")).await;
    let (body, content_type, sent) = message_to(Some(BYGGLOV), b"<ansokan/>");
    assert_accepted(&post(&a, &a.portal(), body, &content_type).await, &sent);
    // Nobody listens at B's address yet: the push fails and is scheduled again.
    let deadline = Instant::now() + ACROSS;
    loop {
        let url = format!("{}/metrics", a.admin_base);
        let metrics = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let retried = metrics
            .lines()
            .find_map(|line| line.strip_prefix("shsd_push_attempts_total{outcome=\"retried\"} "))
            .and_then(|count| count.parse::<u64>().ok());
        if retried.is_some_and(|count| count >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt: {metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(is_in_state(&a, &sent.tx_id, "NEW").await);

    let b = start_b(&pki, dir.path(), Some(&a.base), port, 1).await;
    let listed = wait_for(&b, "2120000142.bygglov", "", 1).await;
    assert_eq!(listed[0].tx_id, sent.tx_id);
    wait_for_state(&a, &sent.tx_id, "SENT").await;
    a.stop().await;
    b.stop().await;
}

/// Whether `tx` on `node` is in `state` now.
async fn is_in_state(node: &Node, tx: &str, state: &str) -> bool {
    let url = format!("{}/api/messages?txid={tx}", node.admin_base);
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    let hits: Value = serde_json::from_slice(&body).unwrap();
    hits.as_array()
        .is_some_and(|hits| hits.iter().any(|hit| hit["state"] == state))
}

#[tokio::test]
async fn a_synchronous_ping_crosses_to_b_and_its_answer_comes_back() {
    let net = Network::start().await;
    let mut label = label_to(Some(KOMMUN));
    label.transfer_type = shsd::protocol::label::TransferType::Synch;
    label.sequence_type = SequenceType::Request;
    label.product.value = PING.to_owned();
    let reply = post_label(&net.a, &net.a.portal(), &label).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let message = shsd::protocol::mime::split_message(
        &reply.body,
        Some("message/rfc822"),
        shsd::protocol::mime::Limits::default(),
    )
    .expect("the reply message");
    let answer = Label::parse(&message.label).unwrap();
    assert_eq!(answer.sequence_type, SequenceType::Reply);
    assert_eq!(answer.corr_id, label.corr_id);
    assert_eq!(answer.to.unwrap().value, PORTAL);
    // Node B answered: the request crossed, the reply came back through A.
    assert!(String::from_utf8_lossy(&message.parts[0].1).contains("pong from node-b"));

    // Without an agreement for the product synchronously: refused on A at once.
    let mut other = label.clone();
    other.tx_id = uuid::Uuid::new_v4().to_string();
    other.product.value = PRODUCT_NONE.to_owned();
    let refused = post_label(&net.a, &net.a.portal(), &other).await;
    assert_refused(&refused, 400, ErrorCode::MissingAgreement);
    net.stop().await;
}

#[tokio::test]
async fn a_synchronous_request_reaches_a_business_system_behind_b() {
    let net = Network::start().await;
    let answer = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbeslut: beviljat".to_vec();
    let service = crate::receiver::Receiver::start_on(
        &net.b,
        net.service_port,
        vec![crate::receiver::Reply {
            status: 200,
            headers: vec![("content-type", "message/rfc822".into())],
            body: answer.clone(),
            delay: Duration::ZERO,
        }],
    )
    .await;
    let mut label = label_to(Some(BYGGLOV));
    label.transfer_type = shsd::protocol::label::TransferType::Synch;
    label.sequence_type = SequenceType::Request;
    let reply = post_label(&net.a, &net.a.portal(), &label).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.body, answer,
        "the business system's reply, relayed by B and A"
    );
    let received = service.received();
    assert_eq!(received.len(), 1);
    let request = shsd::protocol::mime::split_message(
        &received[0].body,
        Some(&received[0].content_type),
        shsd::protocol::mime::Limits::default(),
    )
    .expect("the request arrives whole");
    assert_eq!(path_of(&label_of(&request)), ["node-a", "node-b"]);
    net.stop().await;
}
