//! Label writing and history tests, and the escaping helpers they rely on.

use super::tests::{FULL, MINIMAL, parse, reference_dir, reference_label};
use super::*;
use crate::protocol::xml::{self, Encoding};

fn entry(node: &str, comment: &str) -> History {
    History {
        node_id: node.into(),
        tx_id: Some("tx-9".into()),
        to: Some("urn:X-shs:3333333333".into()),
        local_id: Some("local-9".into()),
        content_id: Some("content-9".into()),
        datetime: "2024-05-06T07:08:09".into(),
        comment: Some(comment.into()),
        ..History::default()
    }
}

#[test]
fn to_xml_is_utf8_with_declaration_and_canonical_order() {
    let label = parse(FULL).unwrap();
    let written = String::from_utf8(label.to_xml()).unwrap();
    assert!(written.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE shs.label SYSTEM \"shs-label-1.2.dtd\">\n\
         <shs.label version=\"1.2\" tx.id=\"tx-1\" corr.id=\"corr-1\" shs.agreement=\"agr-1\" \
         transfer-type=\"synch\" message-type=\"compound\" document-type=\"simple\" \
         sequence-type=\"request\" status=\"test\">\n"
    ));
    let order = [
        "<originator ",
        "<from ",
        "<to ",
        "<end-recipient ",
        "<product ",
        "<meta name=\"m1\">",
        "<meta name=\"m2\">",
        "<subject>",
        "<datetime>",
        "<content content.id=\"content-1\">",
        "<data datapartType=\"xml\" filename=\"a.xml\" no-of-bytes=\"12\" no-of-records=\"3\"/>",
        "<comment>two parts</comment>",
        "<history node.id=\"n1\" content.id=\"content-1\" tx.id=\"tx-1\"",
        "<history node.id=\"n2\">",
        "</shs.label>\n",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|needle| {
            written
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} in {written}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{written}");
}

#[test]
fn defaults_are_written_and_absent_attributes_are_not() {
    let label = parse(MINIMAL).unwrap();
    let written = String::from_utf8(label.to_xml()).unwrap();
    assert!(written.contains("transfer-type=\"asynch\""));
    assert!(written.contains("status=\"production\""));
    assert!(!written.contains("message-type"));
    assert!(!written.contains("document-type"));
    assert!(!written.contains("shs.agreement"));
    assert!(!written.contains("commonName"));
    assert!(written.contains("<content content.id=\"k1\">\n    </content>"));
    assert_eq!(parse(&written), Ok(label));
}

#[test]
fn special_characters_round_trip() {
    let nasty = " <tag> & \"quoted\" 'single' \t tab\nline\r\nCRLF\rCR ]]> åäö € 😀 ";
    let mut label = parse(FULL).unwrap();
    label.subject = Some(nasty.into());
    label.meta[0].value = nasty.into();
    label.meta[0].name = nasty.into();
    label.from.as_mut().unwrap().common_name = Some(nasty.into());
    label.content.comment = Some(nasty.into());
    label.history[0].comment = Some(nasty.into());
    label.history[0].from = Some(nasty.into());
    let written = label.to_xml();
    assert_eq!(Label::parse(&written), Ok(label));
}

#[test]
fn characters_xml_cannot_hold_are_replaced() {
    let mut label = parse(MINIMAL).unwrap();
    label.subject = Some("a\u{1}b\u{FFFE}c".into());
    let read = Label::parse(&label.to_xml()).unwrap();
    assert_eq!(read.subject.as_deref(), Some("a\u{FFFD}b\u{FFFD}c"));
}

#[test]
fn escaping_helpers() {
    let mut text = String::new();
    xml::push_text(&mut text, "a&b<c>d\re\"f'\tg\nh");
    assert_eq!(text, "a&amp;b&lt;c&gt;d&#13;e\"f'\tg\nh");
    let mut attr = String::new();
    xml::push_attr_value(&mut attr, "a&b<c>d\re\"f'\tg\nh");
    assert_eq!(attr, "a&amp;b&lt;c&gt;d&#13;e&quot;f'&#9;g&#10;h");
    assert_eq!(Encoding::Latin1.encode("aå€"), b"a\xE5&#8364;");
    assert_eq!(Encoding::Ascii.encode("aå€"), b"a&#229;&#8364;");
    assert_eq!(Encoding::Utf8.encode("aå€"), "aå€".as_bytes());
}

