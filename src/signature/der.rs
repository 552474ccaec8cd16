//! A small BER/DER reader: just what CMS SignedData needs. S/MIME producers (OpenSSL in
//! streaming mode among them) write BER with indefinite lengths and constructed OCTET
//! STRINGs, which DER-only parsers refuse; the signed attributes, which are hashed, must
//! be DER and are taken byte for byte.

use std::borrow::Cow;

use super::SignatureError;
use super::error::malformed;

/// Deepest nesting followed when skipping indefinite-length values.
const MAX_DEPTH: usize = 32;

/// Universal and context tags used by CMS (class, constructed bit and number in one byte).
pub(crate) mod tag {
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OCTET_STRING_CONSTRUCTED: u8 = 0x24;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    /// `[0]` constructed (EXPLICIT, or IMPLICIT over a constructed type).
    pub(crate) const CONTEXT_0: u8 = 0xA0;
    /// `[1]` constructed.
    pub(crate) const CONTEXT_1: u8 = 0xA1;
    /// `[0]` primitive (IMPLICIT over a primitive type).
    pub(crate) const CONTEXT_0_PRIMITIVE: u8 = 0x80;
}

/// One tag-length-value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (low tag numbers only, which is all CMS uses).
    pub(crate) tag: u8,
    /// The contents (without an end-of-contents marker).
    pub(crate) content: &'a [u8],
    /// The whole encoding, identifier to end.
    pub(crate) raw: &'a [u8],
    /// Whether the length was definite (a DER requirement).
    pub(crate) definite: bool,
}

impl<'a> Tlv<'a> {
    /// A reader over the contents of a constructed value.
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader { data: self.content }
    }

    /// The bytes of an OCTET STRING, joining the segments of a constructed (BER) one.
    pub(crate) fn octets(&self) -> Result<Cow<'a, [u8]>, SignatureError> {
        match self.tag {
            tag::OCTET_STRING => Ok(Cow::Borrowed(self.content)),
            tag::OCTET_STRING_CONSTRUCTED => {
                let mut out = Vec::new();
                let mut reader = self.reader();
                while !reader.is_empty() {
                    out.extend_from_slice(&reader.next()?.octets()?);
                }
                Ok(Cow::Owned(out))
            }
            other => Err(malformed!(
                "expected an OCTET STRING, found tag 0x{other:02X}"
            )),
        }
    }

    /// An OBJECT IDENTIFIER in dotted form.
    pub(crate) fn oid(&self) -> Result<String, SignatureError> {
        if self.tag != tag::OID || self.content.is_empty() {
            return Err(malformed!("expected an OBJECT IDENTIFIER"));
        }
        let mut arcs: Vec<u64> = Vec::new();
        let mut value: u64 = 0;
        for &b in self.content {
            if value > (u64::MAX >> 7) {
                return Err(malformed!("OBJECT IDENTIFIER arc too large"));
            }
            value = (value << 7) | u64::from(b & 0x7F);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let first = (value / 40).min(2);
                    arcs.push(first);
                    arcs.push(value - first * 40);
                } else {
                    arcs.push(value);
                }
                value = 0;
            }
        }
        if self.content.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(malformed!("truncated OBJECT IDENTIFIER"));
        }
        Ok(arcs
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."))
    }
}

/// Reads values one after another from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// True when everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next value.
    pub(crate) fn next(&mut self) -> Result<Tlv<'a>, SignatureError> {
        let (tlv, used) = read(self.data, 0)?;
        self.data = &self.data[used..];
        Ok(tlv)
    }

    /// The next value, which must have tag `expected`.
    pub(crate) fn expect(&mut self, expected: u8, what: &str) -> Result<Tlv<'a>, SignatureError> {
        let tlv = self.next()?;
        if tlv.tag != expected {
            return Err(malformed!(
                "{what}: expected tag 0x{expected:02X}, found 0x{:02X}",
                tlv.tag
            ));
        }
        Ok(tlv)
    }

    /// The next value if it has tag `wanted`; otherwise nothing is consumed.
    pub(crate) fn optional(&mut self, wanted: u8) -> Result<Option<Tlv<'a>>, SignatureError> {
        match self.data.first() {
            Some(&t) if t == wanted => self.next().map(Some),
            _ => Ok(None),
        }
    }
}

/// Reads one value at the start of `data`; returns it and the bytes it used.
fn read(data: &[u8], depth: usize) -> Result<(Tlv<'_>, usize), SignatureError> {
    if depth > MAX_DEPTH {
        return Err(malformed!("ASN.1 nested too deeply"));
    }
    let truncated = || malformed!("truncated ASN.1 value");
    let &tag = data.first().ok_or_else(truncated)?;
    if tag & 0x1F == 0x1F {
        return Err(malformed!("high-number ASN.1 tag"));
    }
    let &first = data.get(1).ok_or_else(truncated)?;
    let (len, header) = match first {
        0x80 => {
            if tag & 0x20 == 0 {
                return Err(malformed!("indefinite length on a primitive value"));
            }
            // Indefinite: the contents are values up to an end-of-contents marker.
            let mut at = 2;
            loop {
                let rest = data.get(at..).ok_or_else(truncated)?;
                if rest.starts_with(&[0, 0]) {
                    let tlv = Tlv {
                        tag,
                        content: &data[2..at],
                        raw: &data[..at + 2],
                        definite: false,
                    };
                    return Ok((tlv, at + 2));
                }
                let (_, used) = read(rest, depth + 1)?;
                at += used;
            }
        }
        n if n < 0x80 => (usize::from(n), 2),
        n => {
            let count = usize::from(n & 0x7F);
            if count > 4 {
                return Err(malformed!("ASN.1 length too large"));
            }
            let bytes = data.get(2..2 + count).ok_or_else(truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + count)
        }
    };
    let end = header.checked_add(len).ok_or_else(truncated)?;
    let raw = data.get(..end).ok_or_else(truncated)?;
    Ok((
        Tlv {
            tag,
            content: &raw[header..],
            raw,
            definite: true,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite_lengths_and_constructed_octets() {
        // SEQUENCE (indefinite) { OID 1.2.840.113549.1.7.1, [0] (indefinite) { OCTET STRING
        // (constructed, indefinite) { "ab", "c" } } }
        let ber = [
            0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01, 0xA0,
            0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0, 0, 0, 0,
        ];
        let mut outer = Reader::new(&ber);
        let seq = outer.expect(tag::SEQUENCE, "test").expect("sequence");
        assert!(outer.is_empty());
        assert!(!seq.definite);
        let mut inner = seq.reader();
        assert_eq!(
            inner.next().expect("oid").oid().expect("oid"),
            "1.2.840.113549.1.7.1"
        );
        let explicit = inner.expect(tag::CONTEXT_0, "test").expect("[0]");
        let octets = explicit.reader().next().expect("octets");
        assert_eq!(&octets.octets().expect("joined")[..], b"abc");
    }

    #[test]
    fn truncation_and_bad_lengths_are_malformed() {
        for bad in [
            &[0x30, 0x05, 0x02][..],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x04, 0x80],
            &[0x30, 0x80, 0x04],
        ] {
            assert!(
                matches!(Reader::new(bad).next(), Err(SignatureError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
