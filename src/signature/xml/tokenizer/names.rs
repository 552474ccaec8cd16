//! Names: XML 1.0 `Name` characters, checked to be namespace-well-formed `QName`s.

use super::QName;
use crate::signature::SignatureError;
use crate::signature::error::malformed;

/// The classes of ASCII bytes in names: may start a name part, may continue one.
const NAME_START: u8 = 1;
const NAME_CONTINUE: u8 = 2;

/// [`NAME_START`] and [`NAME_CONTINUE`] for each byte (non-ASCII bytes have neither: their
/// characters are checked one by one).
const NAME_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            table[b] = NAME_START | NAME_CONTINUE;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            table[b] = NAME_CONTINUE;
        }
        b += 1;
    }
    table
};

/// A namespace-well-formed qualified name starting at byte `at` of `input`, and where it
/// ends: XML 1.0 `Name` characters, at most one colon, neither first nor last, followed
/// by white space, the end of the input or one of `delimiters`. Inlined: called for
/// every tag and attribute, and its result returned through memory cost more than the
/// scan itself (partial stores reloaded whole stall the pipeline).
#[inline(always)]
pub(super) fn qname<'t>(
    input: &'t str,
    at: usize,
    delimiters: &[u8],
) -> Result<(QName<'t>, usize), SignatureError> {
    let bytes = input.as_bytes();
    let mut i = at;
    // Where the current part (prefix or local name) starts.
    let mut part = at;
    let mut colon = None;
    loop {
        // The common case: a run of ASCII name characters.
        while let Some(&b) = bytes.get(i) {
            let class = NAME_CLASS[usize::from(b)];
            if class & NAME_CONTINUE == 0 || (i == part && class & NAME_START == 0) {
                break;
            }
            i += 1;
        }
        match bytes.get(i) {
            Some(b':') if i > part && colon.is_none() => {
                colon = Some(i);
                i += 1;
                part = i;
            }
            Some(&b) if b >= 0x80 => {
                let ch = input
                    .get(i..)
                    .and_then(|s| s.chars().next())
                    .ok_or_else(|| bad_name(input, at))?;
                let ok = if i == part {
                    is_name_start_char(ch)
                } else {
                    is_name_char(ch)
                };
                if !ok {
                    return Err(bad_name(input, at));
                }
                i += ch.len_utf8();
            }
            _ => break,
        }
    }
    let delimited = match bytes.get(i) {
        None | Some(b' ' | b'\t' | b'\r' | b'\n') => true,
        Some(b) => delimiters.contains(b),
    };
    if i == part || !delimited {
        return Err(bad_name(input, at));
    }
    let name = QName {
        raw: &input[at..i],
        prefix_len: colon.map_or(0, |c| c - at),
    };
    Ok((name, i))
}

/// The error for a malformed name at `at`.
#[cold]
fn bad_name(input: &str, at: usize) -> SignatureError {
    let shown: String = input.get(at..).unwrap_or("").chars().take(24).collect();
    malformed!("malformed name at byte {at}: {shown:?}")
}

/// XML 1.0 (fifth edition) `NameStartChar`, without the colon (namespaces give it a
/// meaning of its own).
fn is_name_start_char(ch: char) -> bool {
    matches!(ch,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (fifth edition) `NameChar`, without the colon.
fn is_name_char(ch: char) -> bool {
    is_name_start_char(ch)
        || matches!(ch,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}
