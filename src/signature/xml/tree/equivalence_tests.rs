//! The tokenizer-based reader against the former quick-xml-based one
//! (`quick_xml_reader.rs`) over the C14N fixtures, signed documents, hand-written edge
//! cases, deterministic mutations of all of them and generated documents: where both
//! accept, the trees (and so their canonical forms) must be identical; where the former
//! refuses, the new one must refuse too; where only the new one refuses, its reason must
//! be one of the checks quick-xml did not make (listed in `STRICTER`).

use std::path::PathBuf;

use proptest::prelude::*;

use super::super::c14n::{Kind, Method, Subset, canonicalize};
use super::{Document, parse_str, quick_xml_reader};
use crate::protocol::xml::decode_borrowed;
use crate::signature::SignatureError;
use crate::signature::sign::{SignOptions, XmlSigner};
use crate::signature::test_pki::{SignerUsage, TestCa, Validity};

/// Reasons for refusing what quick-xml accepted: well-formedness it did not check.
const STRICTER: &[&str] = &[
    // Names that are not XML names, or not namespace-well-formed (two colons).
    "malformed name",
    // Attributes not separated by white space, `<a b="1"c="2">`.
    "malformed start tag",
    "']]>' in text",
    // References, CDATA sections (even of white space) outside the document element.
    "text outside the document element",
    // An XML declaration other than at the very start, or a malformed one.
    "XML declaration",
    // A processing instruction's target with a colon, or not followed by white space.
    "processing instruction",
];

/// What a reader made of a document: its tree and canonical forms, or its refusal.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Read {
        tree: String,
        inclusive_with_comments: String,
        exclusive: String,
    },
    Refused(String),
}

fn outcome(read: Result<Document<'_>, SignatureError>) -> Outcome {
    let doc = match read {
        Ok(doc) => doc,
        Err(SignatureError::Malformed(reason)) => return Outcome::Refused(reason),
        Err(other) => panic!("a reader refused with a reason other than malformed: {other}"),
    };
    let c14n = |kind, with_comments| {
        let mut out = Vec::new();
        let method = Method {
            kind,
            with_comments,
        };
        match canonicalize(&doc, Subset::Document, None, &method, &mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(e) => format!("canonicalisation refused: {e}"),
        }
    };
    Outcome::Read {
        inclusive_with_comments: c14n(Kind::Inclusive10, true),
        exclusive: c14n(Kind::Exclusive(Vec::new()), false),
        tree: dump(&doc),
    }
}

/// The tree as its accessors show it (not how its arenas are laid out).
fn dump(doc: &Document<'_>) -> String {
    let mut out = format!("prolog {:?}\nepilog {:?}\n", doc.prolog, doc.epilog);
    for (i, element) in doc.elements.iter().enumerate() {
        out.push_str(&format!(
            "{i}: {:?} in {:?} ({:?} {:?}) under {:?}; declares {:?}; attributes {:?}; \
             children {:?}\n",
            element.qname,
            element.ns,
            element.prefix(),
            element.local(),
            element.parent,
            doc.ns_decls(i),
            doc.attrs(i),
            doc.children(i),
        ));
    }
    out
}

/// How the two readers' verdicts on the corpus were distributed.
#[derive(Debug, Default)]
struct Tally {
    both_read: usize,
    both_refused: usize,
    only_new_refused: usize,
    not_decodable: usize,
    /// What the readers disagreed about.
    disagreements: Vec<String>,
}

/// Reads `bytes` with both readers and counts how they agree (see the module doc),
/// collecting disagreements in `tally`.
fn compare(bytes: &[u8], tally: &mut Tally) {
    if let Err(disagreement) = check(bytes, tally) {
        tally.disagreements.push(disagreement);
    }
}

/// Reads `bytes` with both readers; `Err` with a description if they disagree.
fn check(bytes: &[u8], tally: &mut Tally) -> Result<(), String> {
    let Ok((text, _, _)) = decode_borrowed("signed XML", bytes) else {
        tally.not_decodable += 1;
        return Ok(());
    };
    let old = outcome(quick_xml_reader::parse_str(&text));
    let new = outcome(parse_str(&text));
    match (&old, &new) {
        (Outcome::Read { .. }, Outcome::Read { .. }) if old == new => tally.both_read += 1,
        (Outcome::Read { .. }, Outcome::Read { .. }) => {
            return Err(format!(
                "different trees for {text:?}:\nformer {old:?}\nnew    {new:?}"
            ));
        }
        (Outcome::Refused(_), Outcome::Refused(_)) => tally.both_refused += 1,
        (Outcome::Read { .. }, Outcome::Refused(reason)) => {
            if !STRICTER.iter().any(|s| reason.contains(s)) {
                return Err(format!("only the new reader refuses {text:?}: {reason}"));
            }
            tally.only_new_refused += 1;
        }
        (Outcome::Refused(reason), Outcome::Read { .. }) => {
            return Err(format!(
                "only the former reader refuses {text:?} ({reason})"
            ));
        }
    }
    Ok(())
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/signature/tests/c14n");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "xml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 8,
        "C14N fixtures missing from {}",
        dir.display()
    );
    names
        .iter()
        .map(|path| std::fs::read(path).expect("fixture"))
        .collect()
}

