//! Canonical XML 1.0 / 1.1 and Exclusive XML Canonicalization 1.0, written over
//! [`super::tree`], for the document subsets XML-DSig references produce here: the whole
//! document or one element's subtree, optionally without one excluded subtree (the
//! signature, for the enveloped-signature transform).
//!
//! Not implemented, because no subset this crate evaluates needs them: arbitrary XPath
//! node-sets (orphan attributes or namespace nodes), DTD attribute defaults (a DTD is
//! refused), and the `xml:base` fix-up of C14N 1.1 (a subset whose ancestors carry
//! `xml:base` is refused with C14N 1.1).

use std::cell::RefCell;

use ring::digest;

use super::reuse::{self, keep, recast};
use super::tree::{Document, Element, Node, XML_NS};
use crate::signature::SignatureError;

/// Which canonicalisation, with or without comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Method {
    /// Inclusive (C14N 1.0 or 1.1) or exclusive.
    pub(crate) kind: Kind,
    /// Whether comments are kept (the `#WithComments` variants).
    pub(crate) with_comments: bool,
}

/// The canonicalisation family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Canonical XML 1.0: every namespace in scope, `xml:*` attributes inherited at the apex.
    Inclusive10,
    /// Canonical XML 1.1: as 1.0, but `xml:id` is not inherited (and `xml:base` not
    /// supported on a subset's ancestors).
    Inclusive11,
    /// Exclusive C14N 1.0 with its InclusiveNamespaces prefix list (`""` for `#default`).
    Exclusive(Vec<String>),
}

/// Algorithm identifiers (XML-DSig) for the methods above.
pub(crate) mod uri {
    /// Canonical XML 1.0, comments omitted.
    pub(crate) const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
    /// Canonical XML 1.0 with comments.
    pub(crate) const C14N10_COMMENTS: &str =
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
    /// Canonical XML 1.1, comments omitted.
    pub(crate) const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
    /// Canonical XML 1.1 with comments.
    pub(crate) const C14N11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
    /// Exclusive C14N 1.0, comments omitted.
    pub(crate) const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    /// Exclusive C14N 1.0 with comments.
    pub(crate) const EXC_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
}

impl Method {
    /// The method an algorithm URI names (the prefix list is filled in by the caller), or
    /// `None` if it is not a canonicalisation this module implements.
    pub(crate) fn from_uri(algorithm: &str) -> Option<Method> {
        let (kind, with_comments) = match algorithm {
            uri::C14N10 => (Kind::Inclusive10, false),
            uri::C14N10_COMMENTS => (Kind::Inclusive10, true),
            uri::C14N11 => (Kind::Inclusive11, false),
            uri::C14N11_COMMENTS => (Kind::Inclusive11, true),
            uri::EXC => (Kind::Exclusive(Vec::new()), false),
            uri::EXC_COMMENTS => (Kind::Exclusive(Vec::new()), true),
            _ => return None,
        };
        Some(Method {
            kind,
            with_comments,
        })
    }
}

/// Where canonical octets go: a buffer, or straight into a digest.
pub(crate) trait Sink {
    /// Appends canonical octets.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A digest fed in blocks of a few hundred bytes rather than one call per tag or text
/// piece; the block lives inline (no allocation per digest) and is small, since the sink
/// is created, zeroed and moved once per digest (a 4 KiB block cost more in `memset` and
/// `memmove` than its fewer `update` calls saved on a small e-form).
pub(crate) struct DigestSink {
    context: digest::Context,
    buffer: [u8; Self::BLOCK],
    len: usize,
}

impl DigestSink {
    const BLOCK: usize = 512;

    /// A sink computing `algorithm`.
    pub(crate) fn new(algorithm: &'static digest::Algorithm) -> Self {
        DigestSink {
            context: digest::Context::new(algorithm),
            buffer: [0; Self::BLOCK],
            len: 0,
        }
    }

    /// The digest of everything put.
    pub(crate) fn finish(mut self) -> digest::Digest {
        self.context.update(&self.buffer[..self.len]);
        self.context.finish()
    }
}

impl Sink for DigestSink {
    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > Self::BLOCK {
            self.context.update(&self.buffer[..self.len]);
            self.len = 0;
        }
        if bytes.len() >= Self::BLOCK {
            self.context.update(bytes);
        } else {
            self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }
}

/// Which nodes are canonicalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subset {
    /// The whole document, including comments and PIs around the root (`URI=""`).
    Document,
    /// One element and its descendants (`URI="#id"`, or `SignedInfo`).
    Element(usize),
}

