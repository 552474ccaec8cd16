//! Reading: an XML data part into a namespace-aware tree that keeps everything C14N needs
//! (element order, mixed content, comments, processing instructions, namespace
//! declarations as written) and nothing a signature verifier must not trust (no DTD).

use std::borrow::Cow;
use std::cell::RefCell;
use std::mem::take;
use std::ops::Range;

use super::reuse::{self, keep, recast};
use super::tokenizer::{QName, RawAttr, Token, Tokenizer};
use crate::protocol::xml::decode_borrowed;
use crate::signature::SignatureError;
use crate::signature::error::malformed;

/// The namespace the `xml` prefix is bound to by definition.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of namespace declarations.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Deepest element nesting accepted: the canonicaliser recurses, and no e-form needs more.
pub(crate) const MAX_DEPTH: usize = 256;

/// A parsed document: an arena of elements, the root's index and what lies around it.
/// Names, values and text borrow from the input wherever they are as written (`'t` is the
/// input's lifetime); the attributes, namespace declarations and child nodes of all
/// elements live in three shared arenas, each element holding its ranges in them, so that
/// reading a small document costs a handful of allocations rather than several per
/// element.
#[derive(Debug, Clone)]
pub(crate) struct Document<'t> {
    /// Every element, parents before children; index 0 is the root.
    pub(crate) elements: Vec<Element<'t>>,
    /// Comments and processing instructions before the root element.
    pub(crate) prolog: Vec<Node<'t>>,
    /// Comments and processing instructions after the root element.
    pub(crate) epilog: Vec<Node<'t>>,
    /// The child nodes of every element, grouped by parent (each group in document
    /// order; the groups in the order the elements end).
    nodes: Vec<Node<'t>>,
    /// The attributes of every element, grouped by element.
    attrs: Vec<Attr<'t>>,
    /// The namespace declarations of every element, grouped by element: prefix (empty for
    /// the default) and URI.
    ns_decls: Vec<(Cow<'t, str>, Cow<'t, str>)>,
}

/// A node in element content (or around the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node<'t> {
    /// A child element: its index in [`Document::elements`].
    Element(usize),
    /// Character data (adjacent text, references and CDATA sections merged).
    Text(Cow<'t, str>),
    /// A comment's text (boxed as [`Node::Pi`] is, and for the same reason: only one
    /// variant of three words leaves room for the others beside it).
    Comment(Box<Cow<'t, str>>),
    /// A processing instruction: target and data (without the leading white space).
    /// Boxed, as processing instructions are rare: the other variants fit in 24 bytes,
    /// and every node is pushed and moved (twice) while reading, which a 48-byte node
    /// made several times dearer.
    Pi(Box<(Cow<'t, str>, Cow<'t, str>)>),
}

// A node is three words (see [`Node::Pi`]).
const _: () = assert!(size_of::<Node<'static>>() <= 3 * size_of::<usize>());

/// One element: its expanded name, and where its namespace declarations, attributes and
/// children are in the document's arenas.
#[derive(Debug, Clone)]
pub(crate) struct Element<'t> {
    /// The parent element's index; `None` for the root.
    pub(crate) parent: Option<usize>,
    /// The name as written, `prefix:local` or `local`.
    pub(crate) qname: Cow<'t, str>,
    /// The length of the prefix in `qname` (0 without one).
    prefix_len: usize,
    /// The namespace URI the name is in (empty for none).
    pub(crate) ns: Cow<'t, str>,
    /// Namespace declarations on this element, in [`Document::ns_decls`].
    decls: Range<usize>,
    /// The other attributes, in document order, in [`Document::attrs`].
    attrs: Range<usize>,
    /// Child nodes in document order, in [`Document::nodes`].
    children: Range<usize>,
}

/// An attribute other than a namespace declaration.
#[derive(Debug, Clone)]
pub(crate) struct Attr<'t> {
    /// The name as written.
    pub(crate) qname: Cow<'t, str>,
    /// The length of the prefix in `qname` (0 without one).
    prefix_len: usize,
    /// The namespace URI (empty for an unprefixed attribute).
    pub(crate) ns: Cow<'t, str>,
    /// The normalised value, references resolved.
    pub(crate) value: Cow<'t, str>,
}

/// The prefix and local name of a qualified name whose prefix is `prefix_len` long.
fn parts(qname: &str, prefix_len: usize) -> (&str, &str) {
    if prefix_len == 0 {
        ("", qname)
    } else {
        (&qname[..prefix_len], &qname[prefix_len + 1..])
    }
}

