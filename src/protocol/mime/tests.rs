//! Tests across the module: the reference messages, both body forms, line ends, chunked
//! feeding at every split point, limits and error cases, and writer/reader round trips.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::protocol::ErrorCode;

const LABEL: &[u8] = b"<?xml version=\"1.0\"?>\n<shs.label version=\"1.2\"/>";

/// What a reader produced, collected; the same shape whatever the chunking.
#[derive(Debug, PartialEq, Eq)]
struct Collected {
    split: SplitMessage,
    boundary: Vec<u8>,
}

/// Feeds `body` in chunks of the given sizes (the last size repeats), draining the events
/// after every push, and checks the event order on the way.
fn read_chunked(
    body: &[u8],
    http_content_type: Option<&str>,
    limits: Limits,
    sizes: &[usize],
) -> Result<Collected, ProtocolError> {
    let mut reader = MessageReader::new(http_content_type, limits)?;
    let mut label = None;
    let mut parts: Vec<(PartHeaders, Vec<u8>)> = Vec::new();
    let mut in_part = false;
    let mut rest = body;
    let mut sizes = sizes.iter().copied();
    let mut size = 1;
    let mut finished = false;
    loop {
        loop {
            match reader.next_event()? {
                Event::NeedMore => {
                    assert!(!finished, "NeedMore after finish");
                    break;
                }
                Event::End => {
                    assert!(!in_part, "End inside a part");
                    assert_eq!(reader.next_event(), Ok(Event::End));
                    let (label_headers, label) = label.expect("End before the label");
                    let split = SplitMessage {
                        message_headers: reader.message_headers().cloned(),
                        label_headers,
                        label,
                        parts,
                    };
                    let boundary = reader.boundary().expect("boundary").to_vec();
                    return Ok(Collected { split, boundary });
                }
                Event::Label { headers, body } => {
                    assert!(label.is_none() && parts.is_empty(), "label not first");
                    label = Some((headers, body));
                }
                Event::PartStart { index, headers } => {
                    assert!(label.is_some() && !in_part);
                    assert_eq!(index, parts.len());
                    parts.push((headers, Vec::new()));
                    in_part = true;
                }
                Event::PartData(data) => {
                    assert!(in_part && !data.is_empty());
                    parts.last_mut().expect("part").1.extend_from_slice(data);
                }
                Event::PartEnd => {
                    assert!(in_part);
                    in_part = false;
                }
            }
        }
        if rest.is_empty() {
            reader.finish();
            finished = true;
            continue;
        }
        size = sizes.next().unwrap_or(size).max(1);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        reader.push(chunk);
        rest = tail;
    }
}

fn read_whole(body: &[u8], http_content_type: Option<&str>) -> Result<Collected, ProtocolError> {
    read_chunked(body, http_content_type, Limits::default(), &[usize::MAX])
}

/// Reads `body` whole, one byte at a time, split in two at every point, and in a few
/// irregular chunk sizes; all must give the same result.
fn read_every_way(
    body: &[u8],
    http_content_type: Option<&str>,
) -> Result<Collected, ProtocolError> {
    let whole = read_whole(body, http_content_type);
    let one = read_chunked(body, http_content_type, Limits::default(), &[1]);
    assert_eq!(one, whole, "byte by byte");
    for cut in 0..=body.len() {
        let two = read_chunked(
            body,
            http_content_type,
            Limits::default(),
            &[cut, usize::MAX],
        );
        assert_eq!(two, whole, "split at {cut}");
    }
    for sizes in [&[3, 7, 1, 64, 2][..], &[13, 1, 1, 5], &[100, 31]] {
        let chunked = read_chunked(body, http_content_type, Limits::default(), sizes);
        assert_eq!(chunked, whole, "chunks {sizes:?}");
    }
    whole
}

