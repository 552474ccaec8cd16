//! Label reading tests: every element, attribute and default, the error paths, encodings,
//! entities and the reference messages.

use super::*;
use crate::protocol::{ErrorCode, ProtocolError};

pub(super) const MINIMAL: &str = r#"<shs.label tx.id="t1" corr.id="c1" sequence-type="event">
  <from>urn:X-shs:5565317129</from>
  <product>urn:X-shs:00000000-0000-0000-0000-000000000000</product>
  <datetime>2024-01-02T03:04:05</datetime>
  <content content.id="k1"/>
</shs.label>"#;

pub(super) const FULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE shs.label SYSTEM "shs-label-1.2.dtd">
<shs.label version="1.2" tx.id="tx-1" corr.id="corr-1" shs.agreement="agr-1"
    transfer-type="synch" message-type="compound" document-type="simple"
    sequence-type="request" status="test">
  <originator name="Orig Name" labeledURI="http://o.example/">urn:X-shs:1111111111</originator>
  <from commonName="Från AB" e-mail="a@b.se" labeledURI="http://f.example/">urn:X-shs:2222222222</from>
  <to commonName="Till">urn:X-shs:3333333333.sub</to>
  <end-recipient name="End" labeledURI="http://e.example/">urn:X-shs:4444444444</end-recipient>
  <product commonName="Prod" labeledURI="http://p.example/">urn:X-shs:12345678-1234-1234-1234-123456789abc</product>
  <meta name="m1">v1</meta>
  <meta name="m2"></meta>
  <subject>Ärende &lt;1&gt; &amp; co</subject>
  <datetime>2024-01-02T03:04:05</datetime>
  <content content.id="content-1">
    <data datapartType="xml" filename="a.xml" no-of-bytes="12" no-of-records="3"/>
    <data datapartType="txt"/>
    <comment>two parts</comment>
  </content>
  <history node.id="n1" content.id="content-1" tx.id="tx-1" from="urn:X-shs:2222222222"
      to="urn:X-shs:3333333333" local.id="l1" shs.agreement="agr-1">
    <datetime>2024-01-02T03:04:06</datetime>
    <comment>Received</comment>
  </history>
  <history node.id="n2"><datetime>2024-01-02T03:04:07</datetime></history>
</shs.label>"#;

pub(super) fn parse(text: &str) -> Result<Label, ProtocolError> {
    Label::parse(text.as_bytes())
}

/// The reason of a label error, checking that it is a structure error of `shs.label`.
pub(super) fn reason(result: Result<Label, ProtocolError>) -> String {
    match result {
        Err(err @ ProtocolError::Xml { document, .. }) => {
            assert_eq!(document, "shs.label");
            assert_eq!(err.code(), ErrorCode::IllegalMessageStructure);
            let ProtocolError::Xml { reason, .. } = err else {
                unreachable!()
            };
            assert!(!reason.contains('\n'), "reason must be one line: {reason}");
            reason
        }
        other => panic!("expected an XML error, got {other:?}"),
    }
}

#[test]
fn minimal_label_takes_the_dtd_defaults() {
    let label = parse(MINIMAL).unwrap();
    assert_eq!(label.version, "1.2");
    assert_eq!(label.tx_id, "t1");
    assert_eq!(label.corr_id, "c1");
    assert_eq!(label.shs_agreement, None);
    assert_eq!(label.transfer_type, TransferType::Asynch);
    assert_eq!(label.message_type, None);
    assert_eq!(label.document_type, None);
    assert_eq!(label.sequence_type, SequenceType::Event);
    assert_eq!(label.status, Status::Production);
    assert_eq!(label.originator, None);
    assert_eq!(label.from.as_ref().unwrap().value, "urn:X-shs:5565317129");
    assert_eq!(label.from.as_ref().unwrap().common_name, None);
    assert_eq!(label.to, None);
    assert_eq!(label.end_recipient, None);
    assert!(label.meta.is_empty());
    assert_eq!(label.subject, None);
    assert_eq!(label.datetime, "2024-01-02T03:04:05");
    assert_eq!(label.content.content_id, "k1");
    assert_eq!(label.content.parts, ContentParts::Data(vec![]));
    assert_eq!(label.content.comment, None);
    assert!(label.history.is_empty());
}

