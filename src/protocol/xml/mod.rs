//! Shared XML helpers: encoding from the XML declaration, entity refusal, escaping.
//!
//! The three SHS documents (`shs.label`, `shs.management`, `shs.message-list`) are small,
//! flat and read whole, so they are parsed in steps: [`decode`] turns the bytes into text,
//! [`parse`] turns the text into a tiny element tree under the policy below, and each
//! document interprets that tree. The tree borrows names, values and text from the
//! decoded text wherever they need no change, so that reading a label allocates little
//! more than the label it makes.
//!
//! Policy, shared by every document:
//! - **Encoding** comes from the XML declaration only (`UTF-8`, `ISO-8859-1` and its
//!   aliases such as `latin1`, `US-ASCII`; absent means UTF-8); a UTF-8 byte order mark is
//!   accepted. Any other encoding, a UTF-16 document or bytes that do not fit the declared
//!   encoding are refused. A MIME charset is never consulted: the declaration wins (§4.2).
//! - **Entities**: a DOCTYPE is accepted and ignored (no DTD is ever fetched, an internal
//!   subset is skipped unread); the five predefined entities and character references are
//!   resolved; any other entity reference is refused, so nothing is ever expanded and a
//!   "billion laughs" document fails at its first reference.
//! - **Characters** outside the XML 1.0 `Char` production are refused, raw or referenced.
//! - **Text** is decoded and line ends normalised (XML 1.0 §2.11) but never trimmed;
//!   attribute values are normalised as XML 1.0 §3.3.3 says for CDATA (each tab, CR or LF
//!   becomes a space; nothing is collapsed).
//! - Nesting deeper than [`MAX_DEPTH`] is refused (SHS documents are three levels deep).

mod tree;
mod write;

pub(crate) use tree::{Element, parse};
pub(crate) use write::XmlWriter;
#[cfg(test)]
pub(crate) use write::{push_attr_value, push_text};

use std::borrow::Cow;

use super::ProtocolError;

/// Deepest element nesting accepted; SHS documents are at most three levels deep, and a
/// bound keeps the tree (and its drop) shallow whatever the input.
pub(crate) const MAX_DEPTH: usize = 16;

/// Longest piece of input quoted in an error reason.
const QUOTE_LIMIT: usize = 64;

/// The [`ProtocolError::Xml`] for a document, with a reason formatted like `format!`.
macro_rules! xml_error {
    ($document:expr, $($reason:tt)+) => {
        $crate::protocol::xml::error($document, format!($($reason)+))
    };
}
pub(crate) use xml_error;

/// A character encoding that SHS documents are read and written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8, the default without a declaration.
    Utf8,
    /// ISO-8859-1: one byte per character, U+0000..U+00FF.
    Latin1,
    /// US-ASCII: bytes up to 0x7F only.
    Ascii,
}

impl Encoding {
    /// The encoding named by an XML declaration, matched case-insensitively against the
    /// IANA names and aliases seen in the field.
    fn from_label(name: &str) -> Option<Encoding> {
        const NAMES: [(&str, Encoding); 3] = [
            ("utf-8 utf8", Encoding::Utf8),
            (
                "iso-8859-1 iso8859-1 iso_8859-1 iso8859_1 iso_8859-1:1987 latin1 latin-1 l1 \
                 ibm819 cp819 csisolatin1 iso-ir-100",
                Encoding::Latin1,
            ),
            (
                "us-ascii ascii us iso646-us ansi_x3.4-1968 csascii iso-ir-6 cp367 ibm367",
                Encoding::Ascii,
            ),
        ];
        // The label nearly every document carries, without splitting the lists.
        if name.eq_ignore_ascii_case("UTF-8") {
            return Some(Encoding::Utf8);
        }
        let known = |names: &str| names.split(' ').any(|n| n.eq_ignore_ascii_case(name));
        NAMES
            .iter()
            .find(|(names, _)| known(names))
            .map(|(_, e)| *e)
    }

    /// Encodes `text` in this encoding; characters the encoding cannot hold are written as
    /// character references (`&#N;`), which is only correct in text and attribute values.
    pub(crate) fn encode(self, text: &str) -> Vec<u8> {
        let max = match self {
            Encoding::Utf8 => return text.as_bytes().to_vec(),
            Encoding::Latin1 => 0xFF,
            Encoding::Ascii => 0x7F,
        };
        let mut out = Vec::with_capacity(text.len());
        for ch in text.chars() {
            match u8::try_from(u32::from(ch)) {
                Ok(byte) if u32::from(byte) <= max => out.push(byte),
                _ => out.extend_from_slice(format!("&#{};", u32::from(ch)).as_bytes()),
            }
        }
        out
    }
}

/// A document decoded to UTF-8, remembering how to map positions back to its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Decoded<'b> {
    /// The text after the byte order mark: borrowed from the bytes when they are UTF-8 or
    /// ASCII already (nearly every document), decoded into a new string otherwise.
    pub(crate) text: Cow<'b, str>,
    /// The encoding the bytes were in.
    pub(crate) encoding: Encoding,
    /// Length of the byte order mark in the original bytes (0 or 3).
    bom_len: usize,
}

impl Decoded<'_> {
    /// The offset in the original bytes of the character at `offset` in [`Decoded::text`].
    pub(crate) fn byte_offset(&self, offset: usize) -> usize {
        byte_offset(&self.text, self.encoding, self.bom_len, offset)
    }
}

/// The offset in the original bytes of the character at `offset` in decoded `text`.
fn byte_offset(text: &str, encoding: Encoding, bom_len: usize, offset: usize) -> usize {
    let offset = offset.min(text.len());
    match encoding {
        Encoding::Utf8 | Encoding::Ascii => bom_len + offset,
        Encoding::Latin1 => {
            let head = text.get(..offset).unwrap_or(text);
            bom_len + head.chars().count()
        }
    }
}

