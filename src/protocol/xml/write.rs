//! Writing: escaping and a minimal pretty-printing writer for the SHS documents.

use super::*;

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
