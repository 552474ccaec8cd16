//! File names and other header text as senders really write them: RFC 2231 parameter values
//! (`filename*=UTF-8''%C3%A5`, continuations `filename*0*=`), RFC 2047 encoded words
//! (`=?UTF-8?B?…?=`, `=?ISO-8859-1?Q?…?=`) and raw 8-bit bytes, UTF-8 or ISO-8859-1.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Lenient base64 for encoded words: padding optional, trailing bits allowed.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Longest RFC 2047 encoded word looked for: the RFC says 75 characters, some senders write
/// longer ones.
const MAX_WORD: usize = 512;

/// Turns header bytes into text. A known charset decides; without one (raw header bytes),
/// valid UTF-8 is UTF-8 and anything else is read as ISO-8859-1, which never fails.
pub(super) fn decode_bytes(bytes: &[u8], charset: Option<&str>) -> String {
    let latin1 = |bytes: &[u8]| bytes.iter().map(|&b| char::from(b)).collect::<String>();
    let charset = charset.map(|c| c.trim().to_ascii_lowercase());
    match charset.as_deref() {
        Some(
            "iso-8859-1" | "iso_8859-1" | "latin1" | "latin-1" | "l1" | "us-ascii" | "ascii"
            | "iso-8859-15" | "windows-1252" | "cp1252",
        ) => latin1(bytes),
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => latin1(bytes),
        },
    }
}

/// The value of parameter `name`: an RFC 2231 form (`name*`, or the continuations
/// `name*0`, `name*0*`, `name*1*`, …) wins over the plain `name`, whose RFC 2047 encoded
/// words are decoded.
pub(super) fn param_value(params: &[(String, String)], name: &str) -> Option<String> {
    extended_value(params, name).or_else(|| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| decode_encoded_words(value))
    })
}

/// RFC 2231 extended parameters; `None` when there is no `name*` and no `name*0…`.
fn extended_value(params: &[(String, String)], name: &str) -> Option<String> {
    let mut segments: Vec<(usize, bool, &str)> = Vec::new();
    for (key, value) in params {
        let Some(rest) = key.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        if rest.is_empty() {
            // `name*=charset'lang'value`: one encoded value.
            let (charset, encoded) = split_charset(value);
            return Some(decode_bytes(&percent_decode(encoded), charset));
        }
        let (number, encoded) = match rest.strip_suffix('*') {
            Some(number) => (number, true),
            None => (rest, false),
        };
        let canonical = number == "0" || !number.starts_with('0');
        if canonical
            && number.len() <= 4
            && number.bytes().all(|b| b.is_ascii_digit())
            && let Ok(index) = number.parse::<usize>()
        {
            segments.push((index, encoded, value.as_str()));
        }
    }
    if segments.is_empty() {
        return None;
    }
    // Stable sort: of duplicate indices the first written wins.
    segments.sort_by_key(|segment| segment.0);
    let mut text = String::new();
    let mut pending = Vec::new();
    let mut charset = None;
    let mut expected = 0;
    for (index, encoded, value) in segments {
        if index < expected {
            continue;
        }
        if index > expected {
            break; // RFC 2231 §3: a gap ends the value
        }
        expected += 1;
        if encoded {
            let value = if index == 0 {
                let (cs, rest) = split_charset(value);
                charset = cs;
                rest
            } else {
                value
            };
            // Bytes of consecutive encoded segments are joined before decoding: a
            // multi-byte character may be split between two segments.
            pending.extend(percent_decode(value));
        } else {
            text.push_str(&decode_bytes(&pending, charset));
            pending.clear();
            text.push_str(value);
        }
    }
    if expected == 0 {
        return None;
    }
    text.push_str(&decode_bytes(&pending, charset));
    Some(text)
}

/// Splits `charset'language'value`; a value without the two quotes has no charset.
fn split_charset(value: &str) -> (Option<&str>, &str) {
    let mut pieces = value.splitn(3, '\'');
    match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(charset), Some(_language), Some(rest)) => {
            ((!charset.is_empty()).then_some(charset), rest)
        }
        _ => (None, value),
    }
}

