//! The authorisation matrix of spec §2: who may send as whom, who may read which mailbox,
//! the `[[clients]]` rules (peer node, sub-address and product narrowing, fingerprint
//! mapping), and the certificates the TLS handshake must refuse.

use std::collections::BTreeMap;

use shsd::pki::PkiItem;
use shsd::protocol::ErrorCode;
use shsd::protocol::label::{From, Originator};

use crate::admin::wait_for_samples;
use crate::check::*;
use crate::harness::*;

#[tokio::test]
async fn a_caller_sends_as_its_own_organisation_only() {
    let node = Node::start().await;
    let portal = node.portal();

    // Own organisation, own sub-address, own organisation as originator without from.
    let own = label_to(Some(BYGGLOV));
    assert_accepted(&post_label(&node, &portal, &own).await, &own);
    let mut own_sub = label_to(Some(BYGGLOV));
    own_sub.from.as_mut().unwrap().value = "urn:X-shs:5590000001.etjanst".into();
    assert_accepted(&post_label(&node, &portal, &own_sub).await, &own_sub);
    let mut originator_only = label_to(Some(BYGGLOV));
    originator_only.from = None;
    originator_only.originator = Some(Originator {
        value: "5590000001".into(),
        ..Originator::default()
    });
    assert_accepted(
        &post_label(&node, &portal, &originator_only).await,
        &originator_only,
    );
    // With from, the originator (the citizen's party) may be anyone.
    let mut for_citizen = label_to(Some(BYGGLOV));
    for_citizen.originator = Some(Originator {
        value: "urn:X-shs:1212121212".into(),
        ..Originator::default()
    });
    assert_accepted(
        &post_label(&node, &portal, &for_citizen).await,
        &for_citizen,
    );
    let delivered = list(&node, &node.bygglov(), "2120000142.bygglov").await;
    assert_eq!(delivered.messages.len(), 4);
    node.stop().await;
}