#[test]
fn full_label_keeps_every_element_and_attribute() {
    let label = parse(FULL).unwrap();
    let expected = Label {
        version: "1.2".into(),
        tx_id: "tx-1".into(),
        corr_id: "corr-1".into(),
        shs_agreement: Some("agr-1".into()),
        transfer_type: TransferType::Synch,
        message_type: Some(Compoundness::Compound),
        document_type: Some(Compoundness::Simple),
        sequence_type: SequenceType::Request,
        status: Status::Test,
        originator: Some(Originator {
            value: "urn:X-shs:1111111111".into(),
            name: Some("Orig Name".into()),
            labeled_uri: Some("http://o.example/".into()),
        }),
        from: Some(From {
            value: "urn:X-shs:2222222222".into(),
            common_name: Some("Från AB".into()),
            e_mail: Some("a@b.se".into()),
            labeled_uri: Some("http://f.example/".into()),
        }),
        to: Some(To {
            value: "urn:X-shs:3333333333.sub".into(),
            common_name: Some("Till".into()),
        }),
        end_recipient: Some(EndRecipient {
            value: "urn:X-shs:4444444444".into(),
            name: Some("End".into()),
            labeled_uri: Some("http://e.example/".into()),
        }),
        product: Product {
            value: "urn:X-shs:12345678-1234-1234-1234-123456789abc".into(),
            common_name: Some("Prod".into()),
            labeled_uri: Some("http://p.example/".into()),
        },
        meta: vec![
            Meta {
                name: "m1".into(),
                value: "v1".into(),
            },
            Meta {
                name: "m2".into(),
                value: String::new(),
            },
        ],
        subject: Some("Ärende <1> & co".into()),
        datetime: "2024-01-02T03:04:05".into(),
        content: Content {
            content_id: "content-1".into(),
            parts: ContentParts::Data(vec![
                Data {
                    datapart_type: Some("xml".into()),
                    filename: Some("a.xml".into()),
                    no_of_bytes: Some("12".into()),
                    no_of_records: Some("3".into()),
                },
                Data {
                    datapart_type: Some("txt".into()),
                    ..Data::default()
                },
            ]),
            comment: Some("two parts".into()),
        },
        history: vec![
            History {
                node_id: "n1".into(),
                content_id: Some("content-1".into()),
                tx_id: Some("tx-1".into()),
                from: Some("urn:X-shs:2222222222".into()),
                to: Some("urn:X-shs:3333333333".into()),
                local_id: Some("l1".into()),
                shs_agreement: Some("agr-1".into()),
                product_id: None,
                corr_id: None,
                datetime: "2024-01-02T03:04:06".into(),
                comment: Some("Received".into()),
            },
            History {
                node_id: "n2".into(),
                datetime: "2024-01-02T03:04:07".into(),
                ..History::default()
            },
        ],
    };
    assert_eq!(label, expected);
    assert_eq!(
        parse(&String::from_utf8(label.to_xml()).unwrap()),
        Ok(label)
    );
}

