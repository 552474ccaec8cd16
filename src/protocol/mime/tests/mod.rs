//! Tests across the module: the reference messages, both body forms, line ends, chunked
//! feeding at every split point, limits and error cases, writer/reader round trips, and
//! property tests. This file holds the shared helpers.

mod errors;
mod proptests;
mod reference;
mod structure;

use super::*;

pub(super) const LABEL: &[u8] = b"<?xml version=\"1.0\"?>\n<shs.label version=\"1.2\"/>";

/// What a reader produced, collected; the same shape whatever the chunking.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Collected {
    pub(super) split: SplitMessage,
    pub(super) boundary: Vec<u8>,
}

/// Feeds `body` in chunks of the given sizes (the last size repeats), draining the events
/// after every push, and checks the event order on the way.
pub(super) fn read_chunked(
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

pub(super) fn read_whole(
    body: &[u8],
    http_content_type: Option<&str>,
) -> Result<Collected, ProtocolError> {
    read_chunked(body, http_content_type, Limits::default(), &[usize::MAX])
}

/// Reads `body` whole, one byte at a time, split in two at every point, and in a few
/// irregular chunk sizes; all must give the same result.
pub(super) fn read_every_way(
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
pub(super) fn build(
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

pub(super) fn simple(eol: &str, parts: &[(&[&str], &[u8])]) -> Vec<u8> {
    build("b0undary", eol, &["Content-Type: text/xml"], parts, true)
}

pub(super) const BARE: Option<&str> = Some("multipart/mixed; boundary=b0undary");

pub(super) fn mime_error(result: Result<Collected, ProtocolError>) -> String {
    match result {
        Err(ProtocolError::Mime(reason)) => reason,
        other => panic!("expected a MIME error, got {other:?}"),
    }
}

/// The content of a part: its raw bytes through a [`TransferDecoder`] in small chunks.
pub(super) fn decoded(headers: &PartHeaders, raw: &[u8]) -> Vec<u8> {
    let mut decoder = TransferDecoder::new(headers.transfer_encoding().expect("encoding"));
    let mut out = Vec::new();
    for chunk in raw.chunks(7) {
        decoder.decode(chunk, &mut out).expect("decode");
    }
    decoder.finish(&mut out).expect("finish");
    out
}
