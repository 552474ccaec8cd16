//! Malformed messages (spec §3.2, §4.1, §4.2): one test per intake rule, each with its
//! status and error code, the label's ids in the error document when the label could be
//! read, and nothing stored afterwards (no half-written message, no routing job).

use std::time::{Duration, Instant};

use shsd::protocol::ErrorCode;

use crate::check::*;
use crate::harness::*;

/// Posts each (body, content type) and asserts `status`/`code`; `ids` says whether the
/// label could be read (its corr.id and content.id are then in the error document).
async fn assert_all_refused<N: std::fmt::Display>(
    node: &Node,
    cases: Vec<(N, Vec<u8>, String)>,
    status: u16,
    code: ErrorCode,
    ids: Option<(&str, &str)>,
) {
    let portal = node.portal();
    for (case, body, ct) in cases {
        let reply = post(node, &portal, body, &ct).await;
        assert_eq!(reply.status.as_u16(), status, "{case}: {}", reply.text());
        let document = assert_refused(&reply, status, code);
        let (corr, content) = ids.unwrap_or(("unknown", "unknown"));
        assert_eq!(document.corr_id, corr, "{case}");
        assert_eq!(document.content_id, content, "{case}");
    }
    assert_nothing_stored(node).await;
}

/// The node still takes a good message after the refusals.
async fn assert_still_serving(node: &Node) {
    let (body, ct, label) = message_to(Some(BYGGLOV), b"<ok/>");
    assert_accepted(&post(node, &node.portal(), body, &ct).await, &label);
}

/// The raw label with `from` replaced by `to`, as one message with one data part.
fn raw_with(from: &str, to: &str) -> Vec<u8> {
    let original = raw_label();
    let label = original.replace(from, to);
    assert_ne!(label, original, "the replacement must change the label");
    raw_message(&label, &[b"<data/>"]).0
}

fn raw_ct() -> String {
    multipart(RAW_BOUNDARY)
}

/// A raw-label case that is refused after the label was read.
fn case(name: &str, from: &str, to: &str) -> (String, Vec<u8>, String) {
    (name.to_owned(), raw_with(from, to), raw_ct())
}

#[tokio::test]
async fn the_raw_label_itself_is_accepted() {
    let node = Node::start().await;
    let (body, ct) = raw_message(&raw_label(), &[b"<data/>"]);
    let reply = post(&node, &node.portal(), body, &ct).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.header("x-shs-corrid"), RAW_CORR_ID);
    node.stop().await;
}

