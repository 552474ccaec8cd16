//! Management document and reply-label tests.

use super::*;
use crate::protocol::label::Status;

const ORIGINAL: &str = r#"<shs.label tx.id="tx-1" corr.id="corr-1" sequence-type="request" status="test" transfer-type="asynch">
  <originator name="O" labeledURI="uri:o">urn:X-shs:1111111111</originator>
  <from commonName="F" e-mail="f@x.se">urn:X-shs:2222222222</from>
  <to commonName="T">urn:X-shs:3333333333</to>
  <end-recipient name="E" labeledURI="uri:e">urn:X-shs:4444444444</end-recipient>
  <product>urn:X-shs:12345678-1234-1234-1234-123456789abc</product>
  <meta name="m">v</meta>
  <subject>s</subject>
  <datetime>2024-01-01T00:00:00</datetime>
  <content content.id="content-1"><data datapartType="xml"/></content>
  <history node.id="n"><datetime>d</datetime></history>
</shs.label>"#;

fn original() -> Label {
    Label::parse(ORIGINAL.as_bytes()).unwrap()
}

fn reason(result: Result<ManagementDocument, ProtocolError>) -> String {
    match result {
        Err(ProtocolError::Xml { document, reason }) => {
            assert_eq!(document, DOC);
            reason
        }
        other => panic!("expected an XML error, got {other:?}"),
    }
}

#[test]
fn reply_label_swaps_the_parties_and_keeps_the_ids() {
    let original = original();
    let reply = reply_label(
        &original,
        ManagementKind::Confirm,
        "tx-2".into(),
        "now".into(),
    );
    assert_eq!(reply.version, "1.2");
    assert_eq!(reply.tx_id, "tx-2");
    assert_eq!(reply.corr_id, "corr-1");
    assert_eq!(reply.shs_agreement, None);
    assert_eq!(reply.transfer_type, TransferType::Asynch);
    assert_eq!(reply.sequence_type, SequenceType::Adm);
    assert_eq!(reply.status, Status::Test);
    assert_eq!(reply.product.value, "urn:X-shs:confirm");
    let from = reply.from.as_ref().unwrap();
    assert_eq!(
        (from.value.as_str(), from.common_name.as_deref()),
        ("urn:X-shs:3333333333", Some("T"))
    );
    let to = reply.to.as_ref().unwrap();
    assert_eq!(
        (to.value.as_str(), to.common_name.as_deref()),
        ("urn:X-shs:2222222222", Some("F"))
    );
    let originator = reply.originator.as_ref().unwrap();
    assert_eq!(originator.value, "urn:X-shs:4444444444");
    assert_eq!(originator.name.as_deref(), Some("E"));
    assert_eq!(originator.labeled_uri.as_deref(), Some("uri:e"));
    let end = reply.end_recipient.as_ref().unwrap();
    assert_eq!(
        (end.value.as_str(), end.name.as_deref()),
        ("urn:X-shs:1111111111", Some("O"))
    );
    assert_eq!(reply.content.content_id, "content-1");
    assert_eq!(
        reply.data(),
        &[Data {
            datapart_type: Some("confirm".into()),
            filename: Some("confirm.xml".into()),
            ..Data::default()
        }]
    );
    assert!(reply.meta.is_empty() && reply.subject.is_none() && reply.history.is_empty());
    assert_eq!(reply.datetime, "now");
    assert!(!may_be_answered(&reply));
    assert_eq!(Label::parse(&reply.to_xml()), Ok(reply));

    let error = reply_label(
        &original,
        ManagementKind::Error,
        "tx-3".into(),
        "now".into(),
    );
    assert_eq!(error.product.value, "urn:X-shs:error");
    assert_eq!(error.data()[0].datapart_type.as_deref(), Some("error"));
    assert_eq!(error.data()[0].filename.as_deref(), Some("error.xml"));
}

#[test]
fn reply_label_keeps_missing_parties_missing() {
    let mut original = original();
    original.to = None;
    original.originator = None;
    original.end_recipient = None;
    let reply = reply_label(&original, ManagementKind::Error, "t".into(), "d".into());
    assert_eq!(
        (reply.from, reply.originator, reply.end_recipient),
        (None, None, None)
    );
    assert_eq!(reply.to.unwrap().value, "urn:X-shs:2222222222");
}

