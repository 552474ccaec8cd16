//! Canonicalisation against the W3C examples in `src/signature/tests/c14n/` (see its
//! README for how they were adapted), and the parser's refusals.

use std::path::PathBuf;

use super::c14n::{Kind, Method, Subset, canonicalize};
use super::tree::{Document, parse};
use crate::signature::SignatureError;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/signature/tests/c14n")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn element_named(doc: &Document<'_>, local: &str) -> usize {
    doc.elements
        .iter()
        .position(|e| e.local() == local)
        .unwrap_or_else(|| panic!("no element {local}"))
}

/// Canonicalises fixture `input` (the subtree of `apex`, or the whole document) and
/// compares with fixture `expected`.
fn check(input: &str, apex: Option<&str>, kind: Kind, with_comments: bool, expected: &str) {
    let bytes = fixture(input);
    let doc = parse(&bytes).expect("fixture parses");
    let subset = match apex {
        Some(local) => Subset::Element(element_named(&doc, local)),
        None => Subset::Document,
    };
    let method = Method {
        kind,
        with_comments,
    };
    let mut out = Vec::new();
    canonicalize(&doc, subset, None, &method, &mut out).expect("canonicalises");
    let expected = fixture(expected);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&expected),
        "{input} → {expected:?}",
        expected = std::str::from_utf8(&expected).map(|_| ()).ok(),
    );
}

fn exc(prefixes: &[&str]) -> Kind {
    Kind::Exclusive(prefixes.iter().map(|p| p.to_string()).collect())
}

#[test]
fn rfc3076_3_1_pis_comments_outside_the_document_element() {
    let input = "3.1-pis-comments.xml";
    check(
        input,
        None,
        Kind::Inclusive10,
        false,
        "3.1-pis-comments.c14n",
    );
    check(
        input,
        None,
        Kind::Inclusive10,
        true,
        "3.1-pis-comments.c14n-comments",
    );
    // Exclusive canonicalisation treats the whole document the same way.
    check(
        input,
        None,
        exc(&[]),
        true,
        "3.1-pis-comments.c14n-comments",
    );
}

#[test]
fn rfc3076_3_2_whitespace_in_content_is_kept() {
    check(
        "3.2-whitespace.xml",
        None,
        Kind::Inclusive10,
        false,
        "3.2-whitespace.c14n",
    );
}

#[test]
fn rfc3076_3_3_start_and_end_tags_namespaces_and_attribute_order() {
    check(
        "3.3-tags.xml",
        None,
        Kind::Inclusive10,
        false,
        "3.3-tags.c14n",
    );
}

#[test]
fn rfc3076_3_4_character_modifications_and_references() {
    check(
        "3.4-chars.xml",
        None,
        Kind::Inclusive10,
        false,
        "3.4-chars.c14n",
    );
}

#[test]
fn rfc3076_3_6_output_is_utf8() {
    check(
        "3.6-utf8.xml",
        None,
        Kind::Inclusive10,
        false,
        "3.6-utf8.c14n",
    );
}

#[test]
fn exc_c14n_2_2_subtree_inclusive_vs_exclusive() {
    for input in ["exc-2.2-a", "exc-2.2-b"] {
        let xml = format!("{input}.xml");
        check(
            &xml,
            Some("elem2"),
            Kind::Inclusive10,
            false,
            &format!("{input}.elem2.c14n"),
        );
        check(
            &xml,
            Some("elem2"),
            exc(&[]),
            false,
            &format!("{input}.elem2.exc"),
        );
    }
    check(
        "exc-2.2-b.xml",
        Some("elem2"),
        exc(&["n2"]),
        false,
        "exc-2.2-b.elem2.exc-n2",
    );
}