/// A message in the given line end: label part then data parts `(header lines, bytes)`.
fn build(
    boundary: &str,
    eol: &str,
    label_headers: &[&str],
    parts: &[(&[&str], &[u8])],
    close: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut part = |first: bool, headers: &[&str], data: &[u8]| {
        if !first {
            out.extend_from_slice(eol.as_bytes());
        }
        out.extend_from_slice(format!("--{boundary}{eol}").as_bytes());
        for line in headers {
            out.extend_from_slice(format!("{line}{eol}").as_bytes());
        }
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(data);
    };
    part(true, label_headers, LABEL);
    for (headers, data) in parts {
        part(false, headers, data);
    }
    if close {
        out.extend_from_slice(format!("{eol}--{boundary}--{eol}").as_bytes());
    }
    out
}

fn simple(eol: &str, parts: &[(&[&str], &[u8])]) -> Vec<u8> {
    build("b0undary", eol, &["Content-Type: text/xml"], parts, true)
}

const BARE: Option<&str> = Some("multipart/mixed; boundary=b0undary");

fn mime_error(result: Result<Collected, ProtocolError>) -> String {
    match result {
        Err(ProtocolError::Mime(reason)) => reason,
        other => panic!("expected a MIME error, got {other:?}"),
    }
}

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

