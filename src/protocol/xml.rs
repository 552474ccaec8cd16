//! Shared XML helpers: encoding from the XML declaration, entity refusal, escaping.
//!
//! The three SHS documents (`shs.label`, `shs.management`, `shs.message-list`) are small,
//! flat and read whole, so they are parsed in two steps: [`parse`] turns the bytes into a
//! tiny element tree under the policy below, and each document interprets that tree.
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

use std::borrow::Cow;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

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
pub(crate) struct Decoded {
    /// The text after the byte order mark.
    pub(crate) text: String,
    /// The encoding the bytes were in.
    pub(crate) encoding: Encoding,
    /// Length of the byte order mark in the original bytes (0 or 3).
    bom_len: usize,
}

impl Decoded {
    /// The offset in the original bytes of the character at `offset` in [`Decoded::text`].
    pub(crate) fn byte_offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        match self.encoding {
            Encoding::Utf8 | Encoding::Ascii => self.bom_len + offset,
            Encoding::Latin1 => {
                let head = self.text.get(..offset).unwrap_or(&self.text);
                self.bom_len + head.chars().count()
            }
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
pub(crate) fn decode(document: &'static str, bytes: &[u8]) -> Result<Decoded, ProtocolError> {
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
    let text = match encoding {
        Encoding::Utf8 => String::from_utf8(body.to_vec()).map_err(|e| {
            let at = bom_len + e.utf8_error().valid_up_to();
            xml_error!(document, "invalid UTF-8 at byte {at}")
        })?,
        Encoding::Latin1 => body.iter().copied().map(char::from).collect(),
        Encoding::Ascii => {
            if let Some(at) = body.iter().position(|b| !b.is_ascii()) {
                return Err(xml_error!(
                    document,
                    "byte 0x{:02X} at byte {} is not US-ASCII",
                    body[at],
                    bom_len + at
                ));
            }
            body.iter().copied().map(char::from).collect()
        }
    };
    let decoded = Decoded {
        text,
        encoding,
        bom_len,
    };
    if let Some((at, ch)) = decoded.text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(xml_error!(
            document,
            "character U+{:04X} at byte {} is not allowed in XML",
            u32::from(ch),
            decoded.byte_offset(at),
        ));
    }
    Ok(decoded)
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
    let end = rest
        .windows(2)
        .position(|w| w == b"?>")
        .ok_or_else(|| error(document, "unterminated XML declaration"))?;
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

/// One element of a parsed document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// The element name as written (no namespace processing: SHS uses none).
    pub(crate) name: String,
    /// Attributes in document order, values decoded and normalised.
    pub(crate) attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub(crate) children: Vec<Element>,
    /// All character data directly inside this element, concatenated, references resolved.
    pub(crate) text: String,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of attribute `name`, owned, if present.
    pub(crate) fn attr_owned(&self, name: &str) -> Option<String> {
        self.attr(name).map(str::to_owned)
    }

    /// The value of a required attribute, or an error naming it.
    pub(crate) fn required_attr(
        &self,
        document: &'static str,
        name: &str,
    ) -> Result<&str, ProtocolError> {
        self.attr(name)
            .ok_or_else(|| xml_error!(document, "missing attribute {name} on <{}>", self.name))
    }

    /// The text of an element declared `(#PCDATA)`: refuses child elements.
    pub(crate) fn text_only(&self, document: &'static str) -> Result<String, ProtocolError> {
        match self.children.first() {
            Some(child) => Err(xml_error!(
                document,
                "<{}> may hold only text, found <{}>",
                self.name,
                child.name
            )),
            None => Ok(self.text.clone()),
        }
    }

    /// Checks that an element with element content (or `EMPTY`) holds no character data
    /// other than formatting white space.
    pub(crate) fn no_text(&self, document: &'static str) -> Result<(), ProtocolError> {
        if is_blank(&self.text) {
            Ok(())
        } else {
            Err(xml_error!(
                document,
                "unexpected text {} in <{}>",
                quote(self.text.trim_matches(is_xml_space)),
                self.name,
            ))
        }
    }

    /// Checks that an element declared `EMPTY` holds nothing but white space.
    pub(crate) fn empty(&self, document: &'static str) -> Result<(), ProtocolError> {
        if let Some(child) = self.children.first() {
            return Err(xml_error!(
                document,
                "<{}> must be empty, found <{}>",
                self.name,
                child.name
            ));
        }
        self.no_text(document)
    }
}

/// A parsed document: its root element and where the root's end tag starts.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// The root element.
    pub(crate) root: Element,
    /// Offset in [`Decoded::text`] of the `<` of the root's end tag; `None` for `<root/>`.
    pub(crate) root_end: Option<usize>,
    /// The decoded text and its encoding.
    pub(crate) decoded: Decoded,
}

