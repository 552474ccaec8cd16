//! The tokenizer's tokens, what it borrows and what it refuses.

use std::borrow::Cow;

use super::{Quote, RawAttr, Token, Tokenizer};
use crate::signature::SignatureError;

/// The tokens of `input` with each start tag's attributes, or the refusal's reason.
fn tokens(input: &str) -> Result<Vec<(Token<'_>, Vec<RawAttr<'_>>)>, String> {
    let mut tokenizer = Tokenizer::new(input);
    let mut out = Vec::new();
    loop {
        match tokenizer.next_token() {
            Ok(Some(token)) => {
                let attrs = match token {
                    Token::Start(_) | Token::Empty(_) => tokenizer.attributes_mut().clone(),
                    _ => Vec::new(),
                };
                out.push((token, attrs));
            }
            Ok(None) => return Ok(out),
            Err(SignatureError::Malformed(reason)) => return Err(reason),
            Err(other) => panic!("not a malformed-refusal: {other}"),
        }
    }
}

#[track_caller]
fn refused(input: &str, needle: &str) {
    match tokens(input) {
        Err(reason) => assert!(
            reason.contains(needle),
            "{input:?}: {reason:?} lacks {needle:?}"
        ),
        Ok(t) => panic!("{input:?} accepted: {t:?}"),
    }
}

/// True if `text` is a slice of the input (a `Cow` is what is being checked here).
#[allow(clippy::ptr_arg)]
fn borrowed(text: &Cow<'_, str>) -> bool {
    matches!(text, Cow::Borrowed(_))
}