fn decoded(headers: &PartHeaders, raw: &[u8]) -> Vec<u8> {
    let mut decoder = TransferDecoder::new(headers.transfer_encoding().expect("encoding"));
    let mut out = Vec::new();
    for chunk in raw.chunks(7) {
        decoder.decode(chunk, &mut out).expect("decode");
    }
    decoder.finish(&mut out).expect("finish");
    out
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

#[test]
fn both_body_forms_and_both_line_ends() {
    let parts: &[(&[&str], &[u8])] = &[
        (&["Content-Type: text/plain"], b"first\r\nline"),
        (
            &["Content-Type: application/octet-stream"],
            b"\x00\xff\n--b0undar",
        ),
    ];
    for eol in ["\r\n", "\n"] {
        let bare = simple(eol, parts);
        let read = read_every_way(&bare, BARE).unwrap();
        assert_eq!(read.split.label, LABEL);
        assert_eq!(read.split.parts.len(), 2);
        assert_eq!(read.split.parts[0].1, b"first\r\nline");
        assert_eq!(read.split.parts[1].1, b"\x00\xff\n--b0undar");
        assert_eq!(read.split.message_headers, None);

        let head = format!(
            "MIME-Version: 1.0{eol}Content-Type: multipart/mixed;{eol}\tboundary=\"b0undary\"{eol}Subject: x{eol}{eol}"
        );
        let mut rfc822 = head.into_bytes();
        rfc822.extend_from_slice(&bare);
        for content_type in [None, Some("message/rfc822"), Some("Multipart/Mixed")] {
            let form2 = read_every_way(&rfc822, content_type).unwrap();
            assert_eq!(form2.split.parts, read.split.parts);
            assert_eq!(form2.split.label, LABEL);
            let headers = form2.split.message_headers.expect("message headers");
            assert_eq!(headers.get("subject"), Some(&b"x"[..]));
        }
    }
}

#[test]
fn preamble_padding_epilogue_and_false_delimiters() {
    let mut body = b"This is a preamble.\r\n--b0undaryX not a boundary\r\n".to_vec();
    body.extend_from_slice(b"--b0undary \t\r\nContent-Type: text/xml\r\n\r\n<l/>");
    body.extend_from_slice(
        b"\r\n--b0undary\t\r\nX: 1\r\n\r\nline\r\n--b0undary-x\r\n--b0undaryy\n",
    );
    body.extend_from_slice(b"\r\n--b0undary--  trailing\r\nepilogue\r\n--b0undary\r\n");
    let read = read_every_way(&body, BARE).unwrap();
    assert_eq!(read.split.label, b"<l/>");
    assert_eq!(read.split.parts.len(), 1);
    assert_eq!(
        read.split.parts[0].1,
        b"line\r\n--b0undary-x\r\n--b0undaryy\n"
    );
}

#[test]
fn empty_parts_and_label_only_messages() {
    for eol in ["\r\n", "\n"] {
        // The blank line after the headers is also the delimiter's line break.
        let shared = format!(
            "--b0undary{eol}Content-Type: text/xml{eol}{eol}<l/>{eol}--b0undary{eol}A: 1{eol}{eol}--b0undary--"
        );
        let read = read_every_way(shared.as_bytes(), BARE).unwrap();
        assert_eq!(read.split.parts.len(), 1);
        assert_eq!(read.split.parts[0].1, b"");
        // A body of just a line break, and no header block at all.
        let with_break = format!(
            "--b0undary{eol}Content-Type: text/xml{eol}{eol}<l/>{eol}--b0undary{eol}{eol}{eol}{eol}--b0undary--{eol}"
        );
        let read = read_every_way(with_break.as_bytes(), BARE).unwrap();
        assert_eq!(read.split.parts[0].1, eol.as_bytes());
        assert_eq!(read.split.parts[0].0.raw(), b"");
        // Label only: SHS 1.2 labels may have no data element.
        let label_only = simple(eol, &[]);
        let read = read_every_way(&label_only, BARE).unwrap();
        assert!(read.split.parts.is_empty());
        assert_eq!(read.split.label, LABEL);
    }
}

#[test]
fn every_transfer_encoding_decodes() {
    let text = "Räksmörgås = gott\r\nline two with trailing blank \r\n".repeat(20);
    let b64 = STANDARD.encode(text.as_bytes());
    let b64_lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    let b64_body = b64_lines.join("\r\n");
    let mut qp = Vec::new();
    for line in text.split_inclusive("\r\n") {
        let line = line
            .replace('=', "=3D")
            .replace("ä", "=C3=A4")
            .replace("ö", "=C3=B6")
            .replace("å", "=C3=A5");
        let line = line.replace(" \r\n", "=20\r\n");
        for (n, piece) in line.as_bytes().chunks(40).enumerate() {
            if n > 0 {
                qp.extend_from_slice(b"=\n");
            }
            qp.extend_from_slice(piece);
        }
    }
    let parts: &[(&[&str], &[u8])] = &[
        (&["Content-Transfer-Encoding: base64"], b64_body.as_bytes()),
        (&["Content-Transfer-Encoding: quoted-printable"], &qp),
        (&["Content-Transfer-Encoding: 8bit"], text.as_bytes()),
        (&["Content-Transfer-Encoding: binary"], text.as_bytes()),
        (&["Content-Transfer-Encoding: 7bit"], b"plain ascii"),
        (&[], b"plain ascii"),
    ];
    let read = read_whole(&simple("\r\n", parts), BARE).unwrap();
    let contents: Vec<Vec<u8>> = read
        .split
        .parts
        .iter()
        .map(|(h, raw)| decoded(h, raw))
        .collect();
    for content in &contents[..4] {
        assert_eq!(content, text.as_bytes());
    }
    assert_eq!(contents[4], b"plain ascii");
    assert_eq!(contents[5], b"plain ascii");
}

#[test]
fn encoded_label_is_decoded_and_written_back_encoded() {
    let encoded = STANDARD.encode(LABEL);
    let body = build(
        "b0undary",
        "\r\n",
        &[
            "Content-Type: application/shs+xml",
            "Content-Transfer-Encoding: base64",
        ],
        &[],
        true,
    );
    let body = String::from_utf8(body)
        .unwrap()
        .replace(std::str::from_utf8(LABEL).unwrap(), &encoded);
    let read = read_whole(body.as_bytes(), BARE).unwrap();
    assert_eq!(read.split.label, LABEL);
    let writer = MessageWriter::new(read.boundary);
    let mut out = writer.label_part(&read.split.label_headers, &read.split.label);
    out.extend(writer.end());
    assert_eq!(
        read_whole(&out, Some(&writer.content_type()))
            .unwrap()
            .split
            .label,
        LABEL
    );
}

#[test]
fn file_names_through_the_reader() {
    let parts: &[(&[&str], &[u8])] = &[
        (
            &[
                "Content-Disposition: attachment;",
                " filename*0*=UTF-8''r%C3%A4k;",
                " filename*1*=sm%C3%B6rg%C3%A5s.txt",
            ],
            b"1",
        ),
        (
            &[
                "Content-Disposition: attachment; filename=\"=?ISO-8859-1?Q?r=E4ksm=F6rg=E5s.txt?=\"",
            ],
            b"2",
        ),
        (
            &["Content-Type: text/plain; name==?UTF-8?B?csOka3Ntw7ZyZ8Olcy50eHQ=?="],
            b"3",
        ),
        (
            &["Content-Type: text/plain; charset=iso-8859-1; name=r\u{e4}ksm\u{f6}rg\u{e5}s.txt"],
            b"4",
        ),
    ];
    let read = read_whole(&simple("\n", parts), BARE).unwrap();
    for (headers, _) in &read.split.parts {
        assert_eq!(headers.filename().as_deref(), Some("räksmörgås.txt"));
    }
}

#[test]
fn limits_are_enforced() {
    let big_label = build("b0undary", "\r\n", &["Content-Type: text/xml"], &[], true);
    let limits = Limits {
        max_label_bytes: LABEL.len(),
        ..Limits::default()
    };
    assert!(read_chunked(&big_label, BARE, limits, &[5]).is_ok());
    let limits = Limits {
        max_label_bytes: LABEL.len() - 1,
        ..Limits::default()
    };
    for sizes in [&[5][..], &[usize::MAX]] {
        let err = read_chunked(&big_label, BARE, limits, sizes).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::TooLarge {
                what: "label",
                limit: LABEL.len() as u64 - 1
            }
        );
    }

    let long_header = format!("X-Long: {}", "a".repeat(200));
    let parts: &[(&[&str], &[u8])] = &[(&[long_header.as_str()], b"x")];
    let body = simple("\r\n", parts);
    let fits = Limits {
        max_header_bytes: long_header.len() + 2,
        ..Limits::default()
    };
    assert!(read_chunked(&body, BARE, fits, &[3]).is_ok());
    let small = Limits {
        max_header_bytes: long_header.len() + 1,
        ..Limits::default()
    };
    for sizes in [&[3][..], &[usize::MAX]] {
        let err = read_chunked(&body, BARE, small, sizes).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::TooLarge {
                    what: "part header",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // An endless header block is refused once it passes the limit, not at the end.
    let mut reader = MessageReader::new(
        None,
        Limits {
            max_header_bytes: 100,
            ..Limits::default()
        },
    )
    .unwrap();
    reader.push(&[b'a'; 103]);
    assert!(matches!(
        reader.next_event(),
        Err(ProtocolError::TooLarge {
            what: "message header",
            ..
        })
    ));

    let one: &[(&[&str], &[u8])] = &[(&[], b"1")];
    let three: &[(&[&str], &[u8])] = &[(&[], b"1"), (&[], b"2"), (&[], b"3")];
    let limits = Limits {
        max_parts: 3,
        ..Limits::default()
    };
    assert_eq!(
        read_chunked(&simple("\n", three), BARE, limits, &[2])
            .unwrap()
            .split
            .parts
            .len(),
        3
    );
    let limits = Limits {
        max_parts: 2,
        ..Limits::default()
    };
    assert_eq!(
        mime_error(read_chunked(&simple("\n", three), BARE, limits, &[2])),
        "more than 2 data parts"
    );
    let limits = Limits {
        max_parts: 0,
        ..Limits::default()
    };
    assert!(read_chunked(&simple("\n", &[]), BARE, limits, &[2]).is_ok());
    assert!(read_chunked(&simple("\n", one), BARE, limits, &[2]).is_err());
}

#[test]
fn structural_errors() {
    let ok: &[(&[&str], &[u8])] = &[(&["Content-Type: text/plain"], b"data")];
    let whole = simple("\r\n", ok);
    let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (
            whole[..whole.len() - 8].to_vec(),
            BARE,
            "input ended inside data part 1 (no closing boundary)",
        ),
        (
            build("b0undary", "\n", &["Content-Type: text/xml"], ok, false),
            BARE,
            "input ended inside data part 1 (no closing boundary)",
        ),
        (
            build("b0undary", "\n", &["Content-Type: text/plain"], ok, true),
            BARE,
            "the first part is text/plain, not the XML label",
        ),
        (
            build("b0undary", "\n", &["X-Other: 1"], ok, true),
            BARE,
            "the first part has no valid Content-Type; the label must be text/xml",
        ),
        (
            build(
                "b0undary",
                "\n",
                &[
                    "Content-Type: text/xml",
                    "Content-Transfer-Encoding: uuencode",
                ],
                ok,
                true,
            ),
            BARE,
            "unknown Content-Transfer-Encoding \"uuencode\"",
        ),
        (
            build(
                "b0undary",
                "\n",
                &["Content-Type: text/xml"],
                &[(&["Content-Transfer-Encoding: x-gzip"], b"")],
                true,
            ),
            BARE,
            "unknown Content-Transfer-Encoding \"x-gzip\"",
        ),
        (
            build(
                "b0undary",
                "\n",
                &["Content-Type: text/xml"],
                &[(&["not a header"], b"")],
                true,
            ),
            BARE,
            "header line without a colon",
        ),
        (
            b"preamble\r\n--b0undary--\r\n".to_vec(),
            BARE,
            "the message has no parts",
        ),
        (b"--b0undary--".to_vec(), BARE, "the message has no parts"),
        (
            b"no boundary here\r\n".to_vec(),
            BARE,
            "input ended before the first boundary",
        ),
        (b"".to_vec(), BARE, "input ended before the first boundary"),
        (
            b"--b0undary junk\r\n".to_vec(),
            BARE,
            "unexpected text after a boundary",
        ),
        (
            b"--b0undary\r\nContent-Type: text/xml\r\n".to_vec(),
            BARE,
            "input ended inside the label's header block",
        ),
        (
            b"--b0undary   ".to_vec(),
            BARE,
            "input ended inside a boundary line",
        ),
        (
            b"".to_vec(),
            None,
            "input ended inside the message header block",
        ),
        (
            b"Content-Type: text/plain\r\n\r\nhello".to_vec(),
            None,
            "the message is text/plain, not multipart",
        ),
        (
            b"Content-Type: multipart/mixed\r\n\r\n--x".to_vec(),
            None,
            "multipart Content-Type without a boundary",
        ),
        (
            b"Subject: x\r\n\r\n".to_vec(),
            Some("message/rfc822"),
            "the message header block has no valid Content-Type",
        ),
        (
            b"\r\n--b0undary\r\n".to_vec(),
            None,
            "the message header block has no valid Content-Type",
        ),
        (
            b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n".to_vec(),
            None,
            "boundary must be 1 to 256 characters",
        ),
    ];
    for (body, content_type, reason) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let whole = read_whole(&body, content_type);
        assert_eq!(mime_error(whole), reason, "{shown:?}");
        let bytewise = read_chunked(&body, content_type, Limits::default(), &[1]);
        assert_eq!(mime_error(bytewise), reason, "{shown:?} byte by byte");
    }
    let padding = format!("--b0undary{}\r\n", " ".repeat(2000));
    assert_eq!(
        mime_error(read_whole(padding.as_bytes(), BARE)),
        "too much padding after a boundary"
    );
    assert!(
        MessageReader::new(
            Some("multipart/mixed; boundary=\"a\u{e5}\""),
            Limits::default()
        )
        .is_err()
    );
    assert!(MessageReader::new(Some("nonsense"), Limits::default()).is_err());
    let long = format!("multipart/mixed; boundary={}", "b".repeat(257));
    assert!(MessageReader::new(Some(&long), Limits::default()).is_err());
}

