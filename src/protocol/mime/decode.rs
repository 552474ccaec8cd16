//! Streaming transfer decoders (RFC 2045 §6): the reader hands out part bytes as received;
//! whoever needs the content (label parsing, signature checks, content validation) runs them
//! through a [`TransferDecoder`] in whatever chunks they arrive.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use memchr::{memchr2, memchr2_iter};

use super::filename::hex_pair;
use super::headers::TransferEncoding;
use crate::protocol::ProtocolError;

/// Base64 for whole quads: padding optional at the end, non-canonical trailing bits allowed
/// (as MIME decoders traditionally are); anything outside the alphabet is an error.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Longest run of blanks (or `=` plus blanks) kept back waiting for a line break in
/// quoted-printable; RFC 2045 lines are at most 76 characters, so a longer run is data.
const MAX_QP_HOLD: usize = 1024;

/// Removes a part's transfer encoding chunk by chunk, with state carried across chunk
/// boundaries (a base64 quad or a `=XX` escape may be split anywhere), so that a part is
/// decoded without ever being held whole.
#[derive(Debug, Clone)]
pub struct TransferDecoder {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Identity,
    Base64 {
        /// Alphabet characters not yet decoded (fewer than four between calls).
        pending: Vec<u8>,
        /// Reused buffer of the characters of one call, without whitespace.
        scratch: Vec<u8>,
        /// A padded quad was decoded: only whitespace may follow.
        padded: bool,
    },
    QuotedPrintable {
        /// The unresolved end of the previous chunk (`=`, `=X`, trailing blanks, a CR).
        carry: Vec<u8>,
    },
}

impl TransferDecoder {
    /// A decoder for one part; `binary`, `7bit` and `8bit` pass bytes through unchanged.
    pub fn new(encoding: TransferEncoding) -> Self {
        let kind = match encoding {
            TransferEncoding::Base64 => Kind::Base64 {
                pending: Vec::new(),
                scratch: Vec::new(),
                padded: false,
            },
            TransferEncoding::QuotedPrintable => Kind::QuotedPrintable { carry: Vec::new() },
            TransferEncoding::Binary | TransferEncoding::SevenBit | TransferEncoding::EightBit => {
                Kind::Identity
            }
        };
        TransferDecoder { kind }
    }

    /// Decodes the next chunk of the part, appending to `out`. Base64 ignores line breaks
    /// and blanks; quoted-printable removes soft line breaks and transport-added trailing
    /// blanks.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match &mut self.kind {
            Kind::Identity => out.extend_from_slice(input),
            Kind::Base64 {
                pending,
                scratch,
                padded,
            } => base64_chunk(input, pending, scratch, padded, out)?,
            Kind::QuotedPrintable { carry } => {
                if carry.is_empty() {
                    let used = qp_decode(input, out, false);
                    carry.extend_from_slice(input.get(used..).unwrap_or_default());
                } else {
                    carry.extend_from_slice(input);
                    let used = qp_decode(carry, out, false);
                    carry.drain(..used.min(carry.len()));
                }
            }
        }
        Ok(())
    }

    /// Ends the part: decodes what was kept back. A base64 part that stops one character
    /// into a quad is truncated and an error; a missing final `=` padding is tolerated.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        match &mut self.kind {
            Kind::Identity => {}
            Kind::Base64 { pending, .. } => {
                let tail = std::mem::take(pending);
                let data = tail.strip_suffix(b"==").or_else(|| tail.strip_suffix(b"="));
                let data = data.unwrap_or(&tail);
                match data.len() {
                    0 => {}
                    1 => return Err(ProtocolError::mime("base64 part ends inside a quad")),
                    _ => BASE64.decode_vec(data, out).map_err(base64_error)?,
                }
            }
            Kind::QuotedPrintable { carry } => {
                let tail = std::mem::take(carry);
                qp_decode(&tail, out, true);
            }
        }
        Ok(())
    }
}

fn base64_error(err: base64::DecodeError) -> ProtocolError {
    ProtocolError::mime(format!("invalid base64 in part body: {err}"))
}

