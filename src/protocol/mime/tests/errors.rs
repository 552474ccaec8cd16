//! Limits, broken structure, the finality of errors, the memory bound, and throughput.

use super::*;
use crate::protocol::mime::*;

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
    // Its Debug output is a summary, never the buffered bytes.
    let shown = format!("{reader:?}");
    assert!(shown.contains("closed") && shown.len() < 200, "{shown}");
    assert!(
        most <= CHUNK + "\n--b0undary".len(),
        "buffer grew to {most}"
    );
}

/// Release-mode split throughput on random binary, base64-like text lines, and
/// adversarial data where every line starts like the delimiter:
/// `cargo test --release --lib protocol::mime::tests::errors::throughput -- --ignored --nocapture`.
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
