//! Body forms, line ends, preamble and epilogue, empty parts, transfer encodings and file
//! names through the reader.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::protocol::mime::*;

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