const FORM: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<eform xmlns=\"urn:example:eform\" Id=\"form1\">\n  <applicant Id=\"a1\"><name>Anna Andersson</name>\
<pnr>19800101-1234</pnr></applicant>\n  <amount>1 200 &amp; 5 &#xE5;re</amount>\n\
<note><![CDATA[<b>fet</b>]]><!-- granskad --><?review ok?></note>\n</eform>\n";

/// Documents signed here in each supported shape (the shape a verifier reads most).
fn signed() -> Vec<Vec<u8>> {
    let ca = TestCa::root("Equivalence CA").expect("CA");
    let (cert, key) = ca
        .issue_p256("Signer", Validity::Current, SignerUsage::DigitalSignature)
        .expect("signer");
    let signer =
        XmlSigner::from_pkcs8(&key.serialize_der(), vec![cert.der.clone()]).expect("signer");
    let mut out = Vec::new();
    for exclusive in [false, true] {
        let options = SignOptions {
            exclusive,
            ..SignOptions::default()
        };
        out.push(signer.sign_enveloped(FORM, &options).expect("signs"));
        out.push(
            signer
                .sign_enveloping("<data>inner &lt;text&gt;</data>", "obj1", &options)
                .expect("signs"),
        );
    }
    out.into_iter().map(String::into_bytes).collect()
}

/// Edge cases, accepted and refused, written to exercise each rule.
const EDGE_CASES: &[&str] = &[
    "<a/>",
    "<a></a >",
    "<a\r\n  b = 'x'\tc=\"y\"\n/>",
    "<p:a xmlns:p=\"urn:p\" p:b=\"1\" b=\"2\"/>",
    "<a xmlns=\"urn:d\"><b xmlns=\"\"/></a>",
    "<a xmlns:p=\"urn:p\" xmlns:q=\"urn:p\" p:x=\"1\" q:x=\"2\"/>",
    "<a b=\"1\" b=\"2\"/>",
    "<a xmlns:p=\"\"/>",
    "<a xmlns:xml=\"urn:x\"/>",
    "<a xmlns:xmlns=\"urn:x\"/>",
    "<a xmlns:x=\"http://www.w3.org/2000/xmlns/\"/>",
    "<a xml:lang=\"sv\"/>",
    "<a b=\"&lt;&gt;&amp;&apos;&quot;&#9;&#10;&#13;&#x20;\"/>",
    "<a b=\"x\r\ny\rz\nw\tv\"/>",
    "<a b=\"a<b\"/>",
    "<a b=\"&ent;\"/>",
    "<a b=\"&amp\"/>",
    "<a b=\"&#0;\"/>",
    "<a b=\"&#xD800;\"/>",
    "<a b=\"&#x110000;\"/>",
    "<a b=\"&#99999999999;\"/>",
    "<a>&#1;</a>",
    "<a>&#x;</a>",
    "<a>&#;</a>",
    "<a>&#X41;</a>",
    "<a>&#x41;&#65;&#x1F600;</a>",
    "<a>x &amp y</a>",
    "<a>x & y</a>",
    "<a>a]b]]c</a>",
    "<a>a]]>b</a>",
    "<a>l1\r\nl2\rl3\n&#13;</a>",
    "<a><![CDATA[x\r\ny]]]]><![CDATA[>]]></a>",
    "<a><![CDATA[unterminated</a>",
    "<a><!-- c - c --></a>",
    "<a><!-- c -- c --></a>",
    "<a><!-- c ---></a>",
    "<a><!----></a>",
    "<a><?pi?><?pi data ?><?pi  \r\n data\r\n?></a>",
    "<?pi before?><!-- before --><a/><!-- after --><?pi after?>\n",
    "<?xml version=\"1.0\"?><a/>",
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<a/>",
    "<a><b></a></b>",
    "<a><b></a>",
    "<a></b>",
    "</a>",
    "",
    "   ",
    "<a>",
    "<a/><b/>",
    "<a/>text",
    "text<a/>",
    "<a/>&amp;",
    "<!DOCTYPE a><a/>",
    "<!doctype a><a/>",
    "<a><!DOCTYPE a></a>",
    "<!ELEMENT a ANY><a/>",
    "<p:a/>",
    "<a p:b=\"1\"/>",
    "<a:b:c xmlns:a=\"urn:a\"/>",
    "<1a/>",
    "<a 1b=\"x\"/>",
    "<a b=x/>",
    "<a b/>",
    "<a b=\"1\"c=\"2\"/>",
    "<a/ >",
    "< a/>",
    "<a><b/><c>t<d/>u</c></a>",
    "<é xmlns:ü=\"urn:u\" ü:ß=\"v\">ÿ</é>",
];