#[test]
fn reply_goes_to_the_originator_when_there_is_no_from() {
    let mut original = original();
    original.from = None;
    let originator = original.originator.clone().unwrap();
    let reply = reply_label(&original, ManagementKind::Confirm, "t".into(), "d".into());
    assert_eq!(reply.to.unwrap().value, originator.value);
}

#[test]
fn reply_builds_label_and_document_together() {
    let original = original();
    let body = ManagementBody::Error {
        code: ErrorCode::MissingAgreement.into(),
        info: Some("no agreement".into()),
        appinfo: vec![],
    };
    let (label, document) = reply(&original, body, "tx-9".into(), "d".into());
    assert_eq!(label.product.value, "urn:X-shs:error");
    assert_eq!(document.corr_id, "corr-1");
    assert_eq!(document.content_id, "content-1");
    assert_eq!(document.datetime, "d");
    assert_eq!(document.error_code(), Some(ErrorCode::MissingAgreement));
    assert_eq!(
        document,
        ManagementDocument::error(&original, ErrorCode::MissingAgreement, "no agreement", "d")
    );
    let confirmation = ManagementDocument::confirmation(&original, "d");
    assert_eq!(
        (confirmation.kind(), confirmation.error_code()),
        (ManagementKind::Confirm, None)
    );
}

#[test]
fn management_messages_are_never_answered() {
    let mut label = original();
    assert!(may_be_answered(&label));
    for product in ["urn:X-shs:confirm", "urn:x-shs:ERROR", "error", " confirm "] {
        label.product.value = product.into();
        assert!(!may_be_answered(&label), "{product}");
    }
    label.product.value = "urn:X-shs:agreement".into();
    assert!(may_be_answered(&label));
    label.sequence_type = SequenceType::Adm;
    assert!(!may_be_answered(&label));
}

#[test]
fn documents_round_trip() {
    let appinfo = vec![
        AppInfo {
            name: "a".into(),
            value: "åäö & <x>".into(),
        },
        AppInfo {
            name: "b".into(),
            value: String::new(),
        },
    ];
    let documents = [
        ManagementDocument::confirmation(&original(), "2024-01-01"),
        ManagementDocument {
            body: ManagementBody::Confirmation {
                appinfo: appinfo.clone(),
            },
            ..ManagementDocument::confirmation(&original(), "d")
        },
        ManagementDocument::error(&original(), ErrorCode::IllegalSender, "\"x\" <y>", "d"),
        ManagementDocument {
            body: ManagementBody::Error {
                code: WireErrorCode::new("FutureCode").unwrap(),
                info: None,
                appinfo,
            },
            ..ManagementDocument::confirmation(&original(), "d")
        },
    ];
    for document in documents {
        let xml = document.to_xml();
        assert!(xml.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert_eq!(ManagementDocument::parse(&xml), Ok(document));
    }
}

#[test]
fn unknown_codes_stay_readable() {
    let code = WireErrorCode::new("SomethingNew").unwrap();
    assert_eq!(
        (code.as_str(), code.code()),
        ("SomethingNew", ErrorCode::OtherError)
    );
    assert_eq!(code.to_string(), "SomethingNew");
    assert_eq!(
        WireErrorCode::from(ErrorCode::Timeout).code(),
        ErrorCode::Timeout
    );
    assert_eq!(WireErrorCode::new(" "), None);
    let padded = WireErrorCode::new(" IllegalSender\n").unwrap();
    assert_eq!(padded.code(), ErrorCode::IllegalSender);
    assert_eq!(padded.as_str(), " IllegalSender\n");
}

#[test]
fn latin1_and_utf8_documents_parse() {
    let body = "<shs.management corr.id=\"c\" content.id=\"k\"><datetime>d</datetime>\
                <error errorcode=\"IllegalReceiver\" errorinfo=\"Mottagaren \u{e4}r ok\u{e4}nd\"/>\
                </shs.management>";
    let mut latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_vec();
    latin1.extend(body.chars().map(|c| u8::try_from(u32::from(c)).unwrap()));
    let utf8 = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}");
    for bytes in [latin1, utf8.into_bytes()] {
        let document = ManagementDocument::parse(&bytes).unwrap();
        assert_eq!(document.error_code(), Some(ErrorCode::IllegalReceiver));
        let ManagementBody::Error { info, .. } = document.body else {
            panic!()
        };
        assert_eq!(info.as_deref(), Some("Mottagaren är okänd"));
    }
}