#[test]
fn default_namespace_undeclaration() {
    let input = "default-ns.xml";
    check(input, None, Kind::Inclusive10, false, "default-ns.c14n");
    check(input, None, exc(&[]), false, "default-ns.exc");
    check(
        input,
        Some("b"),
        Kind::Inclusive10,
        false,
        "default-ns.b.c14n",
    );
    check(input, Some("b"), exc(&[]), false, "default-ns.b.exc");
    check(input, Some("d"), exc(&[]), false, "default-ns.d.exc");
}

#[test]
fn c14n_1_1_does_not_inherit_xml_id_but_1_0_does() {
    let doc = parse(br#"<a xml:id="x" xml:lang="sv"><b/></a>"#).expect("parses");
    let b = element_named(&doc, "b");
    let run = |kind| {
        let mut out = Vec::new();
        let method = Method {
            kind,
            with_comments: false,
        };
        canonicalize(&doc, Subset::Element(b), None, &method, &mut out).expect("c14n");
        String::from_utf8(out).expect("utf-8")
    };
    assert_eq!(
        run(Kind::Inclusive10),
        r#"<b xml:id="x" xml:lang="sv"></b>"#
    );
    assert_eq!(run(Kind::Inclusive11), r#"<b xml:lang="sv"></b>"#);
    assert_eq!(run(exc(&[])), "<b></b>");
}

#[test]
fn excluded_subtree_is_left_out() {
    let doc = parse(b"<a>x<s><t/></s>y</a>").expect("parses");
    let s = element_named(&doc, "s");
    let method = Method {
        kind: Kind::Inclusive10,
        with_comments: false,
    };
    let mut out = Vec::new();
    canonicalize(&doc, Subset::Document, Some(s), &method, &mut out).expect("c14n");
    assert_eq!(out, b"<a>xy</a>");
}

fn refused(xml: &str) -> String {
    match parse(xml.as_bytes()) {
        Err(SignatureError::Malformed(reason)) => reason,
        other => panic!("expected a refusal of {xml:?}, got {other:?}"),
    }
}

#[test]
fn doctype_and_entities_are_refused() {
    // RFC 3076 §3.5 would expand these; a signed part may not declare any.
    let bomb = r#"<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><d>&b;</d>"#;
    assert!(refused(bomb).contains("DOCTYPE"));
    let external = r#"<!DOCTYPE d SYSTEM "file:///etc/passwd"><d/>"#;
    assert!(refused(external).contains("DOCTYPE"));
    assert!(refused("<d>&ent;</d>").contains("&ent;"));
    assert!(refused(r#"<d a="&ent;"/>"#).contains("&ent;"));
    assert!(refused("<p:d/>").contains("undeclared prefix"));
    assert!(refused("<d/><e/>").contains("after the document element"));
}

#[test]
fn text_pieces_merge_and_line_ends_normalise_whether_borrowed_or_not() {
    let xml =
        "<a t=\"1&#x9;2\" u=\"p\r\nq\">x&amp;y<![CDATA[<z>]]>\r\n<!--c\r\n--><b/>w<?p d\r\n?></a>";
    let doc = parse(xml.as_bytes()).expect("parses");
    // Text, reference and CDATA before the comment are one text node.
    let texts = doc
        .children(Document::ROOT)
        .iter()
        .filter(|n| matches!(n, super::tree::Node::Text(_)))
        .count();
    assert_eq!(texts, 2);
    let method = Method {
        kind: Kind::Inclusive10,
        with_comments: true,
    };
    let mut out = Vec::new();
    canonicalize(&doc, Subset::Document, None, &method, &mut out).expect("c14n");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "<a t=\"1&#x9;2\" u=\"p q\">x&amp;y&lt;z&gt;\n<!--c\n--><b></b>w<?p d\n?></a>"
    );
}

#[test]
fn a_character_reference_to_a_non_xml_character_is_refused() {
    let in_attribute = refused("<d a=\"&#1;\"/>");
    assert!(
        in_attribute.contains("&#1;") || in_attribute.contains("non-XML"),
        "{in_attribute}"
    );
    assert!(refused("<d>&#1;</d>").contains("&#1;"));
}