/// `%XX` to bytes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(byte) = hex_pair(bytes.get(i + 1..))
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// The byte written as two hex digits at the start of `s`, if they are there.
pub(super) fn hex_pair(s: Option<&[u8]>) -> Option<u8> {
    match s? {
        [high, low, ..] => Some(hex_digit(*high)? << 4 | hex_digit(*low)?),
        _ => None,
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes RFC 2047 encoded words in a text, dropping the blanks between adjacent words.
/// Senders put them even inside quoted parameter values (which RFC 2047 forbids), so they
/// are decoded wherever they appear. A malformed word is kept literally.
fn decode_encoded_words(value: &str) -> String {
    if !value.contains("=?") {
        return value.to_owned();
    }
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let before = rest.get(..start).unwrap_or_default();
        let candidate = rest.get(start..).unwrap_or_default();
        match decode_word(candidate) {
            Some((decoded, used)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = candidate.get(used..).unwrap_or_default();
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = candidate.get(2..).unwrap_or_default();
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `=?charset?B|Q?text?=` word at the start of `s`: its text and its length. Words are
/// looked for within [`MAX_WORD`] bytes, so that a value full of unterminated `=?` costs
/// linear time.
fn decode_word(s: &str) -> Option<(String, usize)> {
    let window = s.get(..s.floor_char_boundary(MAX_WORD)).unwrap_or_default();
    let inner = window.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = rest.get(..end)?;
    if charset.is_empty() || text.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    // RFC 2231 §5: `charset*language`.
    let charset = charset.split('*').next().unwrap_or(charset);
    let bytes = match encoding {
        "B" | "b" => LENIENT_BASE64.decode(text).ok()?,
        "Q" | "q" => q_decode(text.as_bytes()),
        _ => return None,
    };
    // `rest` is a suffix of `window`: the word ends two bytes after its text.
    let used = window.len() - rest.len() + end + 2;
    Some((decode_bytes(&bytes, Some(charset)), used))
}

/// RFC 2047 "Q": `_` is a space, `=XX` a byte.
fn q_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'_' => out.push(b' '),
            b'=' => {
                if let Some(byte) = hex_pair(text.get(i + 1..)) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b);
            }
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mime::PartHeaders;

    fn name_of(raw: &[u8]) -> Option<String> {
        PartHeaders::parse(raw).unwrap().filename()
    }

    #[test]
    fn raw_latin1_and_utf8_names() {
        let latin1 = b"Content-Disposition: attachment; filename=filnamn-med-\xe5\xe4\xf6.xml\n";
        assert_eq!(name_of(latin1).as_deref(), Some("filnamn-med-åäö.xml"));
        let utf8 = "Content-Disposition: attachment; filename=\"filnamn-med-åäö.xml\"\n";
        assert_eq!(
            name_of(utf8.as_bytes()).as_deref(),
            Some("filnamn-med-åäö.xml")
        );
    }

    #[test]
    fn disposition_wins_over_content_type_name() {
        let raw = b"Content-Type: text/plain; name=b.txt\nContent-Disposition: attachment; filename=a.txt\n";
        assert_eq!(name_of(raw).as_deref(), Some("a.txt"));
        let raw = b"Content-Type: text/plain; name=b.txt\nContent-Disposition: attachment\n";
        assert_eq!(name_of(raw).as_deref(), Some("b.txt"));
        assert_eq!(name_of(b"Content-Disposition: attachment;\n"), None);
        assert_eq!(
            name_of(b"Content-Disposition: attachment; filename=\"\"\n"),
            None
        );
    }

    #[test]
    fn rfc2231_single_and_continued() {
        let raw = b"Content-Disposition: attachment; filename*=UTF-8''filnamn-med-%C3%A5%C3%A4%C3%B6.xml\n";
        assert_eq!(name_of(raw).as_deref(), Some("filnamn-med-åäö.xml"));
        let raw = b"Content-Disposition: attachment; filename*=iso-8859-1'sv'%E5%E4%F6.txt; filename=fallback.txt\n";
        assert_eq!(name_of(raw).as_deref(), Some("åäö.txt"));
        // A UTF-8 sequence split between two encoded segments, then a plain segment.
        let raw = b"Content-Disposition: attachment;\n filename*0*=UTF-8''l%C3;\n filename*1*=%A5ng-;\n filename*2=\"namn.xml\"\n";
        assert_eq!(name_of(raw).as_deref(), Some("lång-namn.xml"));
        // Out of order is sorted; a gap ends the value.
        let raw = b"Content-Type: text/plain; name*1=b; name*0=a; name*3=d\n";
        assert_eq!(name_of(raw).as_deref(), Some("ab"));
        // No segment 0: not an extended value, plain name used.
        let raw = b"Content-Type: text/plain; name*1=b; name=plain\n";
        assert_eq!(name_of(raw).as_deref(), Some("plain"));
        // Without charset quotes the value is taken as it is.
        let raw = b"Content-Disposition: attachment; filename*=a%20b\n";
        assert_eq!(name_of(raw).as_deref(), Some("a b"));
    }

    #[test]
    fn rfc2047_words() {
        let raw = b"Content-Disposition: attachment; filename=\"=?UTF-8?B?ZmlsbmFtbi1tZWQtw6XDpMO2LnhtbA==?=\"\n";
        assert_eq!(name_of(raw).as_deref(), Some("filnamn-med-åäö.xml"));
        let raw =
            b"Content-Type: text/plain; name=\"=?ISO-8859-1?Q?filnamn_med_=E5=E4=F6.xml?=\"\n";
        assert_eq!(name_of(raw).as_deref(), Some("filnamn med åäö.xml"));
        // Adjacent words join without the blank; text around them stays.
        assert_eq!(
            decode_encoded_words("x =?utf-8?q?a?= =?utf-8?q?b?= y"),
            "x ab y"
        );
        assert_eq!(decode_encoded_words("=?UTF-8*sv?Q?=C3=A5?="), "å");
        // Malformed words stay literal.
        for literal in [
            "=?",
            "=?x?",
            "=?utf-8?X?abc?=",
            "=??Q?a?=",
            "a=?utf-8?q?b c?=",
        ] {
            assert_eq!(decode_encoded_words(literal), literal);
        }
    }

    #[test]
    fn unterminated_words_cost_linear_time() {
        for unit in ["=?x?Q?a ", "=?x?Q?å "] {
            let hostile = unit.repeat(8000);
            let start = std::time::Instant::now();
            assert_eq!(decode_encoded_words(&hostile), hostile);
            assert!(start.elapsed() < std::time::Duration::from_secs(1));
        }
        let long = format!("=?utf-8?q?{}?=", "a".repeat(MAX_WORD));
        assert_eq!(decode_encoded_words(&long), long);
    }

    #[test]
    fn percent_and_hex_edges() {
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%zz%41"), b"%zzA");
        assert_eq!(q_decode(b"=4"), b"=4");
        assert_eq!(hex_pair(Some(b"fF")), Some(0xff));
        assert_eq!(decode_bytes(b"\xc3\xa5", Some("ISO-8859-1")), "Ã¥");
        assert_eq!(decode_bytes(b"\xc3\xa5", Some("x-unknown")), "å");
    }
}