/// Byte strings that mutations put into documents: the delimiters and the rules' edge
/// cases.
const INSERTS: &[&str] = &[
    "<",
    ">",
    "&",
    "&amp;",
    "&#1;",
    "&#x41;",
    "&bogus;",
    "]]>",
    "--",
    "\"",
    "'",
    "=",
    "/",
    "\r\n",
    "\r",
    "\t",
    " ",
    ":",
    "?",
    "!",
    "<!--x-->",
    "<?p x?>",
    "<![CDATA[x]]>",
    "<b/>",
    "</b>",
    "\u{1}",
    "é",
    "xmlns:p=\"urn:p\" ",
    " p:x=\"1\"",
];

/// Deterministic mutations of `doc`: truncations, deletions, replacements and insertions
/// (all positions of short documents; a stride through long ones).
fn mutations(doc: &[u8]) -> Vec<Vec<u8>> {
    let stride = (doc.len() / 150).max(1);
    let mut out = Vec::new();
    for at in (0..=doc.len()).step_by(stride) {
        out.push(doc[..at].to_vec());
        if at < doc.len() {
            let mut deleted = doc.to_vec();
            deleted.remove(at);
            out.push(deleted);
        }
        for (k, insert) in INSERTS.iter().enumerate() {
            // Each position gets a few of the inserts, rotating, to keep the count down.
            if !(at / stride + k).is_multiple_of(5) {
                continue;
            }
            let mut inserted = doc[..at].to_vec();
            inserted.extend_from_slice(insert.as_bytes());
            inserted.extend_from_slice(&doc[at..]);
            out.push(inserted);
            if at < doc.len() {
                let mut replaced = doc[..at].to_vec();
                replaced.extend_from_slice(insert.as_bytes());
                replaced.extend_from_slice(&doc[at + 1..]);
                out.push(replaced);
            }
        }
    }
    out
}

#[test]
fn both_readers_agree_on_fixtures_signed_documents_edge_cases_and_their_mutations() {
    let mut seeds = fixtures();
    seeds.extend(signed());
    seeds.extend(EDGE_CASES.iter().map(|s| s.as_bytes().to_vec()));
    let mut tally = Tally::default();
    for seed in &seeds {
        compare(seed, &mut tally);
        for mutated in mutations(seed) {
            compare(&mutated, &mut tally);
        }
    }
    for disagreement in tally.disagreements.iter().take(20) {
        eprintln!("{disagreement}\n");
    }
    assert!(
        tally.disagreements.is_empty(),
        "{} disagreements",
        tally.disagreements.len()
    );
    eprintln!("{tally:?}");
    // The corpus must exercise both sides: many documents read, many refused.
    assert!(tally.both_read > 2_000, "{tally:?}");
    assert!(tally.both_refused > 2_000, "{tally:?}");
}

/// Pieces that generated documents are made of, inside a root element.
const PIECES: &[&str] = &[
    "<b>",
    "</b>",
    "<c x=\"1\">",
    "</c>",
    "<b/>",
    "<p:d xmlns:p=\"urn:p\" p:y='2'/>",
    "text",
    " ",
    "\r\n",
    "\n",
    "\t",
    "&amp;",
    "&lt;",
    "&#x20;",
    "&#13;",
    "&x;",
    "&",
    "]",
    "]]>",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "-",
    "<?p",
    "?>",
    "<",
    ">",
    "\"",
    "'",
    "=",
    "é",
    "<e a='&#9;\r\n' b=\"&quot;\"/>",
    "<f xmlns=\"urn:f\">",
    "</f>",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn both_readers_agree_on_generated_documents(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 0..24),
    ) {
        let doc = format!("<r xmlns:q=\"urn:q\">{}</r>", pieces.concat());
        let verdict = check(doc.as_bytes(), &mut Tally::default());
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}
