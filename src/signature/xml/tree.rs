//! Reading: an XML data part into a namespace-aware tree that keeps everything C14N needs
//! (element order, mixed content, comments, processing instructions, namespace
//! declarations as written) and nothing a signature verifier must not trust (no DTD).

use std::rc::Rc;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::protocol::xml::{decode, is_blank, is_xml_char};
use crate::signature::SignatureError;
use crate::signature::error::malformed;

/// The namespace the `xml` prefix is bound to by definition.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of namespace declarations.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Deepest element nesting accepted: the canonicaliser recurses, and no e-form needs more.
pub(crate) const MAX_DEPTH: usize = 256;

/// A parsed document: an arena of elements, the root's index and what lies around it.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Every element, parents before children; index 0 is the root.
    pub(crate) elements: Vec<Element>,
    /// Comments and processing instructions before the root element.
    pub(crate) prolog: Vec<Node>,
    /// Comments and processing instructions after the root element.
    pub(crate) epilog: Vec<Node>,
}

/// A node in element content (or around the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// A child element: its index in [`Document::elements`].
    Element(usize),
    /// Character data (adjacent text, references and CDATA sections merged).
    Text(String),
    /// A comment's text.
    Comment(String),
    /// A processing instruction: target and data (without the leading white space).
    Pi(String, String),
}

/// One element: its expanded name, namespace declarations and attributes as written.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    /// The parent element's index; `None` for the root.
    pub(crate) parent: Option<usize>,
    /// The name as written, `prefix:local` or `local`.
    pub(crate) qname: String,
    /// The length of the prefix in `qname` (0 without one).
    prefix_len: usize,
    /// The namespace URI the name is in (empty for none), shared with its declaration.
    pub(crate) ns: Rc<str>,
    /// Namespace declarations on this element: prefix (empty for the default) and URI.
    pub(crate) ns_decls: Vec<(String, String)>,
    /// The other attributes, in document order.
    pub(crate) attrs: Vec<Attr>,
    /// Child nodes in document order.
    pub(crate) children: Vec<Node>,
}

/// An attribute other than a namespace declaration.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    /// The name as written.
    pub(crate) qname: String,
    /// The length of the prefix in `qname` (0 without one).
    prefix_len: usize,
    /// The namespace URI (empty for an unprefixed attribute).
    pub(crate) ns: Rc<str>,
    /// The normalised value, references resolved.
    pub(crate) value: String,
}

/// The prefix and local name of a qualified name whose prefix is `prefix_len` long.
fn parts(qname: &str, prefix_len: usize) -> (&str, &str) {
    if prefix_len == 0 {
        ("", qname)
    } else {
        (&qname[..prefix_len], &qname[prefix_len + 1..])
    }
}

impl Element {
    /// The prefix (empty without one).
    pub(crate) fn prefix(&self) -> &str {
        parts(&self.qname, self.prefix_len).0
    }

    /// The local name.
    pub(crate) fn local(&self) -> &str {
        parts(&self.qname, self.prefix_len).1
    }

    /// The value of the unprefixed attribute `local`, if present.
    pub(crate) fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.prefix_len == 0 && a.qname == local)
            .map(|a| a.value.as_str())
    }

    /// True if this element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        &*self.ns == ns && self.local() == local
    }
}

impl Attr {
    /// The prefix (empty without one).
    pub(crate) fn prefix(&self) -> &str {
        parts(&self.qname, self.prefix_len).0
    }

    /// The local name.
    pub(crate) fn local(&self) -> &str {
        parts(&self.qname, self.prefix_len).1
    }
}

impl Document {
    /// The root element's index.
    pub(crate) const ROOT: usize = 0;

    /// The child elements of `index`, in order.
    pub(crate) fn child_elements(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.elements[index]
            .children
            .iter()
            .filter_map(|n| match n {
                Node::Element(i) => Some(*i),
                _ => None,
            })
    }