#[test]
fn label_1_1_reads_uuid_and_history_ids() {
    let text = r#"<shs.label version="1.1" tx.id="t" corr.id="c" document-type="compound" sequence-type="reply">
      <originator>urn:X-shs:1111111111</originator>
      <product>urn:X-shs:confirm</product>
      <datetime>d</datetime>
      <content uuid="u-1"><compound no-of-parts="3"/><comment>c</comment></content>
      <history content.id="u-1" tx.id="t" node.id="n" product.id="p" corr.id="c"><datetime>d</datetime></history>
    </shs.label>"#;
    let label = parse(text).unwrap();
    assert_eq!(label.version, "1.1");
    assert_eq!(label.message_type, None);
    assert_eq!(label.document_type, Some(Compoundness::Compound));
    assert_eq!(label.from, None);
    assert_eq!(label.content.content_id, "u-1");
    assert_eq!(
        label.content.parts,
        ContentParts::Compound {
            no_of_parts: "3".into()
        }
    );
    assert_eq!(label.data(), &[]);
    assert_eq!(label.history[0].product_id.as_deref(), Some("p"));
    assert_eq!(label.history[0].corr_id.as_deref(), Some("c"));
    let written = String::from_utf8(label.to_xml()).unwrap();
    assert!(written.contains(r#"<content uuid="u-1">"#), "{written}");
    assert!(written.contains("shs-label-1.1.dtd"), "{written}");
    assert_eq!(parse(&written), Ok(label));
}

#[test]
fn content_id_wins_over_uuid() {
    let text = MINIMAL.replace(r#"content.id="k1""#, r#"uuid="u" content.id="k1""#);
    assert_eq!(parse(&text).unwrap().content.content_id, "k1");
}

#[test]
fn neither_from_nor_originator_is_left_to_validation() {
    let text = MINIMAL.replace("<from>urn:X-shs:5565317129</from>", "");
    let label = parse(&text).unwrap();
    assert_eq!((label.from, label.originator), (None, None));
}

#[test]
fn text_is_kept_as_written_and_formatting_ignored() {
    let text = MINIMAL
        .replace(
            "<datetime>",
            "<subject>  two  words \r\n next </subject>\n\t<datetime>",
        )
        .replace(
            "<from>urn:X-shs:5565317129</from>",
            "<from> urn:<!-- c -->X-shs:<![CDATA[55]]>65317129 </from>",
        );
    let label = parse(&text).unwrap();
    assert_eq!(label.subject.as_deref(), Some("  two  words \n next "));
    assert_eq!(label.from.unwrap().value, " urn:X-shs:5565317129 ");
    let empty = MINIMAL.replace("<datetime>", "<subject/><datetime>");
    assert_eq!(parse(&empty).unwrap().subject.as_deref(), Some(""));
}

#[test]
fn attribute_values_are_normalised_and_unknown_attributes_ignored() {
    let text = MINIMAL.replace(
        r#"<from>"#,
        "<from commonName=\"a\nb\tc &#10;d &quot;q&quot;\" x-extension=\"ignored\">",
    );
    let label = parse(&text).unwrap();
    let from = label.from.unwrap();
    assert_eq!(from.common_name.as_deref(), Some("a b c \nd \"q\""));
}

#[test]
fn predefined_entities_and_character_references_are_resolved() {
    let text = MINIMAL.replace(
        "<datetime>",
        "<subject>&lt;&gt;&amp;&apos;&quot;&#229;&#xE4;&#xf6;&#x1F600;</subject><datetime>",
    );
    assert_eq!(
        parse(&text).unwrap().subject.as_deref(),
        Some("<>&'\"åäö😀")
    );
}

#[test]
fn billion_laughs_is_refused_fast() {
    let mut dtd = String::from("<!DOCTYPE shs.label [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    dtd.push_str("]>\n");
    let started = std::time::Instant::now();
    let in_text = format!(
        "{dtd}{}",
        MINIMAL.replace("<datetime>", "<subject>&lol9;</subject><datetime>")
    );
    assert!(reason(parse(&in_text)).contains("entity reference &lol9; is not allowed"));
    let in_attr = format!(
        "{dtd}{}",
        MINIMAL.replace("tx.id=\"t1\"", "tx.id=\"&lol9;\"")
    );
    assert!(reason(parse(&in_attr)).contains("entity reference &lol9; is not allowed"));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn external_and_undeclared_entities_are_refused() {
    let xxe = format!(
        "<!DOCTYPE shs.label [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}",
        MINIMAL.replace("<datetime>", "<subject>&xxe;</subject><datetime>")
    );
    assert!(reason(parse(&xxe)).contains("&xxe;"));
    let undeclared = MINIMAL.replace("<datetime>", "<subject>&nbsp;</subject><datetime>");
    assert!(reason(parse(&undeclared)).contains("&nbsp;"));
}

#[test]
fn unused_doctype_and_internal_subset_are_ignored() {
    let with_subset = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE shs.label SYSTEM \"http://unreachable.invalid/x.dtd\" [\n\
         <!ENTITY unused \"x]>y\">\n<!ENTITY ext SYSTEM \"file:///etc/passwd\">\n<!-- ]> -->\n]>\n{MINIMAL}"
    );
    assert_eq!(parse(&with_subset), parse(MINIMAL));
}

#[test]
fn iso_8859_1_declaration_wins_over_a_utf8_mime_charset() {
    // The MIME part says charset=UTF-8 (as Axel's messages do), the bytes are Latin-1:
    // decoding by the MIME charset would fail, decoding by the declaration gives åäö.
    let mut bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n".to_vec();
    let body = MINIMAL.replace(
        "<datetime>",
        "<subject>R\u{e4}ksm\u{f6}rg\u{e5}s</subject><datetime>",
    );
    bytes.extend(body.chars().map(|c| u8::try_from(u32::from(c)).unwrap()));
    assert!(std::str::from_utf8(&bytes).is_err());
    let label = Label::parse(&bytes).unwrap();
    assert_eq!(label.subject.as_deref(), Some("Räksmörgås"));

    // And a document that really is UTF-8 but declares ISO-8859-1 is read as Latin-1.
    let lying = format!("<?xml version='1.0' encoding='latin1'?>{body}");
    let label = Label::parse(lying.as_bytes()).unwrap();
    assert_eq!(label.subject.as_deref(), Some("RÃ¤ksmÃ¶rgÃ¥s"));
}

#[test]
fn encodings_from_the_declaration() {
    let utf8 = MINIMAL.replace("<datetime>", "<subject>åäö</subject><datetime>");
    for decl in [
        "",
        "<?xml version=\"1.0\"?>",
        "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>",
    ] {
        let label = Label::parse(format!("{decl}{utf8}").as_bytes()).unwrap();
        assert_eq!(label.subject.as_deref(), Some("åäö"));
    }
    let bom = [b"\xEF\xBB\xBF".as_slice(), utf8.as_bytes()].concat();
    assert_eq!(Label::parse(&bom).unwrap().subject.as_deref(), Some("åäö"));
    let ascii = format!("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>{MINIMAL}");
    assert!(Label::parse(ascii.as_bytes()).is_ok());

    let cases: &[(Vec<u8>, &str)] = &[
        (
            format!("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>{utf8}").into_bytes(),
            "is not US-ASCII",
        ),
        (
            format!("<?xml version=\"1.0\" encoding=\"windows-1252\"?>{MINIMAL}").into_bytes(),
            "unsupported encoding \"windows-1252\"",
        ),
        (
            [
                b"\xEF\xBB\xBF<?xml version='1.0' encoding='ISO-8859-1'?>".as_slice(),
                MINIMAL.as_bytes(),
            ]
            .concat(),
            "byte order mark contradicts",
        ),
        ([b"\xFF\xFE<\0".as_slice()].concat(), "UTF-16"),
        (
            [MINIMAL.as_bytes(), b"\xE5"].concat(),
            "invalid UTF-8 at byte",
        ),
        (
            b"<?xml version='1.0' encoding='UTF-8'".to_vec(),
            "unterminated XML declaration",
        ),
        (
            b"<?xml version='1.0' encoding=UTF-8?><a/>".to_vec(),
            "malformed XML declaration",
        ),
    ];
    for (bytes, expected) in cases {
        let reason = reason(Label::parse(bytes));
        assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
    }
}

/// The label part of a reference message: the text between the first blank line after
/// the first boundary and the next boundary.
pub(super) fn reference_label(mime: &[u8]) -> &[u8] {
    let text = mime;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let b = find(text, b"boundary=\"", 0).unwrap() + 10;
    let boundary_end = find(text, b"\"", b).unwrap();
    let delimiter = [b"\n--".as_slice(), &text[b..boundary_end]].concat();
    let first = find(text, &delimiter, boundary_end).unwrap();
    let start = find(text, b"\n\n", first + 1).unwrap() + 2;
    let end = find(text, &delimiter, start).unwrap_or(text.len());
    &text[start..end]
}

pub(super) fn reference_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/axel/messages"
    ));
    dir.is_dir().then(|| dir.to_path_buf())
}

