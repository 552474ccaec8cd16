//! Tokenizing: a signed XML part, already decoded to UTF-8, into borrowed tokens in one
//! byte-oriented pass, checking the XML 1.0 (and Namespaces) well-formedness a signature
//! verifier depends on.
//!
//! Why not quick-xml here: a verifier of a small e-form spends as much time reading the
//! markup as on everything but the public-key operation, and quick-xml re-checks UTF-8 per
//! event and parses attributes in a second pass. The input here is a `&str` whose
//! characters `protocol::xml::decode_borrowed` has already checked, so this tokenizer only
//! looks for ASCII delimiters (with `memchr`), and resolves references, normalises line
//! ends and attribute values, and checks names, tag nesting and duplicate attributes as it
//! goes. Everything is a slice of the input unless a reference or line end made a copy
//! necessary.
//!
//! Refused, as before: a DOCTYPE (so no entity can be declared), any entity reference but
//! the five predefined ones, character references to non-XML characters. Also refused,
//! where quick-xml was lenient: malformed names (and names with more than one colon),
//! attributes not separated by white space, `]]>` in text, text, references or CDATA
//! outside the document element, an XML declaration anywhere but at the start (or a
//! malformed one), processing instructions named `xml` in any case.

use std::borrow::Cow;

use memchr::memchr;

use crate::protocol::xml::is_blank;
use crate::signature::SignatureError;
use crate::signature::error::malformed;

mod names;
mod text;

use names::qname;
use text::{AttrValueError, attribute_value, char_data, normalize_line_ends};

/// One piece of markup or character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'t> {
    /// The XML declaration at the start of the document (checked; nothing in it matters
    /// after decoding).
    Declaration,
    /// A start tag; its attributes are in [`Tokenizer::attributes_mut`] until the next
    /// token.
    Start(QName<'t>),
    /// An empty-element tag (`<a/>`); its attributes as for [`Token::Start`].
    Empty(QName<'t>),
    /// An end tag, already checked against its start tag.
    End(QName<'t>),
    /// Character data between markup in an element: references resolved, line ends
    /// normalised.
    Text(Cow<'t, str>),
    /// The content of a CDATA section, line ends normalised.
    CData(Cow<'t, str>),
    /// The text of a comment, line ends normalised.
    Comment(Cow<'t, str>),
    /// A processing instruction: its target, and its data without the leading white
    /// space, line ends normalised.
    Pi(&'t str, Cow<'t, str>),
}

/// A name as written, `prefix:local` or `local`, checked to be a namespace-well-formed
/// `QName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QName<'t> {
    /// The whole name.
    pub(crate) raw: &'t str,
    /// The length of the prefix (0 without one).
    pub(crate) prefix_len: usize,
}

impl<'t> QName<'t> {
    /// The prefix (empty without one).
    pub(crate) fn prefix(&self) -> &'t str {
        &self.raw[..self.prefix_len]
    }

    /// The local name.
    pub(crate) fn local(&self) -> &'t str {
        match self.prefix_len {
            0 => self.raw,
            n => &self.raw[n + 1..],
        }
    }
}

/// The quote an attribute value was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    /// `"`
    Double,
    /// `'`
    Single,
}

/// An attribute of the latest start or empty-element tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawAttr<'t> {
    /// The name as written.
    pub(crate) name: QName<'t>,
    /// The value as written, between the quotes.
    pub(crate) raw_value: &'t str,
    /// The quote around it.
    pub(crate) quote: Quote,
    /// The value normalised as XML 1.0 §3.3.3 requires for CDATA attributes (white space
    /// characters become spaces, references resolved); borrowed if that changed nothing.
    pub(crate) value: Cow<'t, str>,
}

/// Where in the document the tokenizer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the document element.
    Prolog,
    /// Inside the document element.
    Content,
    /// After the document element.
    Epilog,
}

/// The tokenizer: call [`Tokenizer::next_token`] until it returns `None`.
pub(crate) struct Tokenizer<'t> {
    input: &'t str,
    pos: usize,
    stage: Stage,
    /// The names of the open elements, innermost last.
    open: Vec<QName<'t>>,
    /// The attributes of the latest start or empty-element tag.
    attrs: Vec<RawAttr<'t>>,
}

