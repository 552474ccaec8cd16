//! Writing SHS messages: the pieces of a multipart/mixed body as chunks the caller sends,
//! so that stored data parts stream from the store to the socket without being assembled.
//!
//! Layout written (CRLF): `[message head] --b CRLF label-headers CRLF label
//! (CRLF --b CRLF part-headers CRLF part-bytes)* CRLF --b-- CRLF`. The CRLF before each
//! delimiter belongs to the delimiter, so part bytes come out exactly as given.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::headers::{PartHeaders, TransferEncoding};

/// Writes the framing of one multipart message with a fixed boundary. Stateless: the label
/// is always first, so each piece knows its own delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageWriter {
    boundary: Vec<u8>,
}

/// A fresh boundary for a message shsd writes: `shsd-` and a random UUID, so that it does
/// not occur in any part (2^122 possibilities), and token characters only, so that it needs
/// no quoting in a header.
pub fn new_boundary() -> Vec<u8> {
    format!("shsd-{}", uuid::Uuid::new_v4().simple()).into_bytes()
}

impl MessageWriter {
    /// A writer for `boundary` (without the leading `--`). Re-emitting a stored message
    /// with its original boundary reproduces it; for new messages use [`new_boundary`].
    pub fn new(boundary: Vec<u8>) -> Self {
        MessageWriter { boundary }
    }

    /// The boundary in use.
    pub fn boundary(&self) -> &[u8] {
        &self.boundary
    }

    /// `multipart/mixed; boundary="…"`: the Content-Type for the HTTP header when the body
    /// is sent in the bare form (without [`MessageWriter::message_head`]).
    pub fn content_type(&self) -> String {
        let boundary = String::from_utf8_lossy(&self.boundary);
        let escaped = boundary.replace('\\', "\\\\").replace('"', "\\\"");
        format!("multipart/mixed; boundary=\"{escaped}\"")
    }

    /// `MIME-Version` and `Content-Type` and the blank line: the start of a `message/rfc822`
    /// body (the form SHS nodes answer fetches with).
    pub fn message_head(&self) -> Vec<u8> {
        let content_type = self.content_type();
        let mut out = Vec::with_capacity(40 + content_type.len());
        out.extend_from_slice(b"MIME-Version: 1.0\r\nContent-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out
    }

    /// The first delimiter, the label's header block and the label. The label XML is written
    /// in the transfer encoding its headers name (normally `binary` or `8bit`: as it is), so
    /// that a label read with [`super::MessageReader`] can be written with its own headers.
    pub fn label_part(&self, headers: &PartHeaders, label_xml: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.boundary.len() + headers.raw().len() + label_xml.len() + 16);
        out.extend_from_slice(b"--");
        out.extend_from_slice(&self.boundary);
        out.extend_from_slice(b"\r\n");
        push_header_block(&mut out, headers);
        match headers.transfer_encoding() {
            Ok(TransferEncoding::Base64) => encode_base64(label_xml, &mut out),
            Ok(TransferEncoding::QuotedPrintable) => encode_quoted_printable(label_xml, &mut out),
            _ => out.extend_from_slice(label_xml),
        }
        out
    }

    /// The delimiter before a data part, its raw header block and the blank line. The caller
    /// then sends the part's raw bytes unchanged.
    pub fn part_head(&self, headers: &PartHeaders) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.boundary.len() + headers.raw().len() + 10);
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(&self.boundary);
        out.extend_from_slice(b"\r\n");
        push_header_block(&mut out, headers);
        out
    }

    /// The close delimiter, after the last part.
    pub fn end(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.boundary.len() + 8);
        out.extend_from_slice(b"\r\n--");
        out.extend_from_slice(&self.boundary);
        out.extend_from_slice(b"--\r\n");
        out
    }
}