#[test]
fn every_reference_label_parses() {
    let Some(dir) = reference_dir() else {
        eprintln!("reference messages absent: skipped");
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "mime") {
            continue;
        }
        let mime = std::fs::read(&path).unwrap();
        let result = Label::parse(reference_label(&mime));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        seen += 1;
        if name.contains("TotallyBroken") {
            assert!(reason(result).contains("ends inside"), "{name}");
            continue;
        }
        let label = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(label.version, "1.2", "{name}");
        assert_eq!(label.transfer_type, TransferType::Asynch);
        assert!(label.from.is_some() && !label.history.is_empty(), "{name}");
        // Writing and reading again loses nothing.
        assert_eq!(Label::parse(&label.to_xml()).as_ref(), Ok(&label), "{name}");
        match name.as_str() {
            "shsTextMessageSwedishFileName.mime" => {
                assert_eq!(
                    label.data()[0].filename.as_deref(),
                    Some("filnamn-med-åäö.xml")
                );
            }
            "shsErrorMessage.mime" => {
                assert_eq!(label.sequence_type, SequenceType::Adm);
                assert_eq!(label.product.value, "urn:X-shs:error");
                assert_eq!(label.to.as_ref().unwrap().common_name, None);
                // The line break inside local.id is normalised to a space, as XML says.
                assert_eq!(
                    label.history[0].local_id.as_deref(),
                    Some("5a01ff87-e641-486e-8521-8e8 2d1ee1052")
                );
            }
            "981ead58-b2b1-4373-b3b8-d93e1594f359.mime" => {
                assert_eq!(label.history.len(), 2);
                assert_eq!(label.history[1].node_id, "R2M");
                assert_eq!(label.history[1].comment.as_deref(), Some("entered node"));
                assert_eq!(label.message_type, Some(Compoundness::Simple));
            }
            _ => {}
        }
    }
    assert!(seen >= 9, "only {seen} reference messages");
}
