//! Property tests: generated messages (random boundary, binary parts full of near-delimiters,
//! CRLF or LF, both body forms) written and read back in random chunk sizes; and damaged
//! messages, which must give the same result however they are chunked.

use memchr::memmem;
use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::protocol::mime::*;

/// RFC 2046 boundary characters (no space, so none at the end either).
fn boundary() -> impl Strategy<Value = Vec<u8>> {
    "[0-9A-Za-z'()+_,./:=?-]{1,70}".prop_map(String::into_bytes)
}

/// Part bytes built from pieces that stress the delimiter search.
fn part_bytes(boundary: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let b = boundary;
    let piece = prop_oneof![
        4 => vec(any::<u8>(), 0..40),
        1 => Just(b"\r\n".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"--".to_vec()),
        2 => {
            let b = b.clone();
            (0..=b.len()).prop_map(move |k| [&b"\r\n--"[..], b.get(..k).unwrap_or_default()].concat())
        },
        1 => Just([&b"\n--"[..], &b, b"X"].concat()),
        1 => Just([&b"--"[..], &b].concat()),
    ];
    vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// A generated message: boundary, label, data parts, line end, body form, chunk sizes.
#[derive(Debug, Clone)]
struct Generated {
    boundary: Vec<u8>,
    label: Vec<u8>,
    parts: Vec<Vec<u8>>,
    crlf: bool,
    rfc822: bool,
    chunks: Vec<usize>,
}

fn generated() -> impl Strategy<Value = Generated> {
    boundary().prop_flat_map(|b| {
        (
            Just(b.clone()),
            part_bytes(b.clone()),
            vec(part_bytes(b), 0..5),
            any::<bool>(),
            any::<bool>(),
            vec(1..200usize, 1..20),
        )
            .prop_map(|(boundary, label, parts, crlf, rfc822, chunks)| {
                let mut message = Generated {
                    boundary,
                    label,
                    parts,
                    crlf,
                    rfc822,
                    chunks,
                };
                message.sanitize();
                message
            })
    })
}

impl Generated {
    /// Makes every part representable: a `\n--boundary` inside a part that a reader must
    /// take for a delimiter gets an `X` after it, and so does a `--boundary` at the very
    /// start of a part (the blank line's line break before it makes it a delimiter, RFC 2046).
    /// With LF line ends a part cannot end in CR (`CR` + the delimiter's `LF` reads as a
    /// CRLF delimiter).
    fn sanitize(&mut self) {
        let pattern = [&b"\n--"[..], &self.boundary].concat();
        let crlf = self.crlf;
        for data in std::iter::once(&mut self.label).chain(self.parts.iter_mut()) {
            // Search as if the blank line's LF were in front of the part.
            data.insert(0, b'\n');
            let mut from = 0;
            while let Some(i) = memmem::find(data.get(from..).unwrap_or_default(), &pattern) {
                let after = from + i + pattern.len();
                if matches!(
                    data.get(after),
                    None | Some(b'-' | b' ' | b'\t' | b'\r' | b'\n')
                ) {
                    data.insert(after, b'X');
                }
                from += i + 1;
            }
            data.remove(0);
            if !crlf && data.last() == Some(&b'\r') {
                data.push(b'X');
            }
        }
    }

    fn part_headers(&self, index: usize) -> PartHeaders {
        let name = format!("part-{index}.bin");
        let fields = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Transfer-Encoding", "binary"),
            (
                "Content-Disposition",
                &format!("attachment; filename={name}"),
            ),
        ];
        self.headers(&fields)
    }

    fn headers(&self, fields: &[(&str, &str)]) -> PartHeaders {
        let crlf = PartHeaders::from_fields(fields);
        if self.crlf {
            crlf
        } else {
            let lf: Vec<u8> = crlf.raw().iter().copied().filter(|&b| b != b'\r').collect();
            PartHeaders::parse(&lf).expect("headers")
        }
    }

    /// The wire bytes and the HTTP Content-Type: with CRLF written by [`MessageWriter`],
    /// with LF by hand.
    fn write(&self) -> (Vec<u8>, Option<String>) {
        let writer = MessageWriter::new(self.boundary.clone());
        let label_headers = self.headers(&[("Content-Type", "text/xml; charset=UTF-8")]);
        let mut out = Vec::new();
        if self.crlf {
            if self.rfc822 {
                out.extend(writer.message_head());
            }
            out.extend(writer.label_part(&label_headers, &self.label));
            for (index, data) in self.parts.iter().enumerate() {
                out.extend(writer.part_head(&self.part_headers(index)));
                out.extend_from_slice(data);
            }
            out.extend(writer.end());
        } else {
            let b = &self.boundary;
            if self.rfc822 {
                out.extend_from_slice(
                    b"MIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"",
                );
                out.extend_from_slice(b);
                out.extend_from_slice(b"\"\n\n");
            }
            let delimiter = |out: &mut Vec<u8>, headers: &PartHeaders| {
                out.extend_from_slice(b"--");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\n");
                out.extend_from_slice(headers.raw());
                out.extend_from_slice(b"\n");
            };
            delimiter(&mut out, &label_headers);
            out.extend_from_slice(&self.label);
            for (index, data) in self.parts.iter().enumerate() {
                out.push(b'\n');
                delimiter(&mut out, &self.part_headers(index));
                out.extend_from_slice(data);
            }
            out.extend_from_slice(b"\n--");
            out.extend_from_slice(b);
            out.extend_from_slice(b"--\n");
        }
        let content_type = (!self.rfc822).then(|| writer.content_type());
        (out, content_type)
    }
}