#[tokio::test]
async fn broken_mime_is_400_illegal_message_structure() {
    let node = Node::start().await;
    let (good, ct, label) = message_to(Some(BYGGLOV), b"<data/>");
    let boundary = ct.split('"').nth(1).unwrap().to_owned();
    let closing = format!("\r\n--{boundary}--\r\n");
    assert!(good.ends_with(closing.as_bytes()));
    let unclosed = good[..good.len() - closing.len()].to_vec();
    let mut garbage = vec![0u8; 4096];
    for (n, byte) in garbage.iter_mut().enumerate() {
        *byte = (n * 7919 % 256) as u8;
    }

    // The label was read before the MIME structure broke: its ids are in the answer.
    let after_label = vec![
        ("no closing boundary", unclosed.clone(), ct.clone()),
        (
            "cut in the data part",
            unclosed[..unclosed.len() - 3].to_vec(),
            ct.clone(),
        ),
        (
            "unknown transfer encoding of a data part",
            String::from_utf8_lossy(&good)
                .replacen(
                    "Content-Transfer-Encoding: binary\r\nContent-Disposition",
                    "Content-Transfer-Encoding: x-zip\r\nContent-Disposition",
                    1,
                )
                .into_bytes(),
            ct.clone(),
        ),
    ];
    let ids = (label.corr_id.as_str(), label.content.content_id.as_str());
    assert_all_refused(
        &node,
        after_label,
        400,
        ErrorCode::IllegalMessageStructure,
        Some(ids),
    )
    .await;

    let before_label = vec![
        (
            "multipart without boundary, bare body",
            good.clone(),
            "multipart/mixed".to_owned(),
        ),
        ("no content type, bare body", good.clone(), String::new()),
        (
            "wrong boundary",
            good.clone(),
            multipart("not-the-boundary"),
        ),
        ("garbage", garbage.clone(), ct.clone()),
        ("garbage as rfc822", garbage, "message/rfc822".to_owned()),
        ("empty body", Vec::new(), ct.clone()),
        (
            "only the closing boundary",
            format!("--{boundary}--\r\n").into_bytes(),
            ct.clone(),
        ),
        ("cut in the label", good[..60].to_vec(), ct.clone()),
        (
            "rfc822 header block not multipart",
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello".to_vec(),
            "message/rfc822".to_owned(),
        ),
    ];
    assert_all_refused(
        &node,
        before_label,
        400,
        ErrorCode::IllegalMessageStructure,
        None,
    )
    .await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_first_part_that_is_not_an_xml_label_is_400_illegal_message_structure() {
    let node = Node::start().await;
    let not_xml = raw_message("this is not <xml", &[b"<data/>"]).0;
    let other_root = raw_message("<?xml version=\"1.0\"?><shs.management/>", &[b"<data/>"]).0;
    let pdf_first = String::from_utf8(raw_message(&raw_label(), &[b"<data/>"]).0)
        .unwrap()
        .replacen("Content-Type: text/xml", "Content-Type: application/pdf", 1)
        .into_bytes();
    let cases = vec![
        ("not XML", not_xml, raw_ct()),
        ("another document", other_root, raw_ct()),
        ("first part not text/xml", pdf_first, raw_ct()),
    ];
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, None).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn missing_required_attributes_are_400_illegal_message_structure() {
    let node = Node::start().await;
    let cases = vec![
        case("no tx.id", &format!(" tx.id=\"{RAW_TX_ID}\""), ""),
        case("no corr.id", &format!(" corr.id=\"{RAW_CORR_ID}\""), ""),
        case("no sequence-type", " sequence-type=\"event\"", ""),
        case(
            "no content.id",
            &format!(" content.id=\"{RAW_CONTENT_ID}\""),
            "",
        ),
        case("no product", &format!("<product>{PRODUCT}</product>"), ""),
        case(
            "no datetime",
            "<datetime>2026-11-22T12:00:00</datetime>",
            "",
        ),
    ];
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, None).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn ids_that_are_not_nmtokens_are_400_illegal_message_structure() {
    let node = Node::start().await;
    let cases = vec![
        case("tx.id with a slash", "tx.id=\"", "tx.id=\"../"),
        case("tx.id with a space", "tx.id=\"", "tx.id=\"a b"),
        case(
            "empty corr.id",
            &format!("corr.id=\"{RAW_CORR_ID}\""),
            "corr.id=\"\"",
        ),
    ];
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, None).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn invalid_enumerated_attributes_are_400_illegal_message_structure() {
    let node = Node::start().await;
    let cases = vec![
        case(
            "sequence-type",
            "sequence-type=\"event\"",
            "sequence-type=\"question\"",
        ),
        case(
            "sequence-type case",
            "sequence-type=\"event\"",
            "sequence-type=\"Event\"",
        ),
        case(
            "transfer-type",
            "transfer-type=\"asynch\"",
            "transfer-type=\"sometimes\"",
        ),
        case("status", "status=\"production\"", "status=\"prod\""),
        case(
            "message-type",
            "status=\"production\"",
            "status=\"production\" message-type=\"many\"",
        ),
    ];
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, None).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn entities_are_refused_fast_and_an_unused_doctype_is_ignored() {
    let node = Node::start().await;
    let declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    let mut laughs = String::from("<!DOCTYPE shs.label [\n<!ENTITY lol \"lol\">\n");
    for n in 1..=9 {
        let previous = if n == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", n - 1)
        };
        let ten = format!("&{previous};").repeat(10);
        laughs.push_str(&format!("<!ENTITY lol{n} \"{ten}\">\n"));
    }
    laughs.push_str("]>");
    let billion = raw_label()
        .replace(declaration, &format!("{declaration}\n{laughs}"))
        .replace("<datetime>", "<subject>&lol9;</subject><datetime>");
    let external = raw_label()
        .replace(
            declaration,
            &format!(
                "{declaration}\n<!DOCTYPE shs.label [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
            ),
        )
        .replace("<datetime>", "<subject>&x;</subject><datetime>");
    let started = Instant::now();
    let cases = vec![
        (
            "billion laughs",
            raw_message(&billion, &[b"<d/>"]).0,
            raw_ct(),
        ),
        (
            "external entity",
            raw_message(&external, &[b"<d/>"]).0,
            raw_ct(),
        ),
    ];
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, None).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without expanding: {:?}",
        started.elapsed()
    );

    // A DOCTYPE that is declared but not used is ignored (spec §3.2).
    let unused = raw_label().replace(
        declaration,
        &format!("{declaration}\n<!DOCTYPE shs.label SYSTEM \"http://example.invalid/shs-label-1.2.dtd\" [<!ENTITY unused \"x\">]>"),
    );
    let (body, ct) = raw_message(&unused, &[b"<d/>"]);
    let reply = post(&node, &node.portal(), body, &ct).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn no_sender_is_400_illegal_sender() {
    let node = Node::start().await;
    let from = format!("<from>{PORTAL}</from>");
    let cases = vec![
        case("no from, no originator", &from, ""),
        case("blank from", &from, "<from>  </from>"),
        case("blank originator", &from, "<originator> </originator>"),
        case(
            "from not an address",
            &from,
            "<from>Exempelportalen AB</from>",
        ),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalSender, ids).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_bad_to_is_400_illegal_receiver() {
    let node = Node::start().await;
    let to = format!("<to>{BYGGLOV}</to>");
    let cases = vec![
        case("too few digits", &to, "<to>urn:X-shs:21200001</to>"),
        case("a name", &to, "<to>Exempelkommun</to>"),
        case("empty", &to, "<to></to>"),
        case(
            "bad sub-address",
            &to,
            "<to>urn:X-shs:2120000142.bygg lov</to>",
        ),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalReceiver, ids).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn a_bad_product_is_400_illegal_product_type() {
    let node = Node::start().await;
    let product = format!("<product>{PRODUCT}</product>");
    let cases = vec![
        case("a name", &product, "<product>bygglov</product>"),
        case(
            "a broken UUID",
            &product,
            "<product>urn:X-shs:6b4a4e2c-0f8b</product>",
        ),
        case("empty", &product, "<product></product>"),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalProductType, ids).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn adm_synch_and_compound_asynch_are_400_illegal_message_structure() {
    let node = Node::start().await;
    let data = "<data datapartType=\"xml\" filename=\"a.xml\"/>";
    let cases = vec![
        case(
            "adm synch",
            "transfer-type=\"asynch\" sequence-type=\"event\"",
            "transfer-type=\"synch\" sequence-type=\"adm\"",
        ),
        case(
            "compound content asynch",
            data,
            "<compound no-of-parts=\"1\"/>",
        ),
        case(
            "message-type compound asynch",
            "status=\"production\"",
            "status=\"production\" message-type=\"compound\"",
        ),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, ids).await;
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn fewer_parts_than_data_elements_is_400_illegal_message_structure() {
    let node = Node::start().await;
    let one = "<data datapartType=\"xml\" filename=\"a.xml\"/>";
    let label = raw_label().replace(one, &format!("{one}<data datapartType=\"pdf\"/>"));
    let cases = vec![
        (
            "two described, one sent",
            raw_message(&label, &[b"<a/>"]).0,
            raw_ct(),
        ),
        (
            "one described, none sent",
            raw_message(&raw_label(), &[]).0,
            raw_ct(),
        ),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::IllegalMessageStructure, ids).await;
    // Both parts sent: accepted.
    let (body, ct) = raw_message(&label, &[b"<a/>", b"%PDF"]);
    assert_eq!(post(&node, &node.portal(), body, &ct).await.status, 202);
    assert_still_serving(&node).await;
    node.stop().await;
}

#[tokio::test]
async fn synchronous_transfer_without_a_destination_is_missing_delivery_address() {
    // No business system answers the product's requests here (tests/it/synch.rs has the
    // exchanges that work): a clean 400, the label's ids in the error document.
    let node = Node::start().await;
    let synch = "transfer-type=\"synch\"";
    let cases = vec![
        case("synch request", "transfer-type=\"asynch\"", synch),
        // A compound message is fine synchronously, so it too reaches the destination check.
        case(
            "synch compound",
            "transfer-type=\"asynch\"",
            "transfer-type=\"synch\" message-type=\"compound\"",
        ),
    ];
    let ids = Some((RAW_CORR_ID, RAW_CONTENT_ID));
    assert_all_refused(&node, cases, 400, ErrorCode::MissingDeliveryAddress, ids).await;
    assert_still_serving(&node).await;
    node.stop().await;
}