#[test]
fn byte_offsets_map_back_to_the_original_encoding() {
    let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE5\xE4</a>";
    let decoded = xml::decode("t", latin1).unwrap();
    let at = decoded.text.find("</a>").unwrap();
    assert_eq!(decoded.byte_offset(at), latin1.len() - 4);
    let bom = "\u{FEFF}<a>åä</a>";
    let decoded = xml::decode("t", bom.as_bytes()).unwrap();
    let at = decoded.text.find("</a>").unwrap();
    assert_eq!(decoded.byte_offset(at), bom.len() - 4);
}

#[test]
fn history_received_describes_the_acceptance() {
    let label = parse(FULL).unwrap();
    let history = History::received(&label, "node-a", "local-1", "2024-01-01T00:00:00");
    assert_eq!(history.node_id, "node-a");
    assert_eq!(history.tx_id.as_deref(), Some("tx-1"));
    assert_eq!(history.to.as_deref(), Some("urn:X-shs:3333333333.sub"));
    assert_eq!(history.content_id.as_deref(), Some("content-1"));
    assert_eq!(history.local_id.as_deref(), Some("local-1"));
    assert_eq!(history.shs_agreement.as_deref(), Some("agr-1"));
    assert_eq!(history.datetime, "2024-01-01T00:00:00");
    assert_eq!(history.comment.as_deref(), Some("Received"));
    assert_eq!(
        (history.from.as_ref(), history.product_id.as_ref()),
        (None, None)
    );
    let history = history
        .with_agreement("agr-2")
        .with_comment("Received; signature verified: CN=x");
    assert_eq!(history.shs_agreement.as_deref(), Some("agr-2"));
    assert_eq!(
        history.comment.as_deref(),
        Some("Received; signature verified: CN=x")
    );
}

/// Checks that `appended` is `original` with one insertion just before the root's end
/// tag, and that it parses to the original label plus `entries`.
fn assert_spliced(original: &[u8], entries: &[History], appended: &[u8]) -> Vec<u8> {
    let closing = b"</shs.label>";
    let at = original
        .windows(closing.len())
        .rposition(|w| w == closing)
        .unwrap();
    let inserted_len = appended.len() - original.len();
    assert_eq!(&appended[..at], &original[..at], "prefix changed");
    assert_eq!(
        &appended[at + inserted_len..],
        &original[at..],
        "suffix changed"
    );
    let mut expected = Label::parse(original).unwrap();
    expected.history.extend_from_slice(entries);
    assert_eq!(Label::parse(appended), Ok(expected));
    appended[at..at + inserted_len].to_vec()
}

#[test]
fn append_history_keeps_latin1_bytes_and_encodes_the_rest() {
    let mut original = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n".to_vec();
    let body = MINIMAL.replace(
        "<datetime>",
        "<subject>\u{e5}\u{e4}\u{f6}</subject><datetime>",
    );
    original.extend(body.chars().map(|c| u8::try_from(u32::from(c)).unwrap()));
    original.extend_from_slice(b"\n<!-- trailing comment -->\n");
    let entries = [entry("n\u{e5}", "Received \u{20ac} & <ok>")];
    let appended = append_history(&original, &entries).unwrap();
    let inserted = assert_spliced(&original, &entries, &appended);
    let inserted = String::from_utf8_lossy(&inserted);
    assert!(inserted.contains("node.id=\"n\u{FFFD}\""), "{inserted}");
    assert!(
        inserted.contains("Received &#8364; &amp; &lt;ok&gt;"),
        "{inserted}"
    );
    assert!(inserted.starts_with("    <history "), "{inserted}");
    assert!(inserted.ends_with("</history>\n"), "{inserted}");
}

#[test]
fn append_history_in_utf8_and_with_a_byte_order_mark() {
    let entries = [entry("a", "€"), entry("b", "second")];
    let original = MINIMAL.as_bytes();
    let appended = append_history(original, &entries).unwrap();
    let inserted = assert_spliced(original, &entries, &appended);
    assert!(
        String::from_utf8(inserted)
            .unwrap()
            .contains("<comment>€</comment>")
    );

    let bom = [b"\xEF\xBB\xBF".as_slice(), MINIMAL.as_bytes()].concat();
    let appended = append_history(&bom, &entries).unwrap();
    assert_spliced(&bom, &entries, &appended);
}