impl Element<'_> {
    /// The prefix (empty without one).
    pub(crate) fn prefix(&self) -> &str {
        parts(&self.qname, self.prefix_len).0
    }

    /// The local name.
    pub(crate) fn local(&self) -> &str {
        parts(&self.qname, self.prefix_len).1
    }

    /// True if this element is `local` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, local: &str) -> bool {
        // The local name first: it is short and usually tells.
        self.local() == local && *self.ns == *ns
    }
}

impl Attr<'_> {
    /// The prefix (empty without one).
    pub(crate) fn prefix(&self) -> &str {
        parts(&self.qname, self.prefix_len).0
    }

    /// The local name.
    pub(crate) fn local(&self) -> &str {
        parts(&self.qname, self.prefix_len).1
    }
}

impl<'t> Document<'t> {
    /// The root element's index.
    pub(crate) const ROOT: usize = 0;

    /// The namespace declarations written on element `index` (prefix, URI).
    pub(crate) fn ns_decls(&self, index: usize) -> &[(Cow<'t, str>, Cow<'t, str>)] {
        &self.ns_decls[self.elements[index].decls.clone()]
    }

    /// The attributes of element `index` other than namespace declarations, in order.
    pub(crate) fn attrs(&self, index: usize) -> &[Attr<'t>] {
        &self.attrs[self.elements[index].attrs.clone()]
    }

    /// The child nodes of element `index`, in order.
    pub(crate) fn children(&self, index: usize) -> &[Node<'t>] {
        &self.nodes[self.elements[index].children.clone()]
    }

    /// The value of the unprefixed attribute `local` of element `index`, if present.
    pub(crate) fn attr(&self, index: usize, local: &str) -> Option<&str> {
        self.attrs(index)
            .iter()
            .find(|a| a.prefix_len == 0 && a.qname == local)
            .map(|a| &*a.value)
    }

    /// The child elements of `index`, in order.
    pub(crate) fn child_elements(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.children(index).iter().filter_map(|n| match n {
            Node::Element(i) => Some(*i),
            _ => None,
        })
    }

    /// The concatenated character data directly inside `index` (borrowed when there is
    /// one piece of it).
    pub(crate) fn text(&self, index: usize) -> Cow<'_, str> {
        let mut texts = self.children(index).iter().filter_map(|n| match n {
            Node::Text(t) => Some(&**t),
            _ => None,
        });
        let Some(first) = texts.next() else {
            return Cow::Borrowed("");
        };
        let Some(second) = texts.next() else {
            return Cow::Borrowed(first);
        };
        let mut out = String::from(first);
        out.push_str(second);
        texts.for_each(|t| out.push_str(t));
        Cow::Owned(out)
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

    /// The same document owning all its text (for input that had to be converted).
    fn into_owned(mut self) -> Document<'static> {
        fn own(text: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(text.into_owned())
        }
        fn own_node(node: Node<'_>) -> Node<'static> {
            match node {
                Node::Element(i) => Node::Element(i),
                Node::Text(t) => Node::Text(own(t)),
                Node::Comment(t) => Node::Comment(Box::new(own(*t))),
                Node::Pi(pi) => {
                    let (target, data) = *pi;
                    Node::Pi(Box::new((own(target), own(data))))
                }
            }
        }
        Document {
            elements: take(&mut self.elements)
                .into_iter()
                .map(|e| Element {
                    parent: e.parent,
                    qname: own(e.qname),
                    prefix_len: e.prefix_len,
                    ns: own(e.ns),
                    decls: e.decls,
                    attrs: e.attrs,
                    children: e.children,
                })
                .collect(),
            prolog: take(&mut self.prolog).into_iter().map(own_node).collect(),
            epilog: take(&mut self.epilog).into_iter().map(own_node).collect(),
            nodes: take(&mut self.nodes).into_iter().map(own_node).collect(),
            attrs: take(&mut self.attrs)
                .into_iter()
                .map(|a| Attr {
                    qname: own(a.qname),
                    prefix_len: a.prefix_len,
                    ns: own(a.ns),
                    value: own(a.value),
                })
                .collect(),
            ns_decls: take(&mut self.ns_decls)
                .into_iter()
                .map(|(p, u)| (own(p), own(u)))
                .collect(),
        }
    }
}

/// A document's arenas go back to the thread's spare buffers (emptied), for the next
/// document read on this thread.
impl Drop for Document<'_> {
    fn drop(&mut self) {
        let elements = take(&mut self.elements);
        let nodes = take(&mut self.nodes);
        let attrs = take(&mut self.attrs);
        let ns_decls = take(&mut self.ns_decls);
        reuse::give(&SPARE, |spare| {
            keep(&mut spare.elements, elements);
            keep(&mut spare.nodes, nodes);
            keep(&mut spare.attrs, attrs);
            keep(&mut spare.ns_decls, ns_decls);
        });
    }
}