/// Canonicalises `subset` of `doc` with `method` into `out`, leaving out the subtree of
/// `excluded` (the enveloped-signature transform).
pub(crate) fn canonicalize(
    doc: &Document<'_>,
    subset: Subset,
    excluded: Option<usize>,
    method: &Method,
    out: &mut impl Sink,
) -> Result<(), SignatureError> {
    let spare = reuse::take(&SPARE);
    let mut writer = Writer {
        doc,
        method,
        excluded,
        out,
        scope: recast(spare.scope),
        rendered: recast(spare.rendered),
        candidates: recast(spare.candidates),
        attrs: recast(spare.attrs),
    };
    let mut ancestors = spare.ancestors;
    let written = writer.write(subset, &mut ancestors);
    let Writer {
        scope,
        rendered,
        candidates,
        attrs,
        ..
    } = writer;
    reuse::give(&SPARE, |spare| {
        keep(&mut spare.scope, scope);
        keep(&mut spare.rendered, rendered);
        keep(&mut spare.candidates, candidates);
        keep(&mut spare.attrs, attrs);
        keep(&mut spare.ancestors, ancestors);
    });
    written
}

/// The scratch buffers of canonicalising that a thread keeps for the next time (see
/// `reuse.rs`): empty, with `'static` standing in for the document's lifetime.
#[derive(Default)]
struct Spare {
    scope: Vec<(&'static str, &'static str)>,
    rendered: Vec<(&'static str, &'static str)>,
    candidates: Vec<&'static str>,
    attrs: Vec<OutAttr<'static>>,
    ancestors: Vec<usize>,
}

thread_local! {
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

/// An attribute on its way out: namespace URI, local name, qualified name, value.
type OutAttr<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The state of one canonicalisation pass.
struct Writer<'a, S: Sink> {
    doc: &'a Document<'a>,
    method: &'a Method,
    excluded: Option<usize>,
    out: &'a mut S,
    /// Namespace bindings in scope (prefix, URI), innermost last.
    scope: Vec<(&'a str, &'a str)>,
    /// Namespace declarations rendered by output ancestors and the element being written,
    /// innermost last.
    rendered: Vec<(&'a str, &'a str)>,
    /// Scratch: the prefixes an element may have to declare.
    candidates: Vec<&'a str>,
    /// Scratch: the attributes of the element being written, in canonical order.
    attrs: Vec<OutAttr<'a>>,
}

/// The innermost binding of `prefix` in a binding stack.
fn lookup<'s>(stack: &[(&'s str, &'s str)], prefix: &str) -> Option<&'s str> {
    stack
        .iter()
        .rev()
        .find(|(p, _)| short_eq(p, prefix))
        .map(|(_, u)| *u)
}

/// String equality without a call into libc's `memcmp` (these strings are a few bytes:
/// prefixes and namespace URIs, compared once or twice per element). Two slices of the
/// same bytes are equal without looking at them: a namespace URI compared with what an
/// output ancestor rendered is usually the very same declaration's value.
fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a.bytes().zip(b.bytes()).all(|(x, y)| x == y))
}

impl<'a, S: Sink> Writer<'a, S> {
    /// Writes `subset`; `ancestors` is scratch for the apex's ancestors.
    fn write(&mut self, subset: Subset, ancestors: &mut Vec<usize>) -> Result<(), SignatureError> {
        let doc = self.doc;
        match subset {
            Subset::Document => {
                for node in &doc.prolog {
                    if self.misc(node) {
                        self.out.put(b"\n");
                    }
                }
                self.element(Document::ROOT, true)?;
                for node in &doc.epilog {
                    if self.method.with_comments || matches!(node, Node::Pi(..)) {
                        self.out.put(b"\n");
                        self.misc(node);
                    }
                }
            }
            Subset::Element(apex) => {
                // The namespaces in scope at the apex come from its ancestors too.
                ancestors.clear();
                let mut at = doc.elements[apex].parent;
                while let Some(i) = at {
                    ancestors.push(i);
                    at = doc.elements[i].parent;
                }
                for &i in ancestors.iter().rev() {
                    let decls = doc.ns_decls(i).iter();
                    self.scope.extend(decls.map(|(p, u)| (&**p, &**u)));
                }
                self.element(apex, true)?;
            }
        }
        Ok(())
    }