#[test]
fn every_error_path_has_its_reason() {
    let good = "<shs.management corr.id=\"c\" content.id=\"k\"><datetime>d</datetime>\
                <confirmation><appinfo name=\"n\">v</appinfo></confirmation></shs.management>";
    assert!(ManagementDocument::parse(good.as_bytes()).is_ok());
    let cases = [
        (
            "corr.id=\"c\" ",
            "",
            "missing attribute corr.id on <shs.management>",
        ),
        (
            "content.id=\"k\"",
            "",
            "missing attribute content.id on <shs.management>",
        ),
        (
            "<datetime>d</datetime>",
            "",
            "expected <datetime>, found <confirmation>",
        ),
        (
            "<confirmation><appinfo name=\"n\">v</appinfo></confirmation>",
            "",
            "missing <confirmation> or <error>",
        ),
        (
            "<datetime>d</datetime><confirmation><appinfo name=\"n\">v</appinfo></confirmation>",
            "",
            "missing <datetime>",
        ),
        (
            "</confirmation>",
            "</confirmation><x/>",
            "unexpected <x> after the body",
        ),
        ("<confirmation>", "<confirmed>", "expected `</confirmed>`"),
        (
            "confirmation>",
            "status>",
            "expected <confirmation> or <error>, found <status>",
        ),
        ("<confirmation>", "<error>", "expected `</error>`"),
        (
            "<confirmation><appinfo",
            "<error errorcode=\"\"><appinfo",
            "expected `</error>`",
        ),
        (
            "appinfo name=\"n\"",
            "appinfo",
            "missing attribute name on <appinfo>",
        ),
        (
            "<appinfo name=\"n\">v</appinfo>",
            "<note/>",
            "unknown element <note> in the body",
        ),
        (
            "<appinfo name=\"n\">v</appinfo>",
            "text",
            "unexpected text \"text\" in <confirmation>",
        ),
        (
            "shs.management",
            "shs.label",
            "the root element is <shs.label>",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(good.contains(from), "{from}");
        let text = good.replace(from, to);
        let reason = reason(ManagementDocument::parse(text.as_bytes()));
        assert!(
            reason.contains(expected),
            "{to}: {reason:?} lacks {expected:?}"
        );
    }
    let error = "<shs.management corr.id=\"c\" content.id=\"k\"><datetime>d</datetime><error/></shs.management>";
    assert!(
        reason(ManagementDocument::parse(error.as_bytes()))
            .contains("missing attribute errorcode on <error>")
    );
    let empty = error.replace("<error/>", "<error errorcode=\"\"/>");
    assert_eq!(
        reason(ManagementDocument::parse(empty.as_bytes())),
        "empty errorcode"
    );
}

#[test]
fn axel_error_message_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/axel/messages/shsErrorMessage.mime"
    );
    let Ok(mime) = std::fs::read(path) else {
        eprintln!("reference messages absent: skipped");
        return;
    };
    // The second part: after the blank line that follows the second boundary.
    let text = String::from_utf8(mime).unwrap();
    let boundary = "\n------=_Part_8_2076149943.1371473840632";
    let part = text.split(boundary).nth(2).unwrap();
    let body = &part[part.find("\n\n").unwrap() + 2..];
    let document = ManagementDocument::parse(body.as_bytes()).unwrap();
    assert_eq!(document.corr_id, "5a01ff87-e641-486e-8521-8e82d1ee1052");
    assert_eq!(document.content_id, "ad0bc04c-a56c-4117-bec5-19f0d4437fdf");
    assert_eq!(document.datetime, "2013-06-17");
    assert_eq!(document.error_code(), Some(ErrorCode::MissingAgreement));
    let ManagementBody::Error {
        code,
        info,
        appinfo,
    } = document.body
    else {
        panic!()
    };
    assert_eq!(code.as_str(), "MissingAgreement");
    assert_eq!(
        info.as_deref(),
        Some("No valid agreement found for the message")
    );
    assert!(appinfo.is_empty());
}