/// The buffers of reading a document that a thread keeps for the next one (see
/// `reuse.rs`): empty, with `'static` standing in for the input's lifetime.
#[derive(Default)]
struct Spare {
    elements: Vec<Element<'static>>,
    nodes: Vec<Node<'static>>,
    attrs: Vec<Attr<'static>>,
    ns_decls: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pending: Vec<Node<'static>>,
    open: Vec<Open>,
    scope: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    open_names: Vec<QName<'static>>,
    tag_attrs: Vec<RawAttr<'static>>,
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// Parses an XML data part. Refuses a DOCTYPE (so no entity can be declared, let alone
/// expanded), any entity reference other than the five predefined ones, undeclared
/// prefixes and nesting deeper than [`MAX_DEPTH`] (and whatever else is not well-formed,
/// see `tokenizer.rs`). The encoding comes from the XML declaration, as for SHS
/// documents; UTF-8 (and ASCII) input is read in place.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document<'_>, SignatureError> {
    let (text, _, _) = decode_borrowed("signed XML", bytes).map_err(|e| malformed!("{e}"))?;
    match text {
        Cow::Borrowed(text) => parse_str(text),
        Cow::Owned(text) => parse_str(&text).map(Document::into_owned),
    }
}

/// The parser's state besides the document.
struct Builder<'t> {
    doc: Document<'t>,
    /// The child nodes read so far of each open element, outermost first; an element's
    /// are moved to the document when it ends, so that each element's children end up
    /// together without sorting.
    pending: Vec<Node<'t>>,
    /// The open elements, innermost last.
    open: Vec<Open>,
    /// Namespace bindings in scope as a stack of (prefix, URI).
    scope: Vec<(Cow<'t, str>, Cow<'t, str>)>,
    /// The document element has been closed.
    done: bool,
}

/// An open element.
struct Open {
    /// Its index in the document.
    index: usize,
    /// Where its children start in [`Builder::pending`].
    children: usize,
    /// The position of its last child in [`Builder::pending`] if that is text (for
    /// merging adjacent character data).
    last_text: Option<usize>,
    /// The height of [`Builder::scope`] outside it.
    scope: usize,
}

/// Reads a decoded document into a tree, in buffers the thread kept from the previous
/// document (handed back here, and by the document when it is dropped).
fn parse_str(input: &str) -> Result<Document<'_>, SignatureError> {
    let spare = reuse::take(&SPARE);
    let mut tokens =
        Tokenizer::with_buffers(input, recast(spare.open_names), recast(spare.tag_attrs));
    let mut b = Builder {
        doc: Document {
            elements: recast(spare.elements),
            prolog: Vec::new(),
            epilog: Vec::new(),
            nodes: recast(spare.nodes),
            attrs: recast(spare.attrs),
            ns_decls: recast(spare.ns_decls),
        },
        pending: recast(spare.pending),
        open: spare.open,
        scope: recast(spare.scope),
        done: false,
    };
    // Sized for typical markup density (within bounds), so that a small document rarely
    // regrows them.
    b.doc.elements.reserve((input.len() / 64).clamp(8, 1024));
    b.doc.nodes.reserve((input.len() / 32).clamp(8, 2048));
    b.doc.attrs.reserve((input.len() / 128).clamp(8, 1024));
    b.doc.ns_decls.reserve(4);
    b.pending.reserve(32);
    b.open.reserve(16);
    b.scope.reserve(8);
    let read = b.read(&mut tokens);
    let (open_names, tag_attrs) = tokens.into_buffers();
    let Builder {
        doc,
        pending,
        open,
        scope,
        ..
    } = b;
    reuse::give(&SPARE, |spare| {
        keep(&mut spare.pending, pending);
        keep(&mut spare.open, open);
        keep(&mut spare.scope, scope);
        keep(&mut spare.open_names, open_names);
        keep(&mut spare.tag_attrs, tag_attrs);
    });
    read.map(|()| doc)
}