proptest! {
    #[test]
    fn written_messages_read_back(message in generated()) {
        let (body, content_type) = message.write();
        let read = read_chunked(&body, content_type.as_deref(), Limits::default(), &message.chunks)
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        prop_assert_eq!(&read.boundary, &message.boundary);
        prop_assert_eq!(&read.split.label, &message.label);
        prop_assert_eq!(read.split.parts.len(), message.parts.len());
        for (index, ((headers, data), expected)) in read.split.parts.iter().zip(&message.parts).enumerate() {
            prop_assert_eq!(data, expected);
            let written = message.part_headers(index);
            prop_assert_eq!(headers.raw(), written.raw());
            prop_assert_eq!(headers.filename(), Some(format!("part-{index}.bin")));
        }
        prop_assert_eq!(read.split.message_headers.is_some(), message.rfc822);
        let whole = split_message(&body, content_type.as_deref(), Limits::default())
            .map_err(|err| TestCaseError::fail(format!("{err}")))?;
        prop_assert_eq!(whole, read.split);
    }

    #[test]
    fn damaged_messages_read_the_same_in_any_chunks(
        message in generated(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
        limit in 20..400usize,
    ) {
        let (mut body, content_type) = message.write();
        for (at, byte, kind) in edits {
            let i = at.index(body.len() + 1);
            match kind {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ => body.truncate(i),
            }
        }
        let limits = Limits { max_label_bytes: limit, max_header_bytes: limit, max_parts: 3 };
        let whole = read_chunked(&body, content_type.as_deref(), limits, &[usize::MAX]);
        let chunked = read_chunked(&body, content_type.as_deref(), limits, &message.chunks);
        prop_assert_eq!(&chunked, &whole);
        let bytewise = read_chunked(&body, content_type.as_deref(), limits, &[1]);
        prop_assert_eq!(&bytewise, &whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        body in vec(any::<u8>(), 0..600),
        content_type in prop::option::of("[ -~]{0,60}"),
        chunks in vec(1..50usize, 1..10),
    ) {
        let whole = read_chunked(&body, content_type.as_deref(), Limits::default(), &[usize::MAX]);
        let chunked = read_chunked(&body, content_type.as_deref(), Limits::default(), &chunks);
        prop_assert_eq!(chunked, whole);
        let headers = PartHeaders::parse(&body);
        if let Ok(headers) = headers {
            let _ = (headers.filename(), headers.content_type(), headers.charset(), headers.transfer_encoding());
        }
        for encoding in [TransferEncoding::Base64, TransferEncoding::QuotedPrintable] {
            let mut decoder = TransferDecoder::new(encoding);
            let mut out = Vec::new();
            let _ = decoder.decode(&body, &mut out).and_then(|()| decoder.finish(&mut out));
        }
    }
}