#[test]
fn errors_are_final_and_input_after_the_end_is_ignored() {
    let mut reader = MessageReader::new(BARE, Limits::default()).unwrap();
    reader.push(b"--b0undary junk\r\n");
    let err = reader.next_event().unwrap_err();
    assert_eq!(reader.next_event(), Err(err.clone()));
    reader.push(b"more");
    assert_eq!(reader.next_event(), Err(err));

    let mut reader = MessageReader::new(BARE, Limits::default()).unwrap();
    reader.push(&simple("\r\n", &[]));
    assert!(matches!(reader.next_event(), Ok(Event::Label { .. })));
    assert_eq!(reader.next_event(), Ok(Event::End));
    reader.push(b"--b0undary\r\n");
    assert_eq!(reader.next_event(), Ok(Event::End));
    assert_eq!(reader.buffered(), 0);
}

#[test]
fn memory_stays_bounded_by_one_chunk() {
    const CHUNK: usize = 64 << 10;
    let part: Vec<u8> = (0..(4 << 20))
        .map(|i: u32| (i % 251) as u8 | 0x0d)
        .collect();
    let parts: &[(&[&str], &[u8])] = &[(&["Content-Type: application/octet-stream"], &part)];
    let body = simple("\r\n", parts);
    let mut reader = MessageReader::new(BARE, Limits::default()).unwrap();
    let mut total = 0;
    let mut most = 0;
    for chunk in body.chunks(CHUNK) {
        reader.push(chunk);
        most = most.max(reader.buffered());
        loop {
            match reader.next_event().unwrap() {
                Event::PartData(data) => total += data.len(),
                Event::NeedMore => break,
                Event::End => break,
                _ => {}
            }
        }
    }
    reader.finish();
    assert_eq!(reader.next_event(), Ok(Event::End));
    assert_eq!(total, part.len());
    assert!(
        most <= CHUNK + "\n--b0undary".len(),
        "buffer grew to {most}"
    );
}