/// Parses `bytes` into an element tree under the module policy and checks that the root
/// element is named `document`.
pub(crate) fn parse(document: &'static str, bytes: &[u8]) -> Result<Document, ProtocolError> {
    let decoded = decode(document, bytes)?;
    let (root, root_end) = build_tree(document, &decoded)?;
    if root.name != document {
        return Err(xml_error!(
            document,
            "the root element is <{}>, expected <{document}>",
            root.name
        ));
    }
    Ok(Document {
        root,
        root_end,
        decoded,
    })
}

/// Reads the events of a decoded document into a tree.
fn build_tree(
    document: &'static str,
    decoded: &Decoded,
) -> Result<(Element, Option<usize>), ProtocolError> {
    let mut reader = Reader::from_str(&decoded.text);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<(Element, Option<usize>)> = None;
    let mut seen_doctype = false;
    loop {
        let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            xml_error!(document, "{e} (at byte {})", decoded.byte_offset(at))
        })?;
        match event {
            Event::Decl(_) if start == 0 => {}
            Event::Decl(_) => {
                return Err(error(
                    document,
                    "the XML declaration must be at the very start of the document",
                ));
            }
            Event::DocType(_) => {
                if seen_doctype || root.is_some() || !stack.is_empty() {
                    return Err(error(document, "misplaced or repeated DOCTYPE declaration"));
                }
                seen_doctype = true;
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(start_tag) | Event::Empty(start_tag)
                if root.is_some() || stack.len() >= MAX_DEPTH =>
            {
                return Err(match &root {
                    Some((done, _)) => xml_error!(
                        document,
                        "trailing content after </{}>: element <{}>",
                        done.name,
                        start_tag.name().as_ref(),
                    ),
                    None => xml_error!(document, "elements nested deeper than {MAX_DEPTH} levels"),
                });
            }
            Event::Start(start_tag) => stack.push(element(document, &start_tag)?),
            Event::Empty(start_tag) => {
                let el = element(document, &start_tag)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some((el, None)),
                }
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the open element.
                let el = stack
                    .pop()
                    .ok_or_else(|| error(document, "end tag without start tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some((el, Some(start))),
                }
            }
            Event::Text(text) => {
                character_data(document, &mut stack, &root, &text.xml10_content())?;
            }
            Event::CData(cdata) => {
                character_data(document, &mut stack, &root, &cdata.xml10_content())?;
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(document, &reference)?;
                character_data(document, &mut stack, &root, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_error!(
            document,
            "the document ends inside <{}>",
            open.name
        ));
    }
    root.ok_or_else(|| error(document, "no root element"))
}

/// Appends character data to the open element; outside the root only white space may
/// appear.
fn character_data(
    document: &'static str,
    stack: &mut [Element],
    root: &Option<(Element, Option<usize>)>,
    text: &str,
) -> Result<(), ProtocolError> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(text);
            Ok(())
        }
        None if is_blank(text) => Ok(()),
        None => Err(error(
            document,
            match root {
                Some((done, _)) => format!(
                    "trailing content after </{}>: {}",
                    done.name,
                    quote(text.trim_matches(is_xml_space))
                ),
                None => format!(
                    "text before the root element: {}",
                    quote(text.trim_matches(is_xml_space))
                ),
            },
        )),
    }
}