impl<'t> Tokenizer<'t> {
    /// A tokenizer at the start of `input` (without a byte order mark).
    #[cfg(test)]
    pub(crate) fn new(input: &'t str) -> Self {
        Self::with_buffers(input, Vec::with_capacity(16), Vec::with_capacity(8))
    }

    /// A tokenizer at the start of `input` (without a byte order mark) working in the
    /// (emptied) buffers given, as [`Tokenizer::into_buffers`] hands them back.
    pub(crate) fn with_buffers(
        input: &'t str,
        mut open: Vec<QName<'t>>,
        mut attrs: Vec<RawAttr<'t>>,
    ) -> Self {
        open.clear();
        attrs.clear();
        Tokenizer {
            input,
            pos: 0,
            stage: Stage::Prolog,
            open,
            attrs,
        }
    }

    /// The tokenizer's buffers (the names of open elements, the latest tag's attributes),
    /// for reuse.
    pub(crate) fn into_buffers(self) -> (Vec<QName<'t>>, Vec<RawAttr<'t>>) {
        (self.open, self.attrs)
    }

    /// The attributes of the latest [`Token::Start`] or [`Token::Empty`], in document
    /// order; the caller may take them.
    pub(crate) fn attributes_mut(&mut self) -> &mut Vec<RawAttr<'t>> {
        &mut self.attrs
    }

    /// The next token; `None` at the end of a complete document. White space outside the
    /// document element is skipped (it is not part of the document).
    pub(crate) fn next_token(&mut self) -> Result<Option<Token<'t>>, SignatureError> {
        let bytes = self.input.as_bytes();
        loop {
            let Some(&first) = bytes.get(self.pos) else {
                return if self.stage == Stage::Epilog {
                    Ok(None)
                } else {
                    Err(malformed!("the XML document is incomplete"))
                };
            };
            if first != b'<' {
                let start = self.pos;
                let end = memchr(b'<', &bytes[start..]).map_or(bytes.len(), |i| start + i);
                self.pos = end;
                let raw = &self.input[start..end];
                if self.stage == Stage::Content {
                    return char_data(raw, start).map(|t| Some(Token::Text(t)));
                }
                if !is_blank(raw) {
                    return Err(malformed!(
                        "text outside the document element (at byte {start})"
                    ));
                }
                continue;
            }
            return match bytes.get(self.pos + 1) {
                Some(b'/') => self.end_tag().map(Some),
                Some(b'?') => self.pi_or_declaration().map(Some),
                Some(b'!') => self.bang().map(Some),
                _ => self.start_tag().map(Some),
            };
        }
    }

    /// A start or empty-element tag at `self.pos`.
    fn start_tag(&mut self) -> Result<Token<'t>, SignatureError> {
        let bytes = self.input.as_bytes();
        let tag_start = self.pos;
        let (name, mut at) = qname(self.input, tag_start + 1, b"/>")?;
        if self.stage == Stage::Epilog {
            return Err(malformed!(
                "content after the document element: <{}>",
                name.raw
            ));
        }
        self.attrs.clear();
        let empty = loop {
            let before_space = at;
            at = skip_space(bytes, at);
            match bytes.get(at) {
                Some(b'>') => {
                    at += 1;
                    break false;
                }
                Some(b'/') if bytes.get(at + 1) == Some(&b'>') => {
                    at += 2;
                    break true;
                }
                Some(_) if at > before_space => at = self.attribute(name, at)?,
                Some(_) => {
                    return Err(malformed!(
                        "malformed start tag <{}> (at byte {at})",
                        name.raw
                    ));
                }
                None => return Err(malformed!("unterminated start tag <{}>", name.raw)),
            }
        };
        self.pos = at;
        if empty {
            if self.open.is_empty() {
                self.stage = Stage::Epilog;
            }
            Ok(Token::Empty(name))
        } else {
            self.open.push(name);
            self.stage = Stage::Content;
            Ok(Token::Start(name))
        }
    }

    /// An attribute at `at` in start tag `element`; returns where it ends.
    fn attribute(&mut self, element: QName<'t>, at: usize) -> Result<usize, SignatureError> {
        let bytes = self.input.as_bytes();
        let (name, at) = qname(self.input, at, b"=")?;
        let at = skip_space(bytes, at);
        if bytes.get(at) != Some(&b'=') {
            return Err(malformed!(
                "attribute {} of <{}> has no value (at byte {at})",
                name.raw,
                element.raw
            ));
        }
        let at = skip_space(bytes, at + 1);
        let (quote, quote_byte) = match bytes.get(at) {
            Some(b'"') => (Quote::Double, b'"'),
            Some(b'\'') => (Quote::Single, b'\''),
            _ => {
                return Err(malformed!(
                    "attribute {} of <{}> is not quoted (at byte {at})",
                    name.raw,
                    element.raw
                ));
            }
        };
        let value_start = at + 1;
        let value_end = memchr(quote_byte, &bytes[value_start..])
            .map(|i| value_start + i)
            .ok_or_else(|| malformed!("unterminated start tag <{}>", element.raw))?;
        let raw_value = &self.input[value_start..value_end];
        let value = attribute_value(raw_value, value_start).map_err(|e| match e {
            AttrValueError::Lt => {
                malformed!("attribute {} of <{}> contains '<'", name.raw, element.raw)
            }
            AttrValueError::Other(e) => e,
        })?;
        if self.attrs.iter().any(|a| a.name.raw == name.raw) {
            return Err(malformed!(
                "duplicate attribute {} in <{}>",
                name.raw,
                element.raw
            ));
        }
        self.attrs.push(RawAttr {
            name,
            raw_value,
            quote,
            value,
        });
        Ok(value_end + 1)
    }

    /// An end tag at `self.pos`, which must close the innermost open element.
    fn end_tag(&mut self) -> Result<Token<'t>, SignatureError> {
        let bytes = self.input.as_bytes();
        let name_start = self.pos + 2;
        let Some(open) = self.open.pop() else {
            return Err(malformed!(
                "end tag without a start tag (at byte {})",
                self.pos
            ));
        };
        let name_end = name_start + open.raw.len();
        let after = skip_space(bytes, name_end);
        // `</ab>` against `<a>` fails too: after the name comes white space or `>`.
        if bytes.get(name_start..name_end) != Some(open.raw.as_bytes())
            || bytes.get(after) != Some(&b'>')
        {
            let found_end =
                memchr(b'>', &bytes[name_start..]).map_or(bytes.len(), |i| name_start + i);
            let found = self.input.get(name_start..found_end).unwrap_or("");
            return Err(malformed!(
                "end tag </{}> does not match <{}> (at byte {})",
                found.trim_end(),
                open.raw,
                self.pos
            ));
        }
        self.pos = after + 1;
        if self.open.is_empty() {
            self.stage = Stage::Epilog;
        }
        Ok(Token::End(open))
    }

    /// A processing instruction, or the XML declaration, at `self.pos`.
    fn pi_or_declaration(&mut self) -> Result<Token<'t>, SignatureError> {
        let bytes = self.input.as_bytes();
        let start = self.pos;
        let (target, at) = qname(self.input, start + 2, b"?")?;
        let end = find(&bytes[at..], b"?>")
            .map(|i| at + i)
            .ok_or_else(|| malformed!("unterminated processing instruction (at byte {start})"))?;
        self.pos = end + 2;
        if target.raw.eq_ignore_ascii_case("xml") {
            if start == 0 && target.raw == "xml" {
                declaration(&self.input[at..end])?;
                return Ok(Token::Declaration);
            }
            return Err(malformed!(
                "an XML declaration or a processing instruction named {} (at byte {start})",
                target.raw
            ));
        }
        if target.prefix_len > 0 {
            return Err(malformed!(
                "processing instruction target {} contains a colon",
                target.raw
            ));
        }
        let data_start = skip_space(bytes, at);
        if data_start == at && at != end {
            return Err(malformed!(
                "malformed processing instruction {} (at byte {start})",
                target.raw
            ));
        }
        let data = &self.input[data_start.min(end)..end];
        Ok(Token::Pi(target.raw, normalize_line_ends(data)))
    }

    /// A comment, CDATA section or DOCTYPE at `self.pos` (`<!`).
    fn bang(&mut self) -> Result<Token<'t>, SignatureError> {
        let bytes = self.input.as_bytes();
        let start = self.pos;
        let rest = &bytes[start + 2..];
        if let Some(body) = rest.strip_prefix(b"--") {
            let body_start = start + 4;
            let dashes = find(body, b"--")
                .ok_or_else(|| malformed!("unterminated comment (at byte {start})"))?;
            if body.get(dashes + 2) != Some(&b'>') {
                return Err(malformed!(
                    "'--' inside a comment (at byte {})",
                    body_start + dashes
                ));
            }
            self.pos = body_start + dashes + 3;
            let text = &self.input[body_start..body_start + dashes];
            return Ok(Token::Comment(normalize_line_ends(text)));
        }
        if let Some(body) = rest.strip_prefix(b"[CDATA[") {
            if self.stage != Stage::Content {
                return Err(malformed!(
                    "text outside the document element (a CDATA section at byte {start})"
                ));
            }
            let body_start = start + 9;
            let end = find(body, b"]]>")
                .ok_or_else(|| malformed!("unterminated CDATA section (at byte {start})"))?;
            self.pos = body_start + end + 3;
            let text = &self.input[body_start..body_start + end];
            return Ok(Token::CData(normalize_line_ends(text)));
        }
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"DOCTYPE") {
            return Err(malformed!(
                "a DOCTYPE is not allowed in a signed XML part (no DTD, no entities)"
            ));
        }
        Err(malformed!(
            "markup declarations are not allowed in a signed XML part (at byte {start})"
        ))
    }
}