/// Collects the alphabet characters of `input` (skipping CR, LF, blanks) after `pending`,
/// decodes the whole quads and keeps the rest in `pending`.
fn base64_chunk(
    input: &[u8],
    pending: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    padded: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), ProtocolError> {
    scratch.clear();
    scratch.append(pending);
    let mut start = 0;
    for end in memchr2_iter(b'\r', b'\n', input).chain(std::iter::once(input.len())) {
        let line = input.get(start..end).unwrap_or_default();
        if memchr2(b' ', b'\t', line).is_some() {
            scratch.extend(line.iter().filter(|&&b| b != b' ' && b != b'\t'));
        } else {
            scratch.extend_from_slice(line);
        }
        start = end + 1;
    }
    if scratch.is_empty() {
        return Ok(());
    }
    if *padded {
        return Err(ProtocolError::mime("base64 data after the final padding"));
    }
    let whole = scratch.len() / 4 * 4;
    let (quads, rest) = scratch.split_at(whole);
    if !quads.is_empty() {
        BASE64.decode_vec(quads, out).map_err(base64_error)?;
        *padded = quads.ends_with(b"=");
    }
    if *padded && !rest.is_empty() {
        return Err(ProtocolError::mime("base64 data after the final padding"));
    }
    pending.extend_from_slice(rest);
    Ok(())
}

/// Decodes quoted-printable from `data` and returns how much was used; the rest (at most
/// a short unresolved tail, only when `last` is false) must be offered again with more data.
fn qp_decode(data: &[u8], out: &mut Vec<u8>, last: bool) -> usize {
    let mut i = 0;
    while let Some(rest) = data.get(i..).filter(|rest| !rest.is_empty()) {
        let Some(j) = memchr2(b'=', b'\n', rest) else {
            // Literal text to the end. Its trailing blanks (and a CR) are kept back: if a
            // line break follows in the next chunk they are transport padding to remove.
            if last {
                out.extend_from_slice(trim_blanks(rest));
                return data.len();
            }
            let hold = trailing(rest, |b| matches!(b, b' ' | b'\t' | b'\r')).min(MAX_QP_HOLD);
            let emit = rest.len() - hold;
            out.extend_from_slice(rest.get(..emit).unwrap_or_default());
            return i + emit;
        };
        let (text, from_marker) = rest.split_at(j);
        if from_marker.first() == Some(&b'\n') {
            let (line, crlf) = match text.strip_suffix(b"\r") {
                Some(line) => (line, true),
                None => (text, false),
            };
            out.extend_from_slice(trim_blanks(line));
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            i += j + 1;
            continue;
        }
        out.extend_from_slice(text);
        let after = from_marker.get(1..).unwrap_or_default();
        if let Some(byte) = hex_pair(Some(after)) {
            out.push(byte);
            i += j + 3;
            continue;
        }
        // A soft line break is `=`, optional blanks, then CRLF or LF.
        let blanks = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        match after.get(blanks..).unwrap_or_default() {
            [b'\n', ..] => i += j + 1 + blanks + 1,
            [b'\r', b'\n', ..] => i += j + 1 + blanks + 2,
            // Undecidable until more data comes; at the very end a lone `=` (with blanks or
            // a CR) is a soft break before the end.
            [] | [b'\r'] if blanks <= MAX_QP_HOLD => {
                if !last {
                    return i + j;
                }
                return data.len();
            }
            [digit] if blanks == 0 && !last && digit.is_ascii_hexdigit() => {
                return i + j;
            }
            _ => {
                // Not an escape: RFC 2045 §6.7 (note 1) suggests keeping the `=` as data.
                out.push(b'=');
                i += j + 1;
            }
        }
    }
    data.len()
}

fn trailing(s: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    s.iter().rev().take_while(|&&b| pred(b)).count()
}