    /// Writes a comment or PI (outside or inside the root); false if it is left out.
    fn misc(&mut self, node: &Node<'_>) -> bool {
        match node {
            Node::Comment(text) if self.method.with_comments => {
                self.out.put(b"<!--");
                self.out.put(text.as_bytes());
                self.out.put(b"-->");
                true
            }
            Node::Pi(pi) => {
                let (target, data) = &**pi;
                self.out.put(b"<?");
                self.out.put(target.as_bytes());
                if !data.is_empty() {
                    self.out.put(b" ");
                    self.out.put(data.as_bytes());
                }
                self.out.put(b"?>");
                true
            }
            _ => false,
        }
    }

    /// Writes element `index` and its content.
    fn element(&mut self, index: usize, apex: bool) -> Result<(), SignatureError> {
        if Some(index) == self.excluded {
            return Ok(());
        }
        let doc = self.doc;
        let el: &'a Element<'a> = &doc.elements[index];
        let scope_mark = self.scope.len();
        let rendered_mark = self.rendered.len();
        self.scope
            .extend(doc.ns_decls(index).iter().map(|(p, u)| (&**p, &**u)));

        self.namespaces_to_render(index, rendered_mark);
        self.rendered[rendered_mark..].sort_unstable();
        self.attributes(index, apex)?;

        self.out.put(b"<");
        self.out.put(el.qname.as_bytes());
        for &(prefix, uri) in &self.rendered[rendered_mark..] {
            if prefix.is_empty() {
                self.out.put(b" xmlns=\"");
            } else {
                self.out.put(b" xmlns:");
                self.out.put(prefix.as_bytes());
                self.out.put(b"=\"");
            }
            escape_attr(uri, self.out);
            self.out.put(b"\"");
        }
        for &(_, _, qname, value) in &self.attrs {
            self.out.put(b" ");
            self.out.put(qname.as_bytes());
            self.out.put(b"=\"");
            escape_attr(value, self.out);
            self.out.put(b"\"");
        }
        self.out.put(b">");

        for node in doc.children(index) {
            match node {
                Node::Element(child) => self.element(*child, false)?,
                Node::Text(text) => escape_text(text, self.out),
                other => {
                    self.misc(other);
                }
            }
        }
        self.out.put(b"</");
        self.out.put(el.qname.as_bytes());
        self.out.put(b">");
        self.scope.truncate(scope_mark);
        self.rendered.truncate(rendered_mark);
        Ok(())
    }

    /// Appends to `rendered` (unsorted) the namespace declarations element `index`
    /// renders, given what output ancestors rendered (`rendered[..mark]`): inclusive C14N
    /// considers every binding in scope, exclusive C14N only the visibly utilised prefixes
    /// and those of the InclusiveNamespaces list.
    fn namespaces_to_render(&mut self, index: usize, mark: usize) {
        let doc = self.doc;
        let el: &'a Element<'a> = &doc.elements[index];
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        match &self.method.kind {
            Kind::Inclusive10 | Kind::Inclusive11 => {
                for (prefix, _) in self.scope.iter().rev() {
                    if !candidates.iter().any(|c| short_eq(c, prefix)) {
                        candidates.push(prefix);
                    }
                }
                if !candidates.contains(&"") {
                    candidates.push("");
                }
            }
            Kind::Exclusive(list) => {
                candidates.push(el.prefix());
                for attr in doc.attrs(index) {
                    let prefix = attr.prefix();
                    if !prefix.is_empty() && !candidates.iter().any(|c| short_eq(c, prefix)) {
                        candidates.push(prefix);
                    }
                }
                for prefix in list {
                    let Some((prefix, uri)) =
                        self.scope.iter().rev().find(|(p, _)| *p == prefix.as_str())
                    else {
                        if prefix.is_empty() && !candidates.contains(&"") {
                            candidates.push("");
                        }
                        continue;
                    };
                    if (!uri.is_empty() || prefix.is_empty()) && !candidates.contains(prefix) {
                        candidates.push(prefix);
                    }
                }
            }
        }
        for &prefix in &candidates {
            if prefix == "xml" {
                continue;
            }
            let uri = lookup(&self.scope, prefix).unwrap_or("");
            let rendered = lookup(&self.rendered[..mark], prefix);
            let render = if uri.is_empty() {
                // Only the default namespace can be empty: undeclare it if an output
                // ancestor declared one.
                prefix.is_empty() && rendered.is_some_and(|r| !r.is_empty())
            } else {
                !rendered.is_some_and(|r| short_eq(r, uri))
            };
            if render {
                self.rendered.push((prefix, uri));
            }
        }
        self.candidates = candidates;
    }

