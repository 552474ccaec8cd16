//! The signature tree's former reader, over quick-xml events, kept for tests only: the
//! equivalence tests (`equivalence_tests.rs`) read the same documents with it and with the
//! tokenizer-based reader and require the same trees (or a refusal by both).

use std::borrow::Cow;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::{Attr, Document, Element, MAX_DEPTH, Node, XML_NS, XMLNS_NS};
use crate::protocol::xml::{is_blank, is_xml_char};
use crate::signature::SignatureError;
use crate::signature::error::malformed;

/// `piece` (a slice of `input`, as quick-xml hands out for unmodified input) re-borrowed
/// with `input`'s lifetime; owned if it is not such a slice.
fn reborrow<'t>(input: &'t str, piece: &str) -> Cow<'t, str> {
    let base = input.as_ptr() as usize;
    let at = piece.as_ptr() as usize;
    if at >= base
        && let Some(slice) = input.get(at - base..at - base + piece.len())
        && slice.as_ptr() == piece.as_ptr()
    {
        return Cow::Borrowed(slice);
    }
    Cow::Owned(piece.to_owned())
}

/// As [`reborrow`], for a `Cow` from quick-xml.
fn reborrow_cow<'t>(input: &'t str, piece: Cow<'_, str>) -> Cow<'t, str> {
    match piece {
        Cow::Borrowed(s) => reborrow(input, s),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// The parser's state besides the document.
struct Builder<'t> {
    input: &'t str,
    doc: Document<'t>,
    /// Child nodes as read, with their parent; grouped by parent at the end.
    nodes: Vec<(usize, Node<'t>)>,
    /// Open elements, each with the position in `nodes` of its last child if that is
    /// text (for merging adjacent character data).
    open: Vec<(usize, Option<usize>)>,
    /// Namespace bindings in scope as a stack of (prefix, URI).
    scope: Vec<(Cow<'t, str>, Cow<'t, str>)>,
    /// The stack height of `scope` at each open element.
    marks: Vec<usize>,
    /// The document element has been closed.
    done: bool,
}

pub(super) fn parse_str(input: &str) -> Result<Document<'_>, SignatureError> {
    let mut reader = Reader::from_str(input);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut b = Builder {
        input,
        // Sized for typical markup density (within bounds), so that a small document rarely
        // regrows them.
        doc: Document {
            elements: Vec::with_capacity((input.len() / 64).clamp(8, 1024)),
            prolog: Vec::new(),
            epilog: Vec::new(),
            nodes: Vec::new(),
            attrs: Vec::with_capacity((input.len() / 128).clamp(8, 1024)),
            ns_decls: Vec::with_capacity(4),
        },
        nodes: Vec::with_capacity((input.len() / 32).clamp(8, 2048)),
        open: Vec::with_capacity(16),
        scope: vec![(Cow::Borrowed("xml"), Cow::Borrowed(XML_NS))],
        marks: Vec::with_capacity(16),
        done: false,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed!("{e} (at byte {})", reader.error_position()))?;
        match event {
            Event::Decl(_) => {}
            Event::DocType(_) => {
                return Err(malformed!(
                    "a DOCTYPE is not allowed in a signed XML part (no DTD, no entities)"
                ));
            }
            Event::PI(pi) => {
                let data = pi.content().trim_start_matches([' ', '\t', '\r', '\n']);
                let data = match normalize_eol(data) {
                    Some(owned) => Cow::Owned(owned),
                    None => reborrow(input, data),
                };
                let node = Node::Pi(Box::new((reborrow(input, pi.target()), data)));
                b.push_node(node);
            }
            Event::Comment(c) => {
                let node = Node::Comment(Box::new(reborrow_cow(input, c.xml10_content())));
                b.push_node(node);
            }
            Event::Start(tag) | Event::Empty(tag) if b.done => {
                return Err(malformed!(
                    "content after the document element: <{}>",
                    tag.name().as_ref().to_owned()
                ));
            }
            Event::Start(tag) => {
                let index = b.start_element(&tag)?;
                b.open.push((index, None));
                if b.open.len() > MAX_DEPTH {
                    return Err(malformed!("elements nested deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::Empty(tag) => {
                b.start_element(&tag)?;
                b.end_element(true);
            }
            Event::End(_) => b.end_element(false),
            Event::Text(text) => b.character_data(reborrow_cow(input, text.xml10_content()))?,
            Event::CData(cdata) => b.character_data(reborrow_cow(input, cdata.xml10_content()))?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                b.character_data(resolved)?;
            }
            Event::Eof => break,
        }
    }
    if !b.open.is_empty() || b.doc.elements.is_empty() {
        return Err(malformed!("the XML document is incomplete"));
    }
    // Group the child nodes by parent, keeping document order (a counting sort): each
    // element's children start after those of the elements before it.
    let mut doc = b.doc;
    let mut next = vec![0usize; doc.elements.len() + 1];
    for (parent, _) in &b.nodes {
        next[parent + 1] += 1;
    }
    for i in 1..next.len() {
        next[i] += next[i - 1];
    }
    for (i, element) in doc.elements.iter_mut().enumerate() {
        element.children = next[i]..next[i + 1];
    }
    let mut nodes = vec![Node::Element(usize::MAX); b.nodes.len()];
    for (parent, node) in b.nodes {
        nodes[next[parent]] = node;
        next[parent] += 1;
    }
    doc.nodes = nodes;
    Ok(doc)
}

/// Normalises line ends (XML 1.0 §2.11) in text quick-xml hands over raw; `None` if there
/// is nothing to change.
fn normalize_eol(text: &str) -> Option<String> {
    text.contains('\r')
        .then(|| text.replace("\r\n", "\n").replace('\r', "\n"))
}

impl<'t> Builder<'t> {
    /// Appends a comment or PI where it occurs: inside the open element, or around the
    /// root.
    fn push_node(&mut self, node: Node<'t>) {
        match self.open.last_mut() {
            Some((parent, last_text)) => {
                *last_text = None;
                self.nodes.push((*parent, node));
            }
            None if self.done => self.doc.epilog.push(node),
            None => self.doc.prolog.push(node),
        }
    }

    /// Appends character data to the open element, merging it with a preceding text node;
    /// outside the root only white space may appear (and is not part of the document).
    fn character_data(&mut self, text: Cow<'t, str>) -> Result<(), SignatureError> {
        let Some((parent, last_text)) = self.open.last_mut() else {
            return if is_blank(&text) {
                Ok(())
            } else {
                Err(malformed!("text outside the document element"))
            };
        };
        match *last_text {
            Some(at) => {
                if let (_, Node::Text(previous)) = &mut self.nodes[at] {
                    previous.to_mut().push_str(&text);
                }
            }
            None => {
                *last_text = Some(self.nodes.len());
                self.nodes.push((*parent, Node::Text(text)));
            }
        }
        Ok(())
    }

    /// Reads a start tag into a new element, pushing its namespace declarations into
    /// scope.
    fn start_element(&mut self, tag: &BytesStart<'_>) -> Result<usize, SignatureError> {
        let input = self.input;
        let raw_name = tag.name().into_inner();
        let qname = reborrow(input, raw_name);
        self.marks.push(self.scope.len());
        let decls_start = self.doc.ns_decls.len();
        let attrs_start = self.doc.attrs.len();
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| malformed!("malformed attribute in <{qname}>: {e}"))?;
            let raw_key = attr.key.into_inner();
            if attr.value.as_bytes().contains(&b'<') {
                return Err(malformed!("attribute {raw_key} of <{qname}> contains '<'"));
            }
            let value = attr
                .normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity)
                .map_err(|e| match e {
                    quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
                        entity_refused(&entity)
                    }
                    other => malformed!("attribute {raw_key} of <{qname}>: {other}"),
                })?;
            let value = reborrow_cow(input, value);
            // A value as written was checked with the whole input; only one with
            // references resolved can hold something new.
            if let Cow::Owned(resolved) = &value
                && resolved.chars().any(|c| !is_xml_char(c))
            {
                return Err(malformed!(
                    "attribute {raw_key} of <{qname}> holds a non-XML character"
                ));
            }
            let key = reborrow(input, raw_key);
            if key == "xmlns" {
                self.doc.ns_decls.push((Cow::Borrowed(""), value));
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                if value.is_empty() {
                    return Err(malformed!("prefix {prefix} undeclared in <{qname}>"));
                }
                if prefix == "xmlns" || (prefix == "xml") != (value == XML_NS) || value == XMLNS_NS
                {
                    return Err(malformed!("reserved namespace binding {key} in <{qname}>"));
                }
                let prefix = match &key {
                    Cow::Borrowed(k) => Cow::Borrowed(&k["xmlns:".len()..]),
                    Cow::Owned(k) => Cow::Owned(k["xmlns:".len()..].to_owned()),
                };
                self.doc.ns_decls.push((prefix, value));
            } else {
                let prefix_len = split_qname(&key).0.len();
                self.doc.attrs.push(Attr {
                    qname: key,
                    prefix_len,
                    ns: Cow::Borrowed(""),
                    value,
                });
            }
        }
        let decls_end = self.doc.ns_decls.len();
        self.scope
            .extend(self.doc.ns_decls[decls_start..decls_end].iter().cloned());
        let (prefix, _) = split_qname(&qname);
        let ns = match lookup(&self.scope, prefix) {
            Some(uri) => uri.clone(),
            None if prefix.is_empty() => Cow::Borrowed(""),
            None => return Err(malformed!("undeclared prefix {prefix} in <{qname}>")),
        };
        let prefix_len = prefix.len();
        let attrs_end = self.doc.attrs.len();
        for i in attrs_start..attrs_end {
            let a_prefix_len = self.doc.attrs[i].prefix_len;
            if a_prefix_len > 0 {
                let a_prefix = &self.doc.attrs[i].qname[..a_prefix_len];
                let uri = lookup(&self.scope, a_prefix)
                    .ok_or_else(|| malformed!("undeclared prefix {a_prefix} in <{qname}>"))?
                    .clone();
                self.doc.attrs[i].ns = uri;
            }
            let (done, rest) = self.doc.attrs[attrs_start..=i].split_at(i - attrs_start);
            let this = &rest[0];
            if done
                .iter()
                .any(|a| a.ns == this.ns && a.local() == this.local())
            {
                return Err(malformed!(
                    "duplicate attribute {} in <{qname}>",
                    this.qname
                ));
            }
        }
        let index = self.doc.elements.len();
        let parent = self.open.last().map(|&(p, _)| p);
        self.doc.elements.push(Element {
            parent,
            qname,
            prefix_len,
            ns,
            decls: decls_start..decls_end,
            attrs: attrs_start..attrs_end,
            children: 0..0,
        });
        if let Some((parent, last_text)) = self.open.last_mut() {
            *last_text = None;
            self.nodes.push((*parent, Node::Element(index)));
        }
        Ok(index)
    }

    /// Closes the innermost element (quick-xml has checked that the end tag matches).
    fn end_element(&mut self, empty: bool) {
        if !empty {
            self.open.pop();
        }
        if let Some(mark) = self.marks.pop() {
            self.scope.truncate(mark);
        }
        if self.open.is_empty() {
            self.done = true;
        }
    }
}

