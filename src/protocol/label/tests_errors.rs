//! Label structure errors: each refusal with its one-line reason.

use super::tests::{MINIMAL, parse, reason};

#[test]
fn every_structure_error_has_its_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#" tx.id="t1""#,
            "",
            "missing attribute tx.id on <shs.label>",
        ),
        (
            r#" corr.id="c1""#,
            "",
            "missing attribute corr.id on <shs.label>",
        ),
        (
            r#" sequence-type="event""#,
            "",
            "missing attribute sequence-type on <shs.label>",
        ),
        (r#"tx.id="t1""#, r#"tx.id="a b""#, "tx.id is not an NMTOKEN"),
        (
            r#"corr.id="c1""#,
            r#"corr.id="""#,
            "corr.id is not an NMTOKEN",
        ),
        ("\"event\"", "\"Event\"", "invalid sequence-type \"Event\""),
        (
            "<shs.label ",
            r#"<shs.label transfer-type="sync" "#,
            "invalid transfer-type \"sync\"",
        ),
        (
            "<shs.label ",
            r#"<shs.label status="prod" "#,
            "invalid status \"prod\"",
        ),
        (
            "<shs.label ",
            r#"<shs.label message-type="" "#,
            "invalid message-type \"\"",
        ),
        (
            "<shs.label ",
            r#"<shs.label document-type="x" "#,
            "invalid document-type \"x\"",
        ),
        (
            "<product>urn:X-shs:00000000-0000-0000-0000-000000000000</product>",
            "<productx>p</productx>",
            "unknown element <productx> in <shs.label>",
        ),
        ("</product>", "</productx>", "expected `</product>`"),
        ("<content content.id=\"k1\"/>", "", "missing <content>"),
        (
            "<datetime>2024-01-02T03:04:05</datetime>",
            "",
            "missing <datetime>",
        ),
        (
            "<product>urn:X-shs:00000000-0000-0000-0000-000000000000</product>",
            "",
            "missing <product>",
        ),
        (
            "<from>urn:X-shs:5565317129</from>",
            "<to>x</to><from>urn:X-shs:5565317129</from>",
            "<from> is out of order (after <to>)",
        ),
        (
            "<from>urn:X-shs:5565317129</from>",
            "<from>a</from><originator>b</originator>",
            "<originator> is out of order (after <from>)",
        ),
        (
            "<from>urn:X-shs:5565317129</from>",
            "<from>a</from><from>b</from>",
            "duplicate <from>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"/><content content.id=\"k2\"/>",
            "duplicate <content>",
        ),
        (
            "<datetime>",
            "<subject>a</subject><subject>b</subject><datetime>",
            "duplicate <subject>",
        ),
        (
            "<datetime>",
            "<subject>a</subject><meta name=\"x\">y</meta><datetime>",
            "<meta> is out of order (after <subject>)",
        ),
        (
            "<datetime>",
            "<meta>v</meta><datetime>",
            "missing attribute name on <meta>",
        ),
        (
            "<from>urn",
            "<from><b>x</b>urn",
            "<from> may hold only text, found <b>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content/>",
            "missing attribute content.id on <content>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\">text</content>",
            "unexpected text \"text\" in <content>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><compound no-of-parts=\"1\"/><data/></content>",
            "<content> holds both <data> and <compound>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><data/><compound no-of-parts=\"1\"/></content>",
            "<content> holds both <data> and <compound>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><compound no-of-parts=\"1\"/><compound no-of-parts=\"1\"/></content>",
            "duplicate <compound>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><compound/></content>",
            "missing attribute no-of-parts on <compound>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><comment>c</comment><data/></content>",
            "<data> after <comment> in <content>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><data>x</data></content>",
            "unexpected text \"x\" in <data>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><data><x/></data></content>",
            "<data> must be empty, found <x>",
        ),
        (
            "<content content.id=\"k1\"/>",
            "<content content.id=\"k1\"><file/></content>",
            "unknown element <file> in <content>",
        ),
        (
            "</shs.label>",
            "<history><datetime>d</datetime></history></shs.label>",
            "missing attribute node.id on <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"></history></shs.label>",
            "missing <datetime> in <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"><comment>c</comment><datetime>d</datetime></history></shs.label>",
            "<comment> before <datetime> in <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"><datetime>d</datetime><datetime>d</datetime></history></shs.label>",
            "duplicate <datetime> in <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"><datetime>d</datetime><comment>c</comment><comment>c</comment></history></shs.label>",
            "duplicate <comment> in <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"><datetime>d</datetime><note/></history></shs.label>",
            "unknown element <note> in <history>",
        ),
        (
            "</shs.label>",
            "<history node.id=\"n\"><datetime>d</datetime></history><meta name=\"a\">b</meta></shs.label>",
            "<meta> is out of order (after <history>)",
        ),
        (
            "</shs.label>",
            "</shs.label>\n<shs.label/>",
            "trailing content after </shs.label>: element <shs.label>",
        ),
        (
            "</shs.label>",
            "</shs.label> garbage",
            "trailing content after </shs.label>: \"garbage\"",
        ),
        ("</shs.label>", "", "the document ends inside <shs.label>"),
        (
            "<shs.label ",
            "x<shs.label ",
            "text before the root element: \"x\"",
        ),
        (
            "<shs.label ",
            " <?xml version=\"1.0\"?><shs.label ",
            "XML declaration must be at the very start",
        ),
        (
            "<shs.label ",
            "<!DOCTYPE a><!DOCTYPE b><shs.label ",
            "misplaced or repeated DOCTYPE",
        ),
        (
            "<datetime>",
            "<datetime a='1' a='2'>",
            "duplicated attribute",
        ),
        ("<datetime>", "<datetime a='<'>", "contains '<'"),
        (
            "<datetime>",
            "<datetime>&#1;",
            "invalid character reference &#1;",
        ),
        ("<datetime>", "<datetime>\u{1}", "character U+0001 at byte"),
        (
            "<datetime>",
            "<datetime a='&#0;'>",
            "attribute a of <datetime>",
        ),
        (
            "<datetime>",
            "<datetime a='&#1;'>",
            "refers to character U+0001",
        ),
        ("<datetime>", "<datetime>a & b", "not closed"),
        ("<datetime>", "<datetime><!-- a -- b -->", "--"),
    ];
    for (from, to, expected) in cases {
        assert!(MINIMAL.contains(from), "bad case {from}");
        let text = MINIMAL.replacen(from, to, 1);
        let reason = reason(parse(&text));
        assert!(
            reason.contains(expected),
            "for {to:?}: {reason:?} does not contain {expected:?}"
        );
    }
}

#[test]
fn empty_and_deep_documents_are_refused() {
    assert_eq!(reason(parse("")), "no root element");
    assert_eq!(reason(parse("<!-- only -->\n")), "no root element");
    assert_eq!(
        reason(parse(&MINIMAL.replace("shs.label", "shs.labels"))),
        "the root element is <shs.labels>, expected <shs.label>"
    );
    let deep = "<a>".repeat(100_000);
    assert!(reason(parse(&deep)).contains("nested deeper than 16"));
}

#[test]
fn long_input_is_shortened_in_reasons() {
    let text = MINIMAL.replace("\"event\"", &format!("\"{}\"", "x".repeat(10_000)));
    assert!(reason(parse(&text)).len() < 200);
}
