//! Interoperability with messages written by another SHS implementation (Inera Axel).
//!
//! The reference messages live in `../shared/reference/axel/messages/` beside the checkout
//! (they are LGPL and not part of shsd). CI always has them; locally the tests skip when the
//! folder is absent.

use std::fs;
use std::path::PathBuf;

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{Label, SequenceType};
use shsd::protocol::management::{ManagementBody, ManagementDocument};
use shsd::protocol::message_list::MessageList;
use shsd::protocol::mime::{Limits, MessageWriter, SplitMessage, TransferDecoder, split_message};

fn reference_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/axel/messages");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} is absent", dir.display());
        None
    }
}

const BROKEN: [&str; 2] = [
    "shsTextMessageBroken.mime",
    "shsTextMessageTotallyBroken.mime",
];

fn reference_messages() -> Vec<(String, Vec<u8>)> {
    let Some(dir) = reference_dir() else {
        return Vec::new();
    };
    let mut messages: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "mime"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    messages.sort();
    assert!(
        messages.len() >= 8,
        "expected the reference messages, found {}",
        messages.len()
    );
    messages
}

/// Parses a whole message as the broker does: MIME split, then the label.
fn parse(bytes: &[u8]) -> Result<(SplitMessage, Label), ErrorCode> {
    let split = split_message(bytes, None, Limits::default()).map_err(|e| e.code())?;
    let label = Label::parse(&split.label).map_err(|e| e.code())?;
    Ok((split, label))
}

/// Writes a split message back out with its own boundary, raw headers and raw part bytes.
fn rewrite(split: &SplitMessage, label_xml: &[u8]) -> Vec<u8> {
    let boundary = split_boundary(split);
    let writer = MessageWriter::new(boundary);
    let mut out = writer.message_head();
    out.extend(writer.label_part(&split.label_headers, label_xml));
    for (headers, bytes) in &split.parts {
        out.extend(writer.part_head(headers));
        out.extend(bytes);
    }
    out.extend(writer.end());
    out
}

fn split_boundary(split: &SplitMessage) -> Vec<u8> {
    let headers = split
        .message_headers
        .as_ref()
        .expect("reference messages carry a header block");
    let content_type = headers.content_type().expect("a Content-Type");
    content_type
        .param("boundary")
        .expect("a boundary")
        .as_bytes()
        .to_vec()
}

fn decode(headers: &shsd::protocol::mime::PartHeaders, raw: &[u8]) -> Vec<u8> {
    let mut decoder = TransferDecoder::new(headers.transfer_encoding().unwrap());
    let mut out = Vec::new();
    decoder.decode(raw, &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    out
}

#[test]
fn good_reference_messages_round_trip_with_identical_data_parts() {
    for (name, bytes) in reference_messages() {
        if BROKEN.contains(&name.as_str()) {
            continue;
        }
        let (split, label) = parse(&bytes).unwrap_or_else(|code| panic!("{name}: {code}"));
        assert!(!split.parts.is_empty(), "{name}: no data parts");
        assert!(
            split.parts.len() >= label.data().len(),
            "{name}: fewer parts than data"
        );

        // The label written by shsd parses back to the same value.
        let written = label.to_xml();
        assert_eq!(
            Label::parse(&written).unwrap(),
            label,
            "{name}: label write/parse"
        );

        // The whole message re-emitted with the original label is read back identically.
        let again = rewrite(&split, &split.label);
        let (split_again, label_again) = parse(&again).unwrap();
        assert_eq!(label_again, label, "{name}: label after rewrite");
        assert_eq!(split_again.parts.len(), split.parts.len(), "{name}");
        for ((h1, b1), (h2, b2)) in split.parts.iter().zip(&split_again.parts) {
            assert_eq!(b1, b2, "{name}: data part bytes differ");
            assert_eq!(h1.raw(), h2.raw(), "{name}: part headers differ");
        }
    }
}

#[test]
fn broken_reference_messages_fail_with_illegal_message_structure() {
    let messages = reference_messages();
    for (name, bytes) in messages
        .iter()
        .filter(|(name, _)| BROKEN.contains(&name.as_str()))
    {
        assert_eq!(
            parse(bytes).err(),
            Some(ErrorCode::IllegalMessageStructure),
            "{name} must be refused"
        );
    }
}

#[test]
fn swedish_file_name_survives_in_label_and_part_headers() {
    let Some((_, bytes)) = reference_messages()
        .into_iter()
        .find(|(name, _)| name == "shsTextMessageSwedishFileName.mime")
    else {
        return;
    };
    let (split, label) = parse(&bytes).unwrap();
    assert_eq!(
        label.data()[0].filename.as_deref(),
        Some("filnamn-med-åäö.xml")
    );
    assert_eq!(
        split.parts[0].0.filename().as_deref(),
        Some("filnamn-med-åäö.xml")
    );
    // ISO-8859-1 in, UTF-8 out, and back again through shsd's own writer.
    let reparsed = Label::parse(&label.to_xml()).unwrap();
    assert_eq!(
        reparsed.data()[0].filename.as_deref(),
        Some("filnamn-med-åäö.xml")
    );
}

#[test]
fn base64_parts_decode_to_the_original_text() {
    let Some((_, bytes)) = reference_messages()
        .into_iter()
        .find(|(name, _)| name.starts_with("e41a8be7"))
    else {
        return;
    };
    let (split, _) = parse(&bytes).unwrap();
    let (headers, raw) = &split.parts[0];
    let text = decode(headers, raw);
    assert!(
        text.starts_with(b"#####"),
        "decoded: {:?}",
        String::from_utf8_lossy(&text[..40])
    );
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("Apache Software Foundation")
    );
}

#[test]
fn error_message_carries_a_management_document() {
    let Some((_, bytes)) = reference_messages()
        .into_iter()
        .find(|(name, _)| name == "shsErrorMessage.mime")
    else {
        return;
    };
    let (split, label) = parse(&bytes).unwrap();
    assert_eq!(label.sequence_type, SequenceType::Adm);
    let document = ManagementDocument::parse(&split.parts[0].1).unwrap();
    match document.body {
        ManagementBody::Error { .. } => {
            assert_eq!(document.error_code(), Some(ErrorCode::MissingAgreement))
        }
        other => panic!("expected an error document, got {other:?}"),
    }
}

#[test]
fn axel_message_list_is_read() {
    let Some(dir) = reference_dir() else {
        return;
    };
    let bytes = fs::read(dir.join("listMessagesResponse.xml")).unwrap();
    let list = MessageList::parse(&bytes).unwrap();
    assert_eq!(list.messages.len(), 3);
    assert_eq!(
        list.messages[2].tx_id,
        "9212a1dd-77bc-4727-ace0-76f13ae5c4bf"
    );
    let again = MessageList::parse(&list.to_xml()).unwrap();
    assert_eq!(again, list);
}
