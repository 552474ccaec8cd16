//! The MIME layer through its public API only, as the broker uses it: a message written with
//! `MessageWriter` around stored raw parts, streamed through `MessageReader` in random chunks,
//! gives back every part byte for byte, and its base64 parts decode to the original content.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::collection::vec;
use proptest::prelude::*;
use shsd::protocol::mime::{
    Event, Limits, MessageReader, MessageWriter, PartHeaders, TransferDecoder, new_boundary,
};

/// Part contents that look like delimiters of an unrelated message, to be carried through.
fn content() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => vec(any::<u8>(), 0..64),
        1 => Just(b"\r\n--".to_vec()),
        1 => Just(b"\n--shsd-".to_vec()),
        1 => Just(b"\r\n--other-boundary--\r\n".to_vec()),
    ];
    vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn streamed_round_trip(
        contents in vec(content(), 0..6),
        chunks in vec(1..300usize, 1..16),
        rfc822 in any::<bool>(),
    ) {
        let writer = MessageWriter::new(new_boundary());
        let label_headers = PartHeaders::from_fields(&[("Content-Type", "text/xml; charset=UTF-8")]);
        let label = b"<?xml version=\"1.0\"?><shs.label/>";
        let mut stored = Vec::new();
        let mut body = if rfc822 { writer.message_head() } else { Vec::new() };
        body.extend(writer.label_part(&label_headers, label));
        for (index, content) in contents.iter().enumerate() {
            // Odd parts go base64, as a sender would write them; even parts binary.
            let (encoding, raw) = if index % 2 == 1 {
                ("base64", STANDARD.encode(content).into_bytes())
            } else {
                ("binary", content.clone())
            };
            let headers = PartHeaders::from_fields(&[
                ("Content-Type", "application/octet-stream"),
                ("Content-Transfer-Encoding", encoding),
            ]);
            body.extend(writer.part_head(&headers));
            body.extend_from_slice(&raw);
            stored.push(raw);
        }
        body.extend(writer.end());

        let content_type = (!rfc822).then(|| writer.content_type());
        let mut reader = MessageReader::new(content_type.as_deref(), Limits::default()).unwrap();
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut decoded: Vec<Vec<u8>> = Vec::new();
        let mut decoder = None;
        let mut got_label = None;
        let mut rest = &body[..];
        let mut sizes = chunks.iter().cycle();
        'read: loop {
            loop {
                match reader.next_event().unwrap() {
                    Event::Label { body, .. } => got_label = Some(body),
                    Event::PartStart { headers, .. } => {
                        parts.push(Vec::new());
                        decoded.push(Vec::new());
                        decoder = Some(TransferDecoder::new(headers.transfer_encoding().unwrap()));
                    }
                    Event::PartData(data) => {
                        parts.last_mut().unwrap().extend_from_slice(data);
                        let out = decoded.last_mut().unwrap();
                        decoder.as_mut().unwrap().decode(data, out).unwrap();
                    }
                    Event::PartEnd => {
                        decoder.take().unwrap().finish(decoded.last_mut().unwrap()).unwrap();
                    }
                    Event::End => break 'read,
                    Event::NeedMore => break,
                }
            }
            if rest.is_empty() {
                reader.finish();
            } else {
                let n = (*sizes.next().unwrap()).min(rest.len());
                reader.push(&rest[..n]);
                rest = &rest[n..];
            }
        }
        prop_assert_eq!(got_label.as_deref(), Some(&label[..]));
        prop_assert_eq!(&parts, &stored);
        prop_assert_eq!(&decoded, &contents);
        prop_assert_eq!(reader.boundary(), Some(writer.boundary()));
    }
}