/// Release-mode split throughput on random binary, base64-like text lines, and
/// adversarial data where every line starts like the delimiter:
/// `cargo test --release --lib protocol::mime::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    const SIZE: usize = 256 << 20;
    let random: Vec<u8> = (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let text: Vec<u8> =
        b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
            .iter()
            .copied()
            .cycle()
            .take(SIZE)
            .collect();
    let adversarial: Vec<u8> = b"\r\n--b0undaryX and more text on the line\r\n--b0und"
        .iter()
        .copied()
        .cycle()
        .take(SIZE)
        .collect();
    for (kind, part) in [
        ("random", &random),
        ("text", &text),
        ("adversarial", &adversarial),
    ] {
        let parts: &[(&[&str], &[u8])] = &[(&["Content-Type: application/octet-stream"], part)];
        let body = simple("\r\n", parts);
        for chunk_size in [16 << 10, 64 << 10, 1 << 20] {
            let start = std::time::Instant::now();
            let mut reader = MessageReader::new(BARE, Limits::default()).unwrap();
            let mut total = 0;
            for chunk in body.chunks(chunk_size) {
                reader.push(chunk);
                loop {
                    match reader.next_event().unwrap() {
                        Event::PartData(data) => total += data.len(),
                        Event::NeedMore | Event::End => break,
                        _ => {}
                    }
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            assert_eq!(total, part.len());
            println!(
                "{kind:>11}, chunks of {chunk_size:>7} B: {:6.2} GB/s ({} MiB in {seconds:.3} s)",
                body.len() as f64 / seconds / 1e9,
                body.len() >> 20
            );
        }
    }
}