/// The raw header block (line-ended even if it was given without a final line break) and
/// the blank line.
fn push_header_block(out: &mut Vec<u8>, headers: &PartHeaders) {
    let raw = headers.raw();
    out.extend_from_slice(raw);
    if !raw.is_empty() && !raw.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Base64 in CRLF-separated lines of 76 characters (RFC 2045 §6.8).
fn encode_base64(data: &[u8], out: &mut Vec<u8>) {
    for (n, line) in data.chunks(57).enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(STANDARD.encode(line).as_bytes());
    }
}

/// Quoted-printable (RFC 2045 §6.7) that keeps the text's own line breaks, CRLF or LF, as
/// hard breaks, and wraps lines at 76 characters with soft breaks.
fn encode_quoted_printable(data: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut line = 0;
    let mut i = 0;
    while let Some(&b) = data.get(i) {
        let next = data.get(i + 1).copied();
        if b == b'\n' || (b == b'\r' && next == Some(b'\n')) {
            let width = if b == b'\r' { 2 } else { 1 };
            out.extend_from_slice(data.get(i..i + width).unwrap_or_default());
            line = 0;
            i += width;
            continue;
        }
        let line_end_follows = matches!(next, None | Some(b'\r' | b'\n'));
        let literal = match b {
            b' ' | b'\t' => !line_end_follows,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if line + width > 75 {
            out.extend_from_slice(b"=\r\n");
            line = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.push(b'=');
            out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
            out.push(HEX.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0'));
        }
        line += width;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mime::TransferDecoder;

    fn decode(encoding: TransferEncoding, data: &[u8]) -> Vec<u8> {
        let mut decoder = TransferDecoder::new(encoding);
        let mut out = Vec::new();
        decoder.decode(data, &mut out).unwrap();
        decoder.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn framing_pieces() {
        let writer = MessageWriter::new(b"b1".to_vec());
        assert_eq!(
            writer.message_head(),
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        );
        let label = PartHeaders::parse(b"Content-Type: text/xml").unwrap();
        assert_eq!(
            writer.label_part(&label, b"<x/>"),
            b"--b1\r\nContent-Type: text/xml\r\n\r\n<x/>"
        );
        let part = PartHeaders::parse(b"A: 1\n").unwrap();
        assert_eq!(writer.part_head(&part), b"\r\n--b1\r\nA: 1\n\r\n");
        assert_eq!(
            writer.part_head(&PartHeaders::default()),
            b"\r\n--b1\r\n\r\n"
        );
        assert_eq!(writer.end(), b"\r\n--b1--\r\n");
    }

    #[test]
    fn new_boundaries_differ_and_are_tokens() {
        let (a, b) = (new_boundary(), new_boundary());
        assert_ne!(a, b);
        assert_eq!(a.len(), 37);
        assert!(a.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'));
    }

    #[test]
    fn encoded_labels_round_trip() {
        let xml = "<?xml version=\"1.0\"?>\r\n<shs.label subject=\"räksmörgås = gott\">  \n\t<x/>\r\n</shs.label>\n".repeat(5);
        let xml = xml.as_bytes();
        for encoding in [TransferEncoding::Base64, TransferEncoding::QuotedPrintable] {
            let mut out = Vec::new();
            match encoding {
                TransferEncoding::Base64 => encode_base64(xml, &mut out),
                _ => encode_quoted_printable(xml, &mut out),
            }
            assert!(
                out.split(|&b| b == b'\n').all(|line| line.len() <= 77),
                "{encoding:?}"
            );
            assert_eq!(decode(encoding, &out), xml, "{encoding:?}");
        }
        let mut binary = Vec::new();
        encode_quoted_printable(&[0, 255, b'\r', b' ', b'=', b'\t'], &mut binary);
        assert_eq!(binary, b"=00=FF=0D =3D=09");
        assert_eq!(
            decode(TransferEncoding::QuotedPrintable, &binary),
            [0, 255, b'\r', b' ', b'=', b'\t']
        );
    }
}