fn trim_blanks(s: &[u8]) -> &[u8] {
    let keep = s.len() - trailing(s, |b| b == b' ' || b == b'\t');
    s.get(..keep).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn decode_in_chunks(encoding: TransferEncoding, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut decoder = TransferDecoder::new(encoding);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            decoder.decode(piece, &mut out).unwrap();
        }
        decoder.finish(&mut out).unwrap();
        out
    }

    fn decode_all(encoding: TransferEncoding, input: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut decoder = TransferDecoder::new(encoding);
        let mut out = Vec::new();
        decoder.decode(input, &mut out)?;
        decoder.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn identity_encodings_pass_through() {
        for encoding in [
            TransferEncoding::Binary,
            TransferEncoding::SevenBit,
            TransferEncoding::EightBit,
        ] {
            assert_eq!(
                decode_in_chunks(encoding, b"a=\r\nb\x00", 1),
                b"a=\r\nb\x00"
            );
        }
    }

    #[test]
    fn base64_across_every_chunk_size() {
        let original: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = STANDARD.encode(&original);
        let mut wrapped = Vec::new();
        for (n, line) in encoded.as_bytes().chunks(76).enumerate() {
            wrapped.extend_from_slice(line);
            wrapped.extend_from_slice(if n % 2 == 0 { b"\r\n" } else { b" \t\n" });
        }
        for chunk in 1..=20 {
            assert_eq!(
                decode_in_chunks(TransferEncoding::Base64, &wrapped, chunk),
                original
            );
        }
    }

    #[test]
    fn base64_padding_rules() {
        let b64 = TransferEncoding::Base64;
        assert_eq!(decode_all(b64, b"QQ==").unwrap(), b"A");
        assert_eq!(decode_all(b64, b"QQ").unwrap(), b"A");
        assert_eq!(decode_all(b64, b"QUI").unwrap(), b"AB");
        assert_eq!(decode_all(b64, b"QUI=\r\n").unwrap(), b"AB");
        assert_eq!(decode_all(b64, b"").unwrap(), b"");
        assert!(decode_all(b64, b"QUJDR").is_err());
        assert!(decode_all(b64, b"QQ==QUJD").is_err());
        assert!(decode_all(b64, b"QU*D").is_err());
        let mut decoder = TransferDecoder::new(b64);
        let mut out = Vec::new();
        decoder.decode(b"QQ==\r\n", &mut out).unwrap();
        assert!(decoder.decode(b"QUJD", &mut out).is_err());
    }

    #[test]
    fn quoted_printable_rules() {
        let qp = TransferEncoding::QuotedPrintable;
        let input = b"caf=C3=A9 =\r\nsoft  \r\nhard=\n\tnext =3D =\nend   ";
        let expected = b"caf\xc3\xa9 soft\r\nhard\tnext = end";
        for chunk in 1..=input.len() {
            assert_eq!(
                decode_in_chunks(qp, input, chunk),
                expected,
                "chunk {chunk}"
            );
        }
        // Invalid escapes are kept as data; a final lone `=` is a soft break.
        assert_eq!(decode_all(qp, b"a=ZZb=").unwrap(), b"a=ZZb");
        assert_eq!(decode_all(qp, b"x=4").unwrap(), b"x=4");
        assert_eq!(decode_all(qp, b"x= y").unwrap(), b"x= y");
        assert_eq!(decode_all(qp, b"a\nb\r\n").unwrap(), b"a\nb\r\n");
        // `=` then blanks then line break, split anywhere.
        assert_eq!(decode_in_chunks(qp, b"a=  \r\nb", 1), b"ab");
    }

    #[test]
    fn quoted_printable_hold_is_bounded() {
        let qp = TransferEncoding::QuotedPrintable;
        let mut decoder = TransferDecoder::new(qp);
        let mut out = Vec::new();
        let blanks = vec![b' '; 10 * MAX_QP_HOLD];
        decoder.decode(b"x", &mut out).unwrap();
        decoder.decode(&blanks, &mut out).unwrap();
        let Kind::QuotedPrintable { carry } = &decoder.kind else {
            panic!("not a QP decoder");
        };
        assert!(carry.len() <= MAX_QP_HOLD);
        decoder.decode(b"y", &mut out).unwrap();
        decoder.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2 + blanks.len());
    }
}