#[test]
fn every_kind_of_token_in_order() {
    let input = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!--pre--><?pi data?>\n\
        <p:a xmlns:p=\"urn:p\" b='1'>t<![CDATA[<c>]]><e/></p:a >\n<!--post-->";
    let got = tokens(input).expect("accepted");
    let kinds: Vec<String> = got
        .iter()
        .map(|(t, _)| match t {
            Token::Declaration => "decl".to_owned(),
            Token::Start(n) => format!("start {}:{}", n.prefix(), n.local()),
            Token::Empty(n) => format!("empty {}", n.raw),
            Token::End(n) => format!("end {}", n.raw),
            Token::Text(t) => format!("text {t}"),
            Token::CData(t) => format!("cdata {t}"),
            Token::Comment(t) => format!("comment {t}"),
            Token::Pi(target, data) => format!("pi {target} {data}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "decl",
            "comment pre",
            "pi pi data",
            "start p:a",
            "text t",
            "cdata <c>",
            "empty e",
            "end p:a",
            "comment post"
        ]
    );
    let attrs = &got[3].1;
    assert_eq!(attrs.len(), 2);
    assert_eq!(attrs[0].name.raw, "xmlns:p");
    assert_eq!(
        (attrs[0].name.prefix(), attrs[0].name.local()),
        ("xmlns", "p")
    );
    assert_eq!(attrs[0].quote, Quote::Double);
    assert_eq!((attrs[1].raw_value, attrs[1].quote), ("1", Quote::Single));
}

#[test]
fn plain_text_and_values_are_borrowed_and_the_rest_resolved() {
    let input =
        "<a b=\"plain\" c=\"x&amp;y&#x9;z\r\nw\tv\">plain<i>x&lt;y&#65;\r\nz\r&#13;</i></a>";
    let got = tokens(input).expect("accepted");
    let attrs = &got[0].1;
    assert!(borrowed(&attrs[0].value));
    assert_eq!(attrs[1].value, "x&y\tz w v");
    assert_eq!(attrs[1].raw_value, "x&amp;y&#x9;z\r\nw\tv");
    match &got[1].0 {
        Token::Text(t) => assert!(borrowed(t) && t == "plain"),
        other => panic!("{other:?}"),
    }
    match &got[3].0 {
        Token::Text(t) => assert_eq!(t, "x<yA\nz\n\r"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn white_space_outside_the_root_is_skipped_and_anything_else_refused() {
    assert_eq!(tokens(" \r\n<a/>\t\n").expect("accepted").len(), 1);
    refused("x<a/>", "text outside");
    refused("<a/>x", "text outside");
    refused("&#32;<a/>", "text outside");
    refused("<a/><![CDATA[ ]]>", "text outside");
    refused("<a/><b/>", "after the document element");
    refused("", "incomplete");
    refused("<!-- only a comment -->", "incomplete");
    refused("<a><b></b>", "incomplete");
}

#[test]
fn tags_must_nest_and_names_must_be_names() {
    refused("<a></b>", "does not match");
    refused("<a></ab>", "does not match");
    refused("<ab></a>", "does not match");
    refused("<a><b></a></b>", "does not match");
    refused("</a>", "without a start tag");
    refused("<1a/>", "malformed name");
    refused("<-a/>", "malformed name");
    refused("< a/>", "malformed name");
    refused("<a:b:c/>", "malformed name");
    refused("<:a/>", "malformed name");
    refused("<a:/>", "malformed name");
    refused("<a b:=\"1\"/>", "malformed name");
    refused("<a\u{D7}/>", "malformed name");
    assert!(tokens("<é.a-1 ü:ß=\"v\" xmlns:ü=\"u\"/>").is_ok());
    refused("<a/ >", "malformed start tag");
}

#[test]
fn attribute_syntax() {
    refused("<a b=\"1\"c=\"2\"/>", "malformed start tag");
    refused("<a b />", "no value");
    refused("<a b/>", "malformed name");
    refused("<a b?=\"1\"/>", "malformed name");
    refused("<a b=1/>", "not quoted");
    refused("<a b=\"1/>", "unterminated");
    refused("<a b=\"1\" b='2'/>", "duplicate attribute b");
    refused("<a b=\"x<y\"/>", "contains '<'");
    assert!(tokens("<a b = \"x>y\" />").is_ok());
}

#[test]
fn references_only_predefined_and_to_xml_characters() {
    refused("<a>&ent;</a>", "&ent;");
    refused("<a b=\"&ent;\"/>", "&ent;");
    refused("<a>&amp</a>", "unterminated reference");
    refused("<a>&#1;</a>", "&#1;");
    refused("<a b=\"&#1;\"/>", "&#1;");
    refused("<a>&#0;</a>", "invalid character reference");
    refused("<a>&#xD800;</a>", "invalid character reference");
    refused("<a>&#x110000;</a>", "invalid character reference");
    refused("<a>&#4294967297;</a>", "invalid character reference");
    refused("<a>&#X41;</a>", "invalid character reference");
    refused("<a>&#x;</a>", "invalid character reference");
    refused("<a>&#-1;</a>", "invalid character reference");
}

#[test]
fn cdata_comments_and_pis() {
    refused("<a>x]]>y</a>", "']]>'");
    assert!(tokens("<a>x]]y]</a>").is_ok());
    refused("<a><!-- x -- y --></a>", "'--'");
    refused("<a><!-- x ---></a>", "'--'");
    refused("<a><!-- x </a>", "unterminated comment");
    refused("<a><![CDATA[x</a>", "unterminated CDATA");
    refused("<a><?p x</a>", "unterminated processing instruction");
    refused("<a><?p\"x?></a>", "malformed name");
    refused("<a><?p/x?></a>", "malformed name");
    refused("<a><?p?x?></a>", "malformed processing instruction");
    refused("<a><?a:b x?></a>", "processing instruction");
    refused("<a><?xml version=\"1.0\"?></a>", "XML declaration");
    refused("<a><?XmL x?></a>", "XML declaration");
    refused(" <?xml version=\"1.0\"?><a/>", "XML declaration");
    refused("<?xml encoding=\"UTF-8\"?><a/>", "XML declaration");
    refused("<?xml version=\"2.0\"?><a/>", "XML declaration");
    refused(
        "<?xml version=\"1.0\" standalone=\"yes\" encoding=\"UTF-8\"?><a/>",
        "XML declaration",
    );
    refused(
        "<?xml version=\"1.0\"encoding=\"UTF-8\"?><a/>",
        "XML declaration",
    );
    assert!(tokens("<?xml-stylesheet href=\"x\"?><a/>").is_ok());
    match &tokens("<a><?p  \r\n d\r\ne ?></a>").expect("accepted")[1].0 {
        Token::Pi(target, data) => assert_eq!((*target, &**data), ("p", "d\ne ")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn doctype_and_other_declarations_are_refused() {
    refused("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "DOCTYPE");
    refused("<!doctype a><a/>", "DOCTYPE");
    refused("<a><!DOCTYPE a></a>", "DOCTYPE");
    refused("<!ENTITY e \"x\"><a/>", "markup declarations");
}
