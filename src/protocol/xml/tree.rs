//! Reading: decoded bytes into a small element tree under the policy of [`super`].

use std::borrow::Cow;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::*;

/// One element of a parsed document, borrowing from the decoded text `'t`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element<'t> {
    /// The element name as written (no namespace processing: SHS uses none).
    pub(crate) name: &'t str,
    /// Attributes in document order, values decoded and normalised (borrowed unless
    /// normalising changed them).
    pub(crate) attrs: Vec<(&'t str, Cow<'t, str>)>,
    /// Child elements in document order.
    pub(crate) children: Vec<Element<'t>>,
    /// All character data directly inside this element, concatenated, references resolved
    /// (borrowed when it is one piece of text as written).
    pub(crate) text: Cow<'t, str>,
}

impl Element<'_> {
    /// The value of attribute `name`, if present.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_ref())
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
            None => Ok(self.text.as_ref().to_owned()),
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
pub(crate) struct Document<'t> {
    /// The root element.
    pub(crate) root: Element<'t>,
    /// Offset in [`Decoded::text`] of the `<` of the root's end tag; `None` for `<root/>`.
    pub(crate) root_end: Option<usize>,
}

/// Parses a decoded document into an element tree under the module policy and checks
/// that the root element is named `document`.
pub(crate) fn parse<'t>(
    document: &'static str,
    decoded: &'t Decoded<'_>,
) -> Result<Document<'t>, ProtocolError> {
    let (root, root_end) = build_tree(document, decoded)?;
    if root.name != document {
        return Err(xml_error!(
            document,
            "the root element is <{}>, expected <{document}>",
            root.name
        ));
    }
    Ok(Document { root, root_end })
}

/// Reads the events of a decoded document into a tree.
fn build_tree<'t>(
    document: &'static str,
    decoded: &'t Decoded<'_>,
) -> Result<(Element<'t>, Option<usize>), ProtocolError> {
    let input: &'t str = &decoded.text;
    let mut reader = Reader::from_str(input);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut stack: Vec<Element<'t>> = Vec::new();
    let mut root: Option<(Element<'t>, Option<usize>)> = None;
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
            Event::Start(start_tag) => stack.push(element(document, input, &start_tag)?),
            Event::Empty(start_tag) => {
                let el = element(document, input, &start_tag)?;
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
                character_data(document, &mut stack, &root, text.xml10_content())?;
            }
            Event::CData(cdata) => {
                character_data(document, &mut stack, &root, cdata.xml10_content())?;
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(document, &reference)?;
                character_data(document, &mut stack, &root, resolved)?;
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
/// appear. The first piece is kept as it came (borrowed from the input when it needed no
/// change); only a second piece makes the element's text a string of its own.
fn character_data<'t>(
    document: &'static str,
    stack: &mut [Element<'t>],
    root: &Option<(Element<'t>, Option<usize>)>,
    text: Cow<'t, str>,
) -> Result<(), ProtocolError> {
    match stack.last_mut() {
        Some(open) if open.text.is_empty() => {
            open.text = text;
            Ok(())
        }
        Some(open) => {
            open.text.to_mut().push_str(&text);
            Ok(())
        }
        None if is_blank(&text) => Ok(()),
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

/// Builds an element (without children yet) from a start tag of `input`.
fn element<'t>(
    document: &'static str,
    input: &'t str,
    tag: &BytesStart<'_>,
) -> Result<Element<'t>, ProtocolError> {
    let name_len = tag.name().as_ref().len();
    let Some(content) = within(input, tag) else {
        return Err(xml_error!(
            document,
            "the parser returned a tag that is not in the document"
        ));
    };
    let name = content.get(..name_len).unwrap_or(content);
    let mut attrs = Vec::new();
    for attr in Attributes::new(content, name_len) {
        let attr =
            attr.map_err(|e| xml_error!(document, "malformed attribute in <{name}>: {e}"))?;
        let key: &'t str = attr.key.into_inner();
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
        // A value as written was checked with the whole text ([`super::decode`]); only
        // one that character references changed can hold a character XML refuses.
        let refused = match &value {
            Cow::Owned(changed) => changed.chars().find(|&c| !is_xml_char(c)),
            Cow::Borrowed(_) => None,
        };
        if let Some(bad) = refused {
            return Err(xml_error!(
                document,
                "attribute {key} of <{name}> refers to character U+{:04X}, not allowed in XML",
                u32::from(bad),
            ));
        }
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        text: Cow::Borrowed(""),
    })
}

/// `piece` as a slice of `input` with `input`'s lifetime, if it lies within it. quick-xml
/// reading from a string hands out tags as slices of that string, but tied to the event;
/// the tree keeps them for as long as the text lives instead of copying each one.
fn within<'t>(input: &'t str, piece: &str) -> Option<&'t str> {
    let start = (piece.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
    let slice = input.get(start..start.checked_add(piece.len())?)?;
    (slice.as_ptr() == piece.as_ptr()).then_some(slice)
}