/// The first occurrence of `needle` (a few bytes) in `haystack`: a `memchr` for its first
/// byte (cheaper than setting up a substring searcher for the short pieces here).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut at = 0;
    while let Some(i) = memchr(first, &haystack[at..]) {
        if haystack[at + i..].starts_with(needle) {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

/// The first position from `at` that is not XML white space.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Checks the content of an XML declaration (after `<?xml`, before `?>`): a version 1.x,
/// then optionally an encoding and a standalone declaration, in that order.
fn declaration(content: &str) -> Result<(), SignatureError> {
    let malformed = || malformed!("malformed XML declaration");
    let bytes = content.as_bytes();
    let mut at = 0;
    let mut seen = 0;
    loop {
        let before = at;
        at = skip_space(bytes, at);
        if at == bytes.len() {
            break;
        }
        if at == before {
            return Err(malformed());
        }
        let name_end = bytes[at..]
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .map_or(bytes.len(), |i| at + i);
        let name = &content[at..name_end];
        at = skip_space(bytes, name_end);
        if bytes.get(at) != Some(&b'=') {
            return Err(malformed());
        }
        at = skip_space(bytes, at + 1);
        let quote = match bytes.get(at) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err(malformed()),
        };
        let value_end = memchr(quote, &bytes[at + 1..])
            .map(|i| at + 1 + i)
            .ok_or_else(malformed)?;
        let value = &content[at + 1..value_end];
        at = value_end + 1;
        let (order, ok) = match name {
            "version" => (
                1,
                value
                    .strip_prefix("1.")
                    .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())),
            ),
            "encoding" => (
                2,
                value
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            ),
            "standalone" => (3, matches!(value, "yes" | "no")),
            _ => (0, false),
        };
        if !ok || order <= seen || (seen == 0 && order != 1) {
            return Err(malformed());
        }
        seen = order;
    }
    if seen == 0 {
        return Err(malformed());
    }
    Ok(())
}

#[cfg(test)]
#[path = "tokenizer_tests.rs"]
mod tests;