#[tokio::test]
async fn sending_as_another_organisation_is_403_illegal_sender_and_stores_nothing() {
    let node = Node::start().await;
    let portal = node.portal();

    let mut other_from = label_to(Some(BYGGLOV));
    other_from.from.as_mut().unwrap().value = KOMMUN.into();
    let mut other_originator = label_to(Some(BYGGLOV));
    other_originator.from = None;
    other_originator.originator = Some(Originator {
        value: "urn:X-shs:2120000142.bygglov".into(),
        ..Originator::default()
    });
    // A from that merely contains the caller's number is another organisation.
    let mut look_alike = label_to(Some(BYGGLOV));
    look_alike.from.as_mut().unwrap().value = "urn:X-shs:1559000000".into();
    for label in [other_from, other_originator, look_alike] {
        let reply = post_label(&node, &portal, &label).await;
        assert_refused_label(
            &reply,
            403,
            ErrorCode::IllegalSender,
            &label.corr_id,
            &label.content.content_id,
        );
    }
    assert_nothing_stored(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_configured_peer_node_sends_for_anyone_but_reads_only_its_own() {
    let node = Node::start_with(Extra(PEER_NODE_RULE.into())).await;
    let peer = node.peer_node();
    for sender in [KOMMUN, "urn:X-shs:5560000099", "2120000142.bygglov"] {
        let (body, ct, label) = message_from(sender, Some(PORTAL), b"<vidarebefordrat/>");
        assert_accepted(&post(&node, &peer, body, &ct).await, &label);
    }
    let delivered = list(&node, &node.portal(), "5590000001").await;
    assert_eq!(delivered.messages.len(), 3);
    for mailbox in ["2120000142", "5590000001"] {
        let reply = call(peer.get(node.url(&format!("/shs/ds/{mailbox}")))).await;
        assert_refused(&reply, 403, ErrorCode::IllegalReceiver);
    }
    node.stop().await;
}

#[tokio::test]
async fn without_the_rule_the_peer_node_is_an_ordinary_client() {
    let node = Node::start().await;
    let peer = node.peer_node();
    let (body, ct, label) = message_from(KOMMUN, Some(PORTAL), b"<x/>");
    let reply = post(&node, &peer, body, &ct).await;
    assert_refused_label(
        &reply,
        403,
        ErrorCode::IllegalSender,
        &label.corr_id,
        &label.content.content_id,
    );
    assert_nothing_stored(&node).await;
    // Its own organisation (from organizationIdentifier) it may send as.
    let (body, ct, label) = message_from("urn:X-shs:5560000002", Some(PORTAL), b"<x/>");
    assert_accepted(&post(&node, &peer, body, &ct).await, &label);
    node.stop().await;
}

#[tokio::test]
async fn reading_another_organisations_mailbox_is_403() {
    let node = Node::start().await;
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<x/>");
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);
    let tx = &label.tx_id;
    let portal = node.portal();
    for (method, path) in [
        (
            reqwest::Method::GET,
            "/shs/ds/2120000142.bygglov".to_owned(),
        ),
        (reqwest::Method::GET, "/shs/ds/2120000142".to_owned()),
        (
            reqwest::Method::GET,
            format!("/shs/ds/2120000142.bygglov/{PRODUCT}"),
        ),
        (
            reqwest::Method::GET,
            format!("/shs/ds/2120000142.bygglov/{tx}"),
        ),
        (
            reqwest::Method::POST,
            format!("/shs/ds/2120000142.bygglov/{tx}?action=ack"),
        ),
    ] {
        let reply = call(portal.request(method.clone(), node.url(&path))).await;
        assert_refused(&reply, 403, ErrorCode::IllegalReceiver);
    }
    let reply = call(node.bygglov().get(node.url("/shs/ds/5590000001"))).await;
    assert_refused(&reply, 403, ErrorCode::IllegalReceiver);
    // Untouched: still RECEIVED for its owner.
    let listed = list(&node, &node.bygglov(), "2120000142.bygglov").await;
    assert_eq!(tx_ids(&listed), [tx.as_str()]);
    node.stop().await;
}

fn fingerprint_rule(item: &PkiItem, body: &str) -> String {
    format!(
        "[[clients]]\nfingerprint = \"{}\"\n{body}\n",
        item.fingerprint()
    )
}

#[tokio::test]
async fn reading_can_be_narrowed_to_sub_addresses() {
    let node = Node::start_custom("", |pki| {
        fingerprint_rule(&pki.bygglov, "sub_addresses = [\"bygglov\"]")
    })
    .await;
    let portal = node.portal();
    for to in [BYGGLOV, SOCIALTJANST, KOMMUN] {
        let (body, ct, _) = message_to(Some(to), b"<x/>");
        assert_eq!(post(&node, &portal, body, &ct).await.status, 202);
    }
    let bygglov = node.bygglov();
    assert_eq!(
        list(&node, &bygglov, "2120000142.bygglov")
            .await
            .messages
            .len(),
        1
    );
    for mailbox in ["2120000142.socialtjanst", "2120000142"] {
        let reply = call(bygglov.get(node.url(&format!("/shs/ds/{mailbox}")))).await;
        assert_refused(&reply, 403, ErrorCode::IllegalReceiver);
    }
    // The rule names one certificate: the other business system still reads everything.
    let socialtjanst = node.socialtjanst();
    for mailbox in [
        "2120000142.bygglov",
        "2120000142.socialtjanst",
        "2120000142",
    ] {
        assert_eq!(
            list(&node, &socialtjanst, mailbox).await.messages.len(),
            1,
            "{mailbox}"
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn reading_can_be_narrowed_to_products() {
    let node = Node::start_custom("", |pki| {
        fingerprint_rule(&pki.socialtjanst, &format!("products = [\"{PRODUCT}\"]"))
    })
    .await;
    let portal = node.portal();
    let allowed = label_to(Some(SOCIALTJANST));
    let mut hidden = label_to(Some(SOCIALTJANST));
    hidden.product.value = PRODUCT_2.into();
    for label in [&allowed, &hidden] {
        assert_eq!(post_label(&node, &portal, label).await.status, 202);
    }
    let client = node.socialtjanst();
    let mailbox = "2120000142.socialtjanst";
    let both = format!("{PRODUCT},{PRODUCT_2}");
    for query in ["", "?filter=noack", &format!("?producttype={both}")] {
        let listed = list(&node, &client, &format!("{mailbox}{query}")).await;
        assert_eq!(tx_ids(&listed), [allowed.tx_id.as_str()], "{query}");
    }
    for query in [format!("?producttype={PRODUCT_2}"), format!("/{PRODUCT_2}")] {
        let listed = list(&node, &client, &format!("{mailbox}{query}")).await;
        assert!(listed.messages.is_empty(), "{query}");
    }
    let hidden_path = format!("/shs/ds/{mailbox}/{}", hidden.tx_id);
    assert_refused(
        &call(client.get(node.url(&hidden_path))).await,
        404,
        ErrorCode::OtherError,
    );
    let ack = call(client.post(node.url(&format!("{hidden_path}?action=ack")))).await;
    assert_refused(&ack, 404, ErrorCode::OtherError);
    fetch(&node, &client, mailbox, &allowed.tx_id).await;
    // Unnarrowed, the same organisation sees both, and the hidden one was not touched.
    let listed = list(&node, &node.bygglov(), mailbox).await;
    assert_eq!(tx_ids(&listed), [hidden.tx_id.as_str()]);
    node.stop().await;
}

#[tokio::test]
async fn a_certificate_without_organisation_is_403_unless_mapped() {
    let node = Node::start().await;
    let no_org = node.client(Some(&node.pki.no_org));
    let reply = call(no_org.get(node.url("/shs/ds/5590000001"))).await;
    assert_refused(&reply, 403, ErrorCode::OtherError);
    let (body, ct, _) = message_to(Some(BYGGLOV), b"<x/>");
    let reply = post(&node, &no_org, body, &ct).await;
    assert_refused(&reply, 403, ErrorCode::OtherError);
    assert_nothing_stored(&node).await;
    node.stop().await;

    // A fingerprint rule can name the organisation it acts for.
    let node = Node::start_custom("", |pki| {
        fingerprint_rule(&pki.no_org, "acts_for = \"5590000001\"")
    })
    .await;
    let no_org = node.client(Some(&node.pki.no_org));
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<x/>");
    assert_accepted(&post(&node, &no_org, body, &ct).await, &label);
    assert!(list(&node, &no_org, "5590000001").await.messages.is_empty());
    node.stop().await;
}

/// A client that speaks only TLS 1.2, presenting `item`.
fn tls12_client(node: &Node, item: &PkiItem) -> reqwest::Client {
    let config = rustls::ClientConfig::builder_with_provider(shsd::tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(node.pki.roots())
        .with_client_auth_cert(vec![item.cert_der.clone()], item.key_der())
        .expect("client certificate");
    client_with(config)
}

#[tokio::test]
async fn refused_certificates_fail_the_tls_handshake() {
    let node = Node::start().await;
    let pki = &node.pki;
    let (body, ct, _) = message_to(Some(BYGGLOV), b"<x/>");
    let cases: [(&str, Option<&PkiItem>); 4] = [
        ("unknown issuer", Some(&pki.unknown_issuer)),
        ("expired", Some(&pki.expired)),
        ("revoked", Some(&pki.revoked)),
        ("no client certificate", None),
    ];
    for (case, item) in cases {
        // With TLS 1.3 the client finishes its side first: the refusal may only surface
        // when the response is read. Either way the request fails, and no answer comes.
        let client = node.client(item);
        let listed = client.get(node.url("/shs/ds/5590000001")).send().await;
        assert!(listed.is_err(), "{case}: {listed:?}");
        let sent = client
            .post(node.url("/shs/rs"))
            .header("content-type", &ct)
            .body(body.clone())
            .send()
            .await;
        assert!(sent.is_err(), "{case}: {sent:?}");
        if let Some(item) = item {
            let old = tls12_client(&node, item)
                .get(node.url("/shs/ds/5590000001"))
                .send()
                .await;
            assert!(old.is_err(), "{case} over TLS 1.2: {old:?}");
        }
    }
    // Each refusal is counted by its reason: three handshakes per certificate (TLS 1.3
    // twice, TLS 1.2 once), two without one.
    let series: Vec<(String, f64)> = [
        ("unknown_issuer", 3.0),
        ("expired", 3.0),
        ("revoked", 3.0),
        ("no_certificate", 2.0),
        ("timeout", 0.0),
        ("other", 0.0),
    ]
    .into_iter()
    .map(|(reason, count)| {
        let name = format!("shsd_tls_handshake_failures_total{{reason=\"{reason}\"}}");
        (name, count)
    })
    .collect();
    let expected: BTreeMap<&str, f64> = series
        .iter()
        .map(|(name, count)| (name.as_str(), *count))
        .collect();
    let samples = wait_for_samples(&node, &expected).await;
    for (name, count) in &expected {
        assert_eq!(samples.get(*name), Some(count), "{name}");
    }
    // The node is unharmed and nothing was taken in.
    assert_nothing_stored(&node).await;
    let ok = tls12_client(&node, &pki.portal)
        .get(node.url("/shs/ds/5590000001"))
        .send()
        .await;
    assert_eq!(ok.expect("TLS 1.2 with a good certificate").status(), 200);
    node.stop().await;
}

#[tokio::test]
async fn a_from_with_display_name_is_judged_by_its_address() {
    // A from with a display name and e-mail is still judged by its address.
    let node = Node::start().await;
    let mut label = label_to(Some(BYGGLOV));
    label.from = Some(From {
        value: KOMMUN.into(),
        common_name: Some("Exempelportalen AB".into()),
        e_mail: Some("info@exempelportalen.example".into()),
        labeled_uri: None,
    });
    let reply = post_label(&node, &node.portal(), &label).await;
    assert_refused(&reply, 403, ErrorCode::IllegalSender);
    node.stop().await;
}

#[tokio::test]
async fn plain_http_is_refused() {
    let node = Node::start().await;
    let plain = node.base.replace("https://", "http://");
    let answer = reqwest::Client::new()
        .get(format!("{plain}/shs/ds/5590000001"))
        .send()
        .await;
    match answer {
        Err(_) => {}
        Ok(response) => panic!("plain HTTP was answered: {}", response.status()),
    }
    assert_eq!(
        list(&node, &node.portal(), "5590000001")
            .await
            .messages
            .len(),
        0
    );
    node.stop().await;
}