impl<'t> Builder<'t> {
    /// Reads every token into the document.
    fn read(&mut self, tokens: &mut Tokenizer<'t>) -> Result<(), SignatureError> {
        self.scope
            .push((Cow::Borrowed("xml"), Cow::Borrowed(XML_NS)));
        while let Some(token) = tokens.next_token()? {
            match token {
                Token::Declaration => {}
                Token::Pi(target, data) => {
                    self.push_node(Node::Pi(Box::new((Cow::Borrowed(target), data))))
                }
                Token::Comment(text) => self.push_node(Node::Comment(Box::new(text))),
                Token::Start(name) => {
                    self.start_element(name, tokens.attributes_mut())?;
                    if self.open.len() > MAX_DEPTH {
                        return Err(malformed!("elements nested deeper than {MAX_DEPTH} levels"));
                    }
                }
                Token::Empty(name) => {
                    self.start_element(name, tokens.attributes_mut())?;
                    self.end_element();
                }
                Token::End(_) => self.end_element(),
                Token::Text(text) | Token::CData(text) => self.character_data(text),
            }
        }
        Ok(())
    }

    /// Appends a comment or PI where it occurs: inside the open element, or around the
    /// root.
    fn push_node(&mut self, node: Node<'t>) {
        match self.open.last_mut() {
            Some(open) => {
                open.last_text = None;
                self.pending.push(node);
            }
            None if self.done => self.doc.epilog.push(node),
            None => self.doc.prolog.push(node),
        }
    }

    /// Appends character data to the open element, merging it with a preceding text node
    /// (the tokenizer yields character data only inside the document element).
    fn character_data(&mut self, text: Cow<'t, str>) {
        let Some(open) = self.open.last_mut() else {
            return;
        };
        match open.last_text {
            Some(at) => {
                if let Node::Text(previous) = &mut self.pending[at] {
                    previous.to_mut().push_str(&text);
                }
            }
            None => {
                open.last_text = Some(self.pending.len());
                self.pending.push(Node::Text(text));
            }
        }
    }

    /// Reads a start tag (its name and the attributes the tokenizer read, which it
    /// takes) into a new element, pushing its namespace declarations into scope.
    fn start_element(
        &mut self,
        name: QName<'t>,
        attrs: &mut Vec<RawAttr<'t>>,
    ) -> Result<usize, SignatureError> {
        let qname = name.raw;
        let outer_scope = self.scope.len();
        let decls_start = self.doc.ns_decls.len();
        let attrs_start = self.doc.attrs.len();
        for attr in attrs.drain(..) {
            let key = attr.name;
            let value = attr.value;
            if key.raw == "xmlns" {
                self.doc.ns_decls.push((Cow::Borrowed(""), value));
            } else if key.prefix() == "xmlns" {
                let prefix = key.local();
                if value.is_empty() {
                    return Err(malformed!("prefix {prefix} undeclared in <{qname}>"));
                }
                if prefix == "xmlns" || (prefix == "xml") != (value == XML_NS) || value == XMLNS_NS
                {
                    return Err(malformed!(
                        "reserved namespace binding {} in <{qname}>",
                        key.raw
                    ));
                }
                self.doc.ns_decls.push((Cow::Borrowed(prefix), value));
            } else {
                self.doc.attrs.push(Attr {
                    qname: Cow::Borrowed(key.raw),
                    prefix_len: key.prefix_len,
                    ns: Cow::Borrowed(""),
                    value,
                });
            }
        }
        let decls_end = self.doc.ns_decls.len();
        self.scope
            .extend(self.doc.ns_decls[decls_start..decls_end].iter().cloned());
        let prefix = name.prefix();
        let ns = match lookup(&self.scope, prefix) {
            Some(uri) => uri.clone(),
            None if prefix.is_empty() => Cow::Borrowed(""),
            None => return Err(malformed!("undeclared prefix {prefix} in <{qname}>")),
        };
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
        let parent = self.open.last_mut().map(|open| {
            open.last_text = None;
            open.index
        });
        self.doc.elements.push(Element {
            parent,
            qname: Cow::Borrowed(qname),
            prefix_len: name.prefix_len,
            ns,
            decls: decls_start..decls_end,
            attrs: attrs_start..attrs_end,
            children: 0..0,
        });
        if parent.is_some() {
            self.pending.push(Node::Element(index));
        }
        self.open.push(Open {
            index,
            children: self.pending.len(),
            last_text: None,
            scope: outer_scope,
        });
        Ok(index)
    }

    /// Closes the innermost element (the tokenizer has checked that the end tag
    /// matches), moving its children to the document.
    fn end_element(&mut self) {
        let Some(open) = self.open.pop() else {
            return;
        };
        if open.children < self.pending.len() {
            let start = self.doc.nodes.len();
            self.doc.nodes.extend(self.pending.drain(open.children..));
            self.doc.elements[open.index].children = start..self.doc.nodes.len();
        }
        self.scope.truncate(open.scope);
        if self.open.is_empty() {
            self.done = true;
        }
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

#[cfg(test)]
mod quick_xml_reader;

#[cfg(test)]
mod equivalence_tests;