    /// The concatenated character data directly inside `index`.
    pub(crate) fn text(&self, index: usize) -> String {
        let mut out = String::new();
        for node in &self.elements[index].children {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out
    }

    /// True if `ancestor` is `index` or one of its ancestors.
    pub(crate) fn is_within(&self, index: usize, ancestor: usize) -> bool {
        let mut at = Some(index);
        while let Some(i) = at {
            if i == ancestor {
                return true;
            }
            at = self.elements[i].parent;
        }
        false
    }
}

/// Parses an XML data part. Refuses a DOCTYPE (so no entity can be declared, let alone
/// expanded), any entity reference other than the five predefined ones, undeclared
/// prefixes and nesting deeper than [`MAX_DEPTH`]. The encoding comes from the XML
/// declaration, as for SHS documents.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document, SignatureError> {
    let decoded = decode("signed XML", bytes).map_err(|e| malformed!("{e}"))?;
    let mut reader = Reader::from_str(&decoded.text);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut doc = Document {
        elements: Vec::new(),
        prolog: Vec::new(),
        epilog: Vec::new(),
    };
    // Open elements, and the namespace bindings in scope as a stack of (prefix, URI) with
    // the stack height at each open element.
    let mut open: Vec<usize> = Vec::new();
    let mut scope: Vec<(String, Rc<str>)> = vec![("xml".into(), Rc::from(XML_NS))];
    let mut marks: Vec<usize> = Vec::new();
    let mut done = false;
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
                let node = Node::Pi(pi.target().to_owned(), normalize_eol(data));
                push_node(&mut doc, &open, done, node);
            }
            Event::Comment(c) => {
                let node = Node::Comment(c.xml10_content().into_owned());
                push_node(&mut doc, &open, done, node);
            }
            Event::Start(tag) | Event::Empty(tag) if done => {
                return Err(malformed!(
                    "content after the document element: <{}>",
                    tag.name().as_ref().to_owned()
                ));
            }
            Event::Start(tag) => {
                let index = start_element(&mut doc, &open, &mut scope, &mut marks, &tag)?;
                open.push(index);
                if open.len() > MAX_DEPTH {
                    return Err(malformed!("elements nested deeper than {MAX_DEPTH} levels"));
                }
            }
            Event::Empty(tag) => {
                start_element(&mut doc, &open, &mut scope, &mut marks, &tag)?;
                end_element(&mut open, &mut scope, &mut marks, &mut done, true);
            }
            Event::End(_) => end_element(&mut open, &mut scope, &mut marks, &mut done, false),
            Event::Text(text) => character_data(&mut doc, &open, &text.xml10_content())?,
            Event::CData(cdata) => character_data(&mut doc, &open, &cdata.xml10_content())?,
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                character_data(&mut doc, &open, &resolved)?;
            }
            Event::Eof => break,
        }
    }
    if !open.is_empty() || doc.elements.is_empty() {
        return Err(malformed!("the XML document is incomplete"));
    }
    Ok(doc)
}

/// Normalises line ends (XML 1.0 §2.11) in text quick-xml hands over raw.
fn normalize_eol(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Appends a comment or PI where it occurs: inside the open element, or around the root.
fn push_node(doc: &mut Document, open: &[usize], done: bool, node: Node) {
    match open.last() {
        Some(&parent) => doc.elements[parent].children.push(node),
        None if done => doc.epilog.push(node),
        None => doc.prolog.push(node),
    }
}

/// Appends character data to the open element, merging it with a preceding text node;
/// outside the root only white space may appear (and is not part of the document).
fn character_data(doc: &mut Document, open: &[usize], text: &str) -> Result<(), SignatureError> {
    let Some(&parent) = open.last() else {
        return if is_blank(text) {
            Ok(())
        } else {
            Err(malformed!("text outside the document element"))
        };
    };
    let children = &mut doc.elements[parent].children;
    match children.last_mut() {
        Some(Node::Text(previous)) => previous.push_str(text),
        _ => children.push(Node::Text(text.to_owned())),
    }
    Ok(())
}

/// Resolves a character reference or one of the five predefined entities.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, SignatureError> {
    let name: &str = reference;
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(ch)) if is_xml_char(ch) => Ok(ch.to_string()),
            _ => Err(malformed!(
                "invalid character reference &{};",
                name.escape_debug()
            )),
        };
    }
    resolve_predefined_entity(name)
        .map(str::to_owned)
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
    match qname.split_once(':') {
        Some((prefix, local)) => (prefix, local),
        None => ("", qname),
    }
}