#[test]
fn append_history_on_compact_and_crlf_labels() {
    let compact = MINIMAL.replace('\n', "").replace("  ", "");
    let entries = [entry("n", "c")];
    let appended = append_history(compact.as_bytes(), &entries).unwrap();
    let inserted = assert_spliced(compact.as_bytes(), &entries, &appended);
    assert!(inserted.starts_with(b"\n    <history"));

    let crlf = MINIMAL.replace('\n', "\r\n");
    let appended = append_history(crlf.as_bytes(), &entries).unwrap();
    assert_spliced(crlf.as_bytes(), &entries, &appended);
}

/// Intake parses a label once and appends its history entry at the place found then:
/// the same bytes as parsing again, for every encoding; a splice from other bytes is
/// refused, and `<shs.label/>` cannot take history either way.
#[test]
fn a_splice_found_while_parsing_appends_as_a_fresh_parse_does() {
    let latin1: Vec<u8> = [
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n".as_slice(),
        &MINIMAL
            .replace("<datetime>", "<subject>\u{e5}</subject><datetime>")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect::<Vec<u8>>(),
    ]
    .concat();
    let bom = [b"\xEF\xBB\xBF".as_slice(), MINIMAL.as_bytes()].concat();
    let compact = MINIMAL.replace('\n', "").replace("  ", "");
    let entries = [entry("n\u{e5}", "Received \u{20ac}")];
    for original in [MINIMAL.as_bytes(), &latin1, &bom, compact.as_bytes()] {
        let (label, splice) = Label::parse_for_history(original).unwrap();
        assert_eq!(Ok(label), Label::parse(original));
        assert_eq!(
            append_history_at(original, &splice, &entries).unwrap(),
            append_history(original, &entries).unwrap()
        );
    }
    let (_, splice) = Label::parse_for_history(MINIMAL.as_bytes()).unwrap();
    assert!(append_history_at(compact.as_bytes(), &splice, &entries).is_err());
}

#[test]
fn append_history_finds_the_real_end_tag() {
    // A comment after the root mentions the end tag: the insertion goes before the real one.
    let original = format!("{MINIMAL}<!-- </shs.label> -->");
    let entries = [entry("n", "c")];
    let appended = append_history(original.as_bytes(), &entries).unwrap();
    let text = String::from_utf8(appended).unwrap();
    assert!(
        text.ends_with("</history>\n</shs.label><!-- </shs.label> -->"),
        "{text}"
    );
    let mut expected = parse(MINIMAL).unwrap();
    expected.history.extend(entries);
    assert_eq!(parse(&text), Ok(expected));
}

#[test]
fn append_history_without_entries_or_to_a_broken_label() {
    assert_eq!(
        append_history(MINIMAL.as_bytes(), &[]).unwrap(),
        MINIMAL.as_bytes()
    );
    let broken = MINIMAL.replace("<product>", "<product a='1' a='2'>");
    assert!(append_history(broken.as_bytes(), &[entry("n", "c")]).is_err());
    let no_tx = MINIMAL.replace("tx.id=\"t1\"", "");
    assert!(append_history(no_tx.as_bytes(), &[entry("n", "c")]).is_err());
}

#[test]
fn append_history_to_every_reference_label() {
    let Some(dir) = reference_dir() else {
        eprintln!("reference messages absent: skipped");
        return;
    };
    for dir_entry in std::fs::read_dir(dir).unwrap() {
        let path = dir_entry.unwrap().path();
        let name = path.to_string_lossy().into_owned();
        if !name.ends_with(".mime") || name.contains("TotallyBroken") {
            continue;
        }
        let mime = std::fs::read(&path).unwrap();
        let original = reference_label(&mime);
        let entries = [entry("shsd-node", "Received, åäö")];
        let appended = append_history(original, &entries).unwrap();
        let inserted = assert_spliced(original, &entries, &appended);
        // These labels are ISO-8859-1: å is one byte.
        assert!(inserted.windows(3).any(|w| w == b", \xE5"), "{name}");
    }
}
