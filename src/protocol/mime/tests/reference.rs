//! Every reference message of Inera Axel, read from `../shared/reference/axel/messages`
//! when that folder exists (LGPL data: read, never copied into the repository).

use std::path::PathBuf;

use super::*;
use crate::protocol::ErrorCode;
use crate::protocol::mime::*;

fn reference_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/axel/messages"
    ));
    dir.is_dir().then_some(dir)
}

/// The reference messages `(file name, bytes)`, or none when the folder is absent.
fn reference_messages() -> Vec<(String, Vec<u8>)> {
    let Some(dir) = reference_dir() else {
        eprintln!("reference messages absent: skipped");
        return Vec::new();
    };
    let mut messages: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read reference dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "mime"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read message"))
        })
        .collect();
    messages.sort();
    assert!(messages.len() >= 8, "reference messages missing");
    messages
}

#[test]
fn every_reference_message_parses_or_fails_as_documented() {
    for (name, bytes) in reference_messages() {
        let broken = name.contains("Broken");
        for content_type in [None, Some("message/rfc822"), Some("multipart/mixed")] {
            let read = match content_type {
                None => read_every_way(&bytes, content_type),
                Some(_) => {
                    let one = read_chunked(&bytes, content_type, Limits::default(), &[1]);
                    assert_eq!(one, read_whole(&bytes, content_type), "{name}");
                    one
                }
            };
            match read {
                Ok(read) if !broken => {
                    let split = &read.split;
                    assert!(split.label.starts_with(b"<?xml"), "{name}");
                    assert!(split.label.ends_with(b"</shs.label>\n"), "{name}");
                    assert_eq!(
                        split.label_headers.content_type().unwrap().media_type,
                        "text/xml"
                    );
                    assert_eq!(split.parts.len(), 1, "{name}");
                    let headers = split.message_headers.as_ref().expect("message headers");
                    assert_eq!(headers.get("mime-version"), Some(&b"1.0"[..]));
                    assert!(read.boundary.starts_with(b"----=_Part_"), "{name}");
                    assert_eq!(
                        split_message(&bytes, content_type, Limits::default()).unwrap(),
                        read.split
                    );
                }
                Err(err) if broken => {
                    assert_eq!(err.code(), ErrorCode::IllegalMessageStructure, "{name}");
                    assert!(matches!(err, ProtocolError::Mime(_)), "{name}: {err}");
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn broken_reference_messages_say_where_they_stop() {
    for (name, bytes) in reference_messages() {
        let expected = match name.as_str() {
            "shsTextMessageBroken.mime" => "input ended inside data part 1 (no closing boundary)",
            "shsTextMessageTotallyBroken.mime" => {
                "input ended inside the label part (no boundary after it)"
            }
            _ => continue,
        };
        assert_eq!(mime_error(read_whole(&bytes, None)), expected, "{name}");
    }
}

#[test]
fn reference_text_parts_file_names_and_base64() {
    for (name, bytes) in reference_messages() {
        if name.contains("Broken") {
            continue;
        }
        let split = read_whole(&bytes, None).unwrap().split;
        let (headers, raw) = &split.parts[0];
        let content = decoded(headers, raw);
        let expected_name = match name.as_str() {
            "shsTextMessage.mime" => Some("text.txt"),
            "shsErrorMessage.mime" => Some("error.xml"),
            "shsTextMessageSwedishFileName.mime" => Some("filnamn-med-åäö.xml"),
            "e41a8be7-5e81-46cd-8418-11a250348c29.mime" => Some("e4config.properties"),
            "981ead58-b2b1-4373-b3b8-d93e1594f359.mime" => Some("98config.properties"),
            _ => None,
        };
        assert_eq!(headers.filename().as_deref(), expected_name, "{name}");
        if headers.transfer_encoding() == Ok(TransferEncoding::Base64) {
            let text = String::from_utf8(content).expect("properties text is UTF-8");
            assert!(text.starts_with("################"), "{name}");
            assert!(
                text.contains("Licensed to the Apache Software Foundation"),
                "{name}"
            );
            assert!(text.ends_with("obr.repository.url = \n\n"), "{name}");
        } else if name.starts_with("shsText") {
            assert!(content.starts_with(b"Lorem ipsum"), "{name}");
            assert!(content.ends_with(b"id est laborum.\n"), "{name}");
        }
    }
}

#[test]
fn swedish_file_name_and_charset() {
    for (name, bytes) in reference_messages() {
        if name == "shsTextMessageSwedishFileName.mime" {
            let split = read_whole(&bytes, None).unwrap().split;
            let headers = &split.parts[0].0;
            assert_eq!(headers.filename().as_deref(), Some("filnamn-med-åäö.xml"));
            assert_eq!(headers.charset().as_deref(), Some("iso-8859-1"));
            assert!(headers.raw().windows(3).any(|w| w == b"\xe5\xe4\xf6"));
        }
    }
}

#[test]
fn reference_messages_re_emit_byte_for_byte() {
    for (name, bytes) in reference_messages() {
        if name.contains("Broken") {
            continue;
        }
        let read = read_whole(&bytes, None).unwrap();
        let split = read.split;
        let writer = MessageWriter::new(read.boundary.clone());
        let mut out = writer.message_head();
        out.extend(writer.label_part(&split.label_headers, &split.label));
        for (headers, raw) in &split.parts {
            out.extend(writer.part_head(headers));
            out.extend_from_slice(raw);
            // Every data part is a verbatim slice of the original message.
            assert!(
                bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
                "{name}"
            );
        }
        out.extend(writer.end());
        let again = read_whole(&out, None).unwrap();
        assert_eq!(again.split.parts, split.parts, "{name}");
        assert_eq!(again.split.label, split.label, "{name}");
        assert_eq!(again.boundary, read.boundary, "{name}");
        // And the bare form with the writer's HTTP Content-Type.
        let bare_start = writer.message_head().len();
        let bare = read_whole(&out[bare_start..], Some(&writer.content_type())).unwrap();
        assert_eq!(bare.split.parts, split.parts, "{name}");
        assert_eq!(bare.split.message_headers, None);
    }
}