/// The URI bound to `prefix` in `scope` (the innermost binding wins); an empty default
/// binding means "no namespace".
fn lookup<'a>(scope: &'a [(String, Rc<str>)], prefix: &str) -> Option<&'a Rc<str>> {
    scope
        .iter()
        .rev()
        .find(|(p, _)| {
            p.len() == prefix.len() && p.bytes().zip(prefix.bytes()).all(|(x, y)| x == y)
        })
        .map(|(_, uri)| uri)
}

/// Reads a start tag into a new element, pushing its namespace declarations into scope.
fn start_element(
    doc: &mut Document,
    open: &[usize],
    scope: &mut Vec<(String, Rc<str>)>,
    marks: &mut Vec<usize>,
    tag: &BytesStart<'_>,
) -> Result<usize, SignatureError> {
    let qname = tag.name().as_ref().to_owned();
    marks.push(scope.len());
    let mut ns_decls = Vec::new();
    let mut raw_attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| malformed!("malformed attribute in <{qname}>: {e}"))?;
        let key = attr.key.as_ref().to_owned();
        if attr.value.contains('<') {
            return Err(malformed!("attribute {key} of <{qname}> contains '<'"));
        }
        let value = attr
            .normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_predefined_entity)
            .map_err(|e| match e {
                quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
                    entity_refused(&entity)
                }
                other => malformed!("attribute {key} of <{qname}>: {other}"),
            })?
            .into_owned();
        if value.chars().any(|c| !is_xml_char(c)) {
            return Err(malformed!(
                "attribute {key} of <{qname}> holds a non-XML character"
            ));
        }
        if key == "xmlns" {
            ns_decls.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            if value.is_empty() {
                return Err(malformed!("prefix {prefix} undeclared in <{qname}>"));
            }
            if prefix == "xmlns" || (prefix == "xml") != (value == XML_NS) || value == XMLNS_NS {
                return Err(malformed!("reserved namespace binding {key} in <{qname}>"));
            }
            ns_decls.push((prefix.to_owned(), value));
        } else {
            raw_attrs.push((key, value));
        }
    }
    for (prefix, uri) in &ns_decls {
        scope.push((prefix.clone(), Rc::from(uri.as_str())));
    }
    let (prefix, _) = split_qname(&qname);
    let ns = match lookup(scope, prefix) {
        Some(uri) => Rc::clone(uri),
        None if prefix.is_empty() => Rc::from(""),
        None => return Err(malformed!("undeclared prefix {prefix} in <{qname}>")),
    };
    let prefix_len = prefix.len();
    let mut attrs: Vec<Attr> = Vec::with_capacity(raw_attrs.len());
    for (key, value) in raw_attrs {
        let (a_prefix, a_local) = split_qname(&key);
        let a_ns = if a_prefix.is_empty() {
            Rc::from("")
        } else {
            Rc::clone(
                lookup(scope, a_prefix)
                    .ok_or_else(|| malformed!("undeclared prefix {a_prefix} in <{qname}>"))?,
            )
        };
        if attrs.iter().any(|a| a.ns == a_ns && a.local() == a_local) {
            return Err(malformed!("duplicate attribute {key} in <{qname}>"));
        }
        attrs.push(Attr {
            prefix_len: a_prefix.len(),
            qname: key,
            ns: a_ns,
            value,
        });
    }
    let index = doc.elements.len();
    doc.elements.push(Element {
        parent: open.last().copied(),
        prefix_len,
        qname,
        ns,
        ns_decls,
        attrs,
        children: Vec::new(),
    });
    if let Some(&parent) = open.last() {
        doc.elements[parent].children.push(Node::Element(index));
    }
    Ok(index)
}

/// Closes the innermost element (quick-xml has checked that the end tag matches).
fn end_element(
    open: &mut Vec<usize>,
    scope: &mut Vec<(String, Rc<str>)>,
    marks: &mut Vec<usize>,
    done: &mut bool,
    empty: bool,
) {
    if !empty {
        open.pop();
    }
    if let Some(mark) = marks.pop() {
        scope.truncate(mark);
    }
    if open.is_empty() {
        *done = true;
    }
}