/// Resolves a character reference or one of the five predefined entities.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, SignatureError> {
    let name: &str = reference;
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(ch)) if is_xml_char(ch) => Ok(Cow::Owned(ch.to_string())),
            _ => Err(malformed!(
                "invalid character reference &{};",
                name.escape_debug()
            )),
        };
    }
    resolve_predefined_entity(name)
        .map(Cow::Borrowed)
        .ok_or_else(|| entity_refused(name))
}

/// The error for an entity other than the predefined ones.
fn entity_refused(name: &str) -> SignatureError {
    malformed!(
        "entity reference &{}; is not allowed in a signed XML part",
        name.escape_debug()
    )
}

/// Splits a qualified name into prefix and local name.
fn split_qname(qname: &str) -> (&str, &str) {
    match qname.bytes().position(|b| b == b':') {
        Some(at) => (&qname[..at], &qname[at + 1..]),
        None => ("", qname),
    }
}

/// The URI bound to `prefix` in `scope` (the innermost binding wins); an empty default
/// binding means "no namespace".
fn lookup<'s, 't>(
    scope: &'s [(Cow<'t, str>, Cow<'t, str>)],
    prefix: &str,
) -> Option<&'s Cow<'t, str>> {
    scope
        .iter()
        .rev()
        .find(|(p, _)| {
            p.len() == prefix.len() && p.bytes().zip(prefix.bytes()).all(|(x, y)| x == y)
        })
        .map(|(_, uri)| uri)
}