/// Resolves a reference in text: a character reference or one of the five predefined
/// entities. Every other entity is refused, declared or not.
fn resolve_reference(
    document: &'static str,
    reference: &BytesRef<'_>,
) -> Result<Cow<'static, str>, ProtocolError> {
    let name: &str = reference;
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(ch)) if is_xml_char(ch) => Ok(Cow::Owned(ch.to_string())),
            _ => Err(xml_error!(
                document,
                "invalid character reference &{};",
                name.escape_debug(),
            )),
        };
    }
    resolve_predefined_entity(name)
        .map(Cow::Borrowed)
        .ok_or_else(|| entity_refused(document, name))
}

/// The error for a use of an entity other than the predefined ones.
fn entity_refused(document: &'static str, name: &str) -> ProtocolError {
    xml_error!(
        document,
        "entity reference &{}; is not allowed (only the predefined entities and character references are)",
        name.escape_debug(),
    )
}

/// Builds an element (without children yet) from a start tag.
fn element(document: &'static str, tag: &BytesStart<'_>) -> Result<Element, ProtocolError> {
    let name = tag.name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr =
            attr.map_err(|e| xml_error!(document, "malformed attribute in <{name}>: {e}"))?;
        let key = attr.key.as_ref().to_owned();
        if attr.value.contains('<') {
            return Err(xml_error!(
                document,
                "attribute {key} of <{name}> contains '<'"
            ));
        }
        let value = attr
            .normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity)
            .map_err(|e| match e {
                quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
                    entity_refused(document, &entity)
                }
                other => xml_error!(document, "attribute {key} of <{name}>: {other}"),
            })?;
        if let Some(bad) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(xml_error!(
                document,
                "attribute {key} of <{name}> refers to character U+{:04X}, not allowed in XML",
                u32::from(bad),
            ));
        }
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Appends `text` escaped for character data: `&`, `<`, `>` and CR (which would otherwise
/// be lost to line-end normalisation) become references. Characters that XML cannot hold
/// become U+FFFD; a value read by [`parse`] never contains one.
pub(crate) fn push_text(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends `value` escaped for a double-quoted attribute value. Tab, LF and CR become
/// character references so that attribute-value normalisation gives them back unchanged.
pub(crate) fn push_attr_value(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// A minimal pretty-printing writer for the SHS documents: one element per line, indented
/// by four spaces, text-only elements on one line (so no white space is added to values).
#[derive(Debug, Default)]
pub(crate) struct XmlWriter {
    out: String,
    depth: usize,
}

/// An attribute to write: `None` values are left out.
pub(crate) type Attr<'a> = (&'a str, Option<&'a str>);

impl XmlWriter {
    /// A UTF-8 document with its declaration and a DOCTYPE naming the SHS DTD, as Axel
    /// writes them (the DTD is never fetched by SHS nodes; it names the document type).
    pub(crate) fn document(root: &str, dtd: &str) -> Self {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE ");
        out.push_str(root);
        out.push_str(" SYSTEM \"");
        out.push_str(dtd);
        out.push_str("\">\n");
        XmlWriter { out, depth: 0 }
    }

    /// A fragment (no declaration) starting at `depth` levels of indentation.
    pub(crate) fn fragment(depth: usize) -> Self {
        XmlWriter {
            out: String::new(),
            depth,
        }
    }

    fn open_tag(&mut self, name: &str, attrs: &[Attr<'_>]) {
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attrs {
            if let Some(value) = value {
                self.out.push(' ');
                self.out.push_str(key);
                self.out.push_str("=\"");
                push_attr_value(&mut self.out, value);
                self.out.push('"');
            }
        }
    }

    /// `<name attrs>` on its own line; children follow one level deeper.
    pub(crate) fn start(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.open_tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    /// `</name>` closing the last [`XmlWriter::start`].
    pub(crate) fn end(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        for _ in 0..self.depth {
            self.out.push_str("    ");
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name attrs/>`.
    pub(crate) fn empty(&mut self, name: &str, attrs: &[Attr<'_>]) {
        self.open_tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name attrs>text</name>` on one line.
    pub(crate) fn text(&mut self, name: &str, attrs: &[Attr<'_>], text: &str) {
        self.open_tag(name, attrs);
        self.out.push('>');
        push_text(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// The text written so far.
    pub(crate) fn into_string(self) -> String {
        self.out
    }

    /// The document as UTF-8 bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out.into_bytes()
    }
}
