//! Reading: decoded bytes into a small element tree under the policy of [`super`].

use std::borrow::Cow;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::*;

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