    /// Fills `attrs` with the attributes of element `index` in canonical order (namespace
    /// URI, then local name), with the `xml:*` attributes an inclusive apex inherits from
    /// its ancestors.
    fn attributes(&mut self, index: usize, apex: bool) -> Result<(), SignatureError> {
        let doc = self.doc;
        let el: &'a Element<'a> = &doc.elements[index];
        self.attrs.clear();
        self.attrs.extend(
            doc.attrs(index)
                .iter()
                .map(|a| (&*a.ns, a.local(), &*a.qname, &*a.value)),
        );
        let inherits = |local: &str| match self.method.kind {
            Kind::Inclusive10 => true,
            Kind::Inclusive11 => local == "lang" || local == "space",
            Kind::Exclusive(_) => false,
        };
        let inclusive = !matches!(self.method.kind, Kind::Exclusive(_));
        if apex && inclusive {
            let mut at = el.parent;
            while let Some(i) = at {
                let ancestor: &'a Element<'a> = &doc.elements[i];
                for a in doc.attrs(i).iter().filter(|a| &*a.ns == XML_NS) {
                    if self.method.kind == Kind::Inclusive11 && a.local() == "base" {
                        return Err(SignatureError::UnsupportedAlgorithm(
                            "C14N 1.1 of a subset below an xml:base attribute".into(),
                        ));
                    }
                    let known = self
                        .attrs
                        .iter()
                        .any(|(ns, local, ..)| *ns == XML_NS && *local == a.local());
                    if inherits(a.local()) && !known {
                        self.attrs.push((XML_NS, a.local(), &a.qname, &a.value));
                    }
                }
                at = ancestor.parent;
            }
        }
        if self.attrs.len() > 1 {
            self.attrs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        }
        Ok(())
    }
}

/// Writes text content escaped as C14N says: `&`, `<`, `>` and CR.
fn escape_text(text: &str, out: &mut impl Sink) {
    escape(
        text,
        out,
        |b| matches!(b, b'&' | b'<' | b'>' | b'\r'),
        |b| match b {
            b'&' => Some(b"&amp;"),
            b'<' => Some(b"&lt;"),
            b'>' => Some(b"&gt;"),
            b'\r' => Some(b"&#xD;"),
            _ => None,
        },
    );
}

/// Writes an attribute value escaped as C14N says: `&`, `<`, `"`, tab, LF and CR.
fn escape_attr(text: &str, out: &mut impl Sink) {
    escape(
        text,
        out,
        |b| matches!(b, b'&' | b'<' | b'"' | b'\t' | b'\n' | b'\r'),
        |b| match b {
            b'&' => Some(b"&amp;"),
            b'<' => Some(b"&lt;"),
            b'"' => Some(b"&quot;"),
            b'\t' => Some(b"&#x9;"),
            b'\n' => Some(b"&#xA;"),
            b'\r' => Some(b"&#xD;"),
            _ => None,
        },
    );
}

/// Copies `text` to `out`, replacing the ASCII bytes `replacement` maps (never part of a
/// multi-byte UTF-8 sequence; `special` says which those are) and passing runs of other
/// bytes through in one piece. Most names, URIs and values need no escaping at all: a
/// first pass without an early exit (so that it vectorises) tells, and such text goes out
/// in one piece.
#[inline(always)]
fn escape(
    text: &str,
    out: &mut impl Sink,
    special: impl Fn(u8) -> bool,
    replacement: impl Fn(u8) -> Option<&'static [u8]>,
) {
    let bytes = text.as_bytes();
    if !bytes.iter().fold(false, |found, &b| found | special(b)) {
        out.put(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(rep) = replacement(b) {
            out.put(&bytes[start..i]);
            out.put(rep);
            start = i + 1;
        }
    }
    out.put(&bytes[start..]);
}
