//! Signed deliveries over the daemon (spec §7): a signed e-form is accepted and its signer
//! is recorded and shown; a tampered one and an unsigned part of a product that requires a
//! signature are refused with `IllegalDatapartContent`, naming the part and the reason, and
//! nothing is stored.

use shsd::protocol::ErrorCode;
use shsd::protocol::label::Label;
use shsd::signature::sign::{SignOptions, XmlSigner};
use shsd::signature::test_pki::{SignerUsage, TestCa, Validity};

use crate::check::*;
use crate::harness::*;

const FORM: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ansokan xmlns=\"urn:example:bygglov\"><sokande>Anna Andersson</sokande><fastighet>Exempel 1:2</fastighet></ansokan>";

/// A signer CA written to `dir`, an e-form signer under it, and the node's configuration:
/// signatures checked against that CA; PRODUCT_2 requires a signed part.
fn setup(dir: &std::path::Path) -> (XmlSigner, Extra) {
    let ca = TestCa::root("Exempel e-legitimation CA").unwrap();
    let (cert, key) = ca
        .issue_p256(
            "Anna Andersson",
            Validity::Current,
            SignerUsage::NonRepudiation,
        )
        .unwrap();
    let anchors = dir.join("signer-ca.pem");
    std::fs::write(&anchors, &ca.cert.pem).unwrap();
    let signer = XmlSigner::from_pkcs8(&key.serialize_der(), vec![cert.der]).unwrap();
    let extra = format!(
        "[signatures]\ntrust_anchors = [{:?}]\n[[signatures.products]]\nproduct = \"{PRODUCT_2}\"\npolicy = \"required\"\n",
        anchors.display().to_string()
    );
    (signer, Extra(extra))
}

#[tokio::test]
async fn a_signed_form_is_accepted_with_its_signer_and_a_tampered_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, extra) = setup(dir.path());
    let node = Node::start_with(extra).await;
    let signed = signer
        .sign_enveloped(FORM, &SignOptions::default())
        .unwrap();

    let label = label_to(Some(BYGGLOV));
    let (body, ct) = body_of(&label, signed.as_bytes());
    let reply = post(&node, &node.portal(), body, &ct).await;
    assert_accepted(&reply, &label);
    let listed = wait_for_messages(&node, "2120000142.bygglov", "").await;
    assert_eq!(listed.len(), 1);
    let raw = call(
        node.bygglov()
            .get(node.url(&format!("/shs/ds/2120000142.bygglov/{}", label.tx_id))),
    )
    .await;
    let signer_header = shsd::percent::percent_decode(raw.header("x-shs-signer")).unwrap();
    assert!(
        signer_header.starts_with("CN=Anna Andersson"),
        "{signer_header}"
    );
    let fetched = fetch(&node, &node.bygglov(), "2120000142.bygglov", &label.tx_id).await;
    assert_eq!(fetched.parts[0].1, signed.as_bytes(), "stored as received");
    let history = Label::parse(&fetched.label).unwrap().history;
    let comment = history.last().unwrap().comment.clone().unwrap();
    assert!(
        comment.contains("signature verified: CN=Anna Andersson"),
        "{comment}"
    );
    let url = format!("{}/api/messages?txid={}", node.admin_base, label.tx_id);
    let summary: serde_json::Value =
        serde_json::from_slice(&reqwest::get(&url).await.unwrap().bytes().await.unwrap()).unwrap();
    let id = summary[0]["local_id"].as_str().unwrap().to_owned();
    let detail: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{}/api/messages/{id}", node.admin_base))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        detail["signer"]
            .as_str()
            .unwrap()
            .contains("Anna Andersson"),
        "{detail}"
    );

    // The same form with one word changed after signing.
    let tampered = signed.replace("Exempel 1:2", "Exempel 9:9");
    let label = label_to(Some(BYGGLOV));
    let (body, ct) = body_of(&label, tampered.as_bytes());
    let reply = post(&node, &node.portal(), body, &ct).await;
    let refusal = assert_refused(&reply, 400, ErrorCode::IllegalDatapartContent);
    let info = format!("{refusal:?}");
    assert!(
        info.contains("data part 1") && info.contains("digest"),
        "{info}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_product_that_requires_a_signature_refuses_an_unsigned_part() {
    let dir = tempfile::tempdir().unwrap();
    let (_, extra) = setup(dir.path());
    let node = Node::start_with(extra).await;
    let mut label = label_to(Some(BYGGLOV));
    label.product.value = PRODUCT_2.to_owned();
    let (body, ct) = body_of(&label, FORM.as_bytes());
    let reply = post(&node, &node.portal(), body, &ct).await;
    let refusal = assert_refused(&reply, 400, ErrorCode::IllegalDatapartContent);
    assert!(
        format!("{refusal:?}").contains("must be signed"),
        "{refusal:?}"
    );
    assert_nothing_stored(&node).await;
    // An unsigned part of a product without that rule passes (if-present).
    let label = label_to(Some(BYGGLOV));
    let (body, ct) = body_of(&label, FORM.as_bytes());
    assert_accepted(&post(&node, &node.portal(), body, &ct).await, &label);
    node.stop().await;
}
