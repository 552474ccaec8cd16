//! Character data and attribute values: references resolved, line ends and white space
//! normalised, borrowed from the input when nothing changes.

use std::borrow::Cow;

use memchr::{memchr, memchr3};

use crate::protocol::xml::is_xml_char;
use crate::signature::SignatureError;
use crate::signature::error::malformed;

/// Character data as written (`raw`, at byte `offset`) with references resolved and line
/// ends normalised (XML 1.0 §2.11, §4.4.5); refuses `]]>`, which may not appear in text.
pub(super) fn char_data(raw: &str, offset: usize) -> Result<Cow<'_, str>, SignatureError> {
    let bytes = raw.as_bytes();
    let mut out: Option<String> = None;
    // `raw[..copied]` is accounted for in `out`.
    let mut copied = 0;
    let mut at = 0;
    while let Some(i) = memchr3(b'&', b'\r', b']', &bytes[at..]) {
        let i = at + i;
        let (replacement, len) = match bytes[i] {
            b'&' => reference(raw, i, offset)?,
            b'\r' => (
                '\n',
                if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                },
            ),
            _ => {
                if bytes[i..].starts_with(b"]]>") {
                    return Err(malformed!("']]>' in text (at byte {})", offset + i));
                }
                at = i + 1;
                continue;
            }
        };
        let text = out.get_or_insert_with(|| String::with_capacity(raw.len()));
        text.push_str(&raw[copied..i]);
        text.push(replacement);
        copied = i + len;
        at = copied;
    }
    Ok(match out {
        None => Cow::Borrowed(raw),
        Some(mut text) => {
            text.push_str(&raw[copied..]);
            Cow::Owned(text)
        }
    })
}

/// Why an attribute value was refused.
pub(super) enum AttrValueError {
    /// It contains a literal `<`.
    Lt,
    /// Anything else, with its reason.
    Other(SignatureError),
}

/// An attribute value as written (`raw`, at byte `offset`) normalised per XML 1.0 §3.3.3:
/// references resolved, and each white space character (a CR LF pair counting as one)
/// replaced by a space; characters from character references are kept as they are.
pub(super) fn attribute_value(raw: &str, offset: usize) -> Result<Cow<'_, str>, AttrValueError> {
    let bytes = raw.as_bytes();
    let special = |b: &u8| matches!(b, b'&' | b'<' | b'\t' | b'\n' | b'\r');
    // Most values (names, URIs, identifiers) hold none of these: a pass without an early
    // exit, which vectorises, tells before the byte-by-byte search.
    if !bytes.iter().fold(false, |found, b| found | special(b)) {
        return Ok(Cow::Borrowed(raw));
    }
    let Some(first) = bytes.iter().position(special) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut text = String::with_capacity(raw.len());
    let mut copied = 0;
    let mut at = first;
    loop {
        let (replacement, len) = match bytes[at] {
            b'&' => reference(raw, at, offset).map_err(AttrValueError::Other)?,
            b'<' => return Err(AttrValueError::Lt),
            b'\r' if bytes.get(at + 1) == Some(&b'\n') => (' ', 2),
            _ => (' ', 1),
        };
        text.push_str(&raw[copied..at]);
        text.push(replacement);
        copied = at + len;
        match bytes[copied..].iter().position(special) {
            Some(i) => at = copied + i,
            None => break,
        }
    }
    text.push_str(&raw[copied..]);
    Ok(Cow::Owned(text))
}

/// The character a reference at byte `at` of `text` (at byte `offset` of the input)
/// stands for, and the reference's length: one of the five predefined entities or a
/// character reference to an XML character.
fn reference(text: &str, at: usize, offset: usize) -> Result<(char, usize), SignatureError> {
    let bytes = text.as_bytes();
    let semicolon = memchr(b';', &bytes[at + 1..])
        .ok_or_else(|| malformed!("unterminated reference (at byte {})", offset + at))?;
    let name = &text[at + 1..at + 1 + semicolon];
    let len = semicolon + 2;
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => match name.strip_prefix('#') {
            Some(number) => char_reference(number)
                .filter(|&c| is_xml_char(c))
                .ok_or_else(|| {
                    malformed!("invalid character reference &{};", name.escape_debug())
                })?,
            None => {
                return Err(malformed!(
                    "entity reference &{}; is not allowed in a signed XML part",
                    name.escape_debug()
                ));
            }
        },
    };
    Ok((ch, len))
}

/// The character of a character reference's number (`x` and hex digits, or decimal
/// digits).
fn char_reference(number: &str) -> Option<char> {
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut code: u32 = 0;
    for b in digits.bytes() {
        let digit = char::from(b).to_digit(radix)?;
        code = code.checked_mul(radix)?.checked_add(digit)?;
    }
    char::from_u32(code)
}

/// `text` with CR LF and lone CR turned into LF (XML 1.0 §2.11).
pub(super) fn normalize_line_ends(text: &str) -> Cow<'_, str> {
    if memchr(b'\r', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}