/// The error for a malformed `document` with a one-line `reason`.
pub(crate) fn error(document: &'static str, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::Xml {
        document,
        reason: reason.into(),
    }
}

/// Quotes a piece of input for an error reason: escaped to one line and shortened.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Decodes `bytes` according to their XML declaration (see the module policy).
pub(crate) fn decode<'b>(
    document: &'static str,
    bytes: &'b [u8],
) -> Result<Decoded<'b>, ProtocolError> {
    let (text, encoding, bom_len) = decode_borrowed(document, bytes)?;
    Ok(Decoded {
        text,
        encoding,
        bom_len,
    })
}

/// As [`decode`], borrowing the text from `bytes` when they are UTF-8 (or ASCII) already;
/// also returns the encoding and the length of the byte order mark.
pub(crate) fn decode_borrowed<'b>(
    document: &'static str,
    bytes: &'b [u8],
) -> Result<(Cow<'b, str>, Encoding, usize), ProtocolError> {
    let (bom_len, body) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (3, rest),
        None => (0, bytes),
    };
    if body.starts_with(b"\xFE\xFF")
        || body.starts_with(b"\xFF\xFE")
        || body.starts_with(b"\0<")
        || body.starts_with(b"<\0")
    {
        return Err(error(document, "UTF-16 documents are not supported"));
    }
    let encoding = match declared_encoding(document, body)? {
        None => Encoding::Utf8,
        Some(name) => Encoding::from_label(name).ok_or_else(|| {
            xml_error!(
                document,
                "unsupported encoding {} in the XML declaration",
                quote(name),
            )
        })?,
    };
    if bom_len > 0 && encoding != Encoding::Utf8 {
        return Err(error(
            document,
            "a UTF-8 byte order mark contradicts the encoding in the XML declaration",
        ));
    }
    // Fast path: printable ASCII and tab/LF/CR are always allowed (checked in blocks
    // without an early exit, so that the loop vectorises).
    let plain_ascii = |b: u8| (0x20..0x80).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r');
    if body
        .chunks(64)
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & plain_ascii(b)))
    {
        let text = std::str::from_utf8(body).expect("printable ASCII is UTF-8");
        return Ok((Cow::Borrowed(text), encoding, bom_len));
    }
    let text: Cow<'b, str> = match encoding {
        Encoding::Utf8 => Cow::Borrowed(std::str::from_utf8(body).map_err(|e| {
            let at = bom_len + e.valid_up_to();
            xml_error!(document, "invalid UTF-8 at byte {at}")
        })?),
        Encoding::Latin1 => Cow::Owned(body.iter().copied().map(char::from).collect()),
        Encoding::Ascii => {
            if let Some(at) = body.iter().position(|b| !b.is_ascii()) {
                return Err(xml_error!(
                    document,
                    "byte 0x{:02X} at byte {} is not US-ASCII",
                    body[at],
                    bom_len + at
                ));
            }
            Cow::Borrowed(std::str::from_utf8(body).expect("ASCII is UTF-8"))
        }
    };
    if let Some((at, ch)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(xml_error!(
            document,
            "character U+{:04X} at byte {} is not allowed in XML",
            u32::from(ch),
            byte_offset(&text, encoding, bom_len, at),
        ));
    }
    Ok((text, encoding, bom_len))
}

/// The `encoding` pseudo-attribute of the XML declaration at the start of `body`, if any.
fn declared_encoding<'a>(
    document: &'static str,
    body: &'a [u8],
) -> Result<Option<&'a str>, ProtocolError> {
    let Some(rest) = body.strip_prefix(b"<?xml") else {
        return Ok(None);
    };
    if !rest.first().is_some_and(|b| is_xml_space(char::from(*b))) {
        // `<?xml-stylesheet …?>` and the like are processing instructions, not a declaration.
        return Ok(None);
    }
    // The end is the first `?` followed by `>`; found with `memchr`, as this runs for
    // every signed part.
    let mut end = None;
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'?', &rest[from..]) {
        if rest.get(from + i + 1) == Some(&b'>') {
            end = Some(from + i);
            break;
        }
        from += i + 1;
    }
    let end = end.ok_or_else(|| error(document, "unterminated XML declaration"))?;
    let decl = std::str::from_utf8(&rest[..end])
        .ok()
        .filter(|d| d.is_ascii())
        .ok_or_else(|| error(document, "the XML declaration is not ASCII"))?;
    let malformed = || xml_error!(document, "malformed XML declaration {}", quote(decl));
    let mut encoding = None;
    let mut rest = decl.trim_start_matches(is_xml_space);
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(malformed)?;
        let after = after.trim_start_matches(is_xml_space);
        let quote_char = after.chars().next().filter(|c| matches!(c, '"' | '\''));
        let quote_char = quote_char.ok_or_else(malformed)?;
        let (value, after) = after[1..].split_once(quote_char).ok_or_else(malformed)?;
        if name.trim_end_matches(is_xml_space) == "encoding" {
            encoding = Some(value);
        }
        rest = after.trim_start_matches(is_xml_space);
    }
    Ok(encoding)
}

/// XML 1.0 `Char`: the characters a document may contain, raw or by reference.
pub(crate) fn is_xml_char(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML white space (`S`): space, tab, CR, LF.
pub(crate) fn is_xml_space(ch: char) -> bool {
    matches!(ch, ' ' | '\t' | '\r' | '\n')
}

/// True if `text` is empty or XML white space only: formatting between elements.
pub(crate) fn is_blank(text: &str) -> bool {
    text.chars().all(is_xml_space)
}
