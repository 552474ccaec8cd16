//! Byte-level searching for the reader: the multipart delimiter (one `memchr::memmem`
//! search for `\n--boundary`, then a look at what follows it) and the blank line that ends
//! a header block. No state: the reader says where to look, these say what is there.

use memchr::memmem::Finder;
use memchr::{memchr_iter, memchr2};

use crate::protocol::ProtocolError;

/// Longest boundary accepted. RFC 2046 allows 70 characters; some senders write more, but a
/// huge one would only make every held-back tail larger.
const MAX_BOUNDARY_LEN: usize = 256;

/// The multipart delimiter of one message: `\n--boundary` and its searcher.
#[derive(Debug)]
pub(super) struct Delimiter {
    /// `\n--boundary`.
    pub(super) pattern: Vec<u8>,
    finder: Finder<'static>,
}

impl Delimiter {
    pub(super) fn new(boundary: &[u8]) -> Result<Self, ProtocolError> {
        if boundary.is_empty() || boundary.len() > MAX_BOUNDARY_LEN {
            return Err(ProtocolError::mime(format!(
                "boundary must be 1 to {MAX_BOUNDARY_LEN} characters"
            )));
        }
        if !boundary.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(ProtocolError::mime("boundary has characters outside ASCII"));
        }
        let mut pattern = b"\n--".to_vec();
        pattern.extend_from_slice(boundary);
        let finder = Finder::new(&pattern).into_owned();
        Ok(Delimiter { pattern, finder })
    }

    pub(super) fn boundary(&self) -> &[u8] {
        self.pattern.get(3..).unwrap_or_default()
    }

    /// Finds the first real delimiter in `hay`. The line break before a delimiter belongs
    /// to it, so a CR before the LF is not content (unless it is before `skip`).
    pub(super) fn scan(&self, hay: &[u8], skip: usize) -> Scan {
        let mut from = 0;
        while let Some(found) = hay.get(from..).and_then(|h| self.finder.find(h)) {
            let lf = from + found;
            let after = lf + self.pattern.len();
            match classify(hay.get(after..).unwrap_or_default()) {
                Class::Delimiter => {
                    let content_end = without_cr(hay, lf, skip);
                    return Scan::Found { content_end, after };
                }
                Class::Undecided => {
                    let hold = without_cr(hay, lf, skip);
                    return Scan::NotFound { hold };
                }
                // `--boundaryX`: a longer line that only starts like a delimiter.
                Class::NotDelimiter => from = lf + 1,
            }
        }
        // A delimiter may begin in the last bytes: keep them from the first CR or LF there.
        let tail = hay.len().saturating_sub(self.pattern.len()).max(from);
        let hold = match memchr2(b'\r', b'\n', hay.get(tail..).unwrap_or_default()) {
            Some(i) => tail + i,
            None => hay.len(),
        };
        Scan::NotFound { hold }
    }
}

/// `lf`, or the CR just before it if that CR is content (at or after `skip`).
fn without_cr(hay: &[u8], lf: usize, skip: usize) -> usize {
    match lf.checked_sub(1) {
        Some(cr) if cr >= skip && hay.get(cr) == Some(&b'\r') => cr,
        _ => lf,
    }
}

/// What follows `--boundary` decides whether it is a delimiter: `--` (close), blanks (transport
/// padding) or a line break; anything else means a longer line that merely starts the same.
pub(super) fn classify(rest: &[u8]) -> Class {
    match rest {
        [] | [b'-'] => Class::Undecided,
        [b'-', b'-', ..] | [b' ' | b'\t' | b'\r' | b'\n', ..] => Class::Delimiter,
        _ => Class::NotDelimiter,
    }
}

/// Finds the blank line that ends a header block starting at the beginning of `hay`, looking
/// at line breaks from `scanned` on (earlier ones were looked at before).
pub(super) fn find_blank_line(hay: &[u8], scanned: usize) -> Blank {
    match hay {
        [b'\n', ..] => return Blank::Found { end: 0, newline: 0 },
        [b'\r', b'\n', ..] => return Blank::Found { end: 0, newline: 1 },
        [] | [b'\r'] => return Blank::Missing { scanned: 0 },
        _ => {}
    }
    let rest = hay.get(scanned..).unwrap_or_default();
    for lf in memchr_iter(b'\n', rest).map(|i| scanned + i) {
        match hay.get(lf + 1..).unwrap_or_default() {
            [b'\n', ..] => {
                return Blank::Found {
                    end: lf + 1,
                    newline: lf + 1,
                };
            }
            [b'\r', b'\n', ..] => {
                return Blank::Found {
                    end: lf + 1,
                    newline: lf + 2,
                };
            }
            [] | [b'\r'] => return Blank::Missing { scanned: lf },
            _ => {}
        }
    }
    Blank::Missing { scanned: hay.len() }
}

/// Where the next delimiter is, as far as the bytes at hand tell.
pub(super) enum Scan {
    /// A delimiter: content ends at `content_end`; `after` is just past `--boundary`.
    Found { content_end: usize, after: usize },
    /// No delimiter yet: bytes from `hold` on may start one.
    NotFound { hold: usize },
}

/// What the bytes after `\n--boundary` make of it.
pub(super) enum Class {
    Delimiter,
    NotDelimiter,
    Undecided,
}

/// Where a header block ends, as far as the bytes at hand tell.
pub(super) enum Blank {
    /// The block is `hay[..end]`; the blank line's LF is at `newline`.
    Found { end: usize, newline: usize },
    /// Not yet; line breaks before `scanned` need not be looked at again.
    Missing { scanned: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(hay: &[u8], skip: usize) -> (bool, usize) {
        match Delimiter::new(b"bd").unwrap().scan(hay, skip) {
            Scan::Found { content_end, after } => {
                assert_eq!(hay.get(after - 4..after), Some(&b"--bd"[..]));
                (true, content_end)
            }
            Scan::NotFound { hold } => (false, hold),
        }
    }

    #[test]
    fn delimiters_and_what_is_held_back() {
        assert_eq!(scan(b"data\r\n--bd\r\n", 0), (true, 4));
        assert_eq!(scan(b"data\n--bd--", 0), (true, 4));
        assert_eq!(scan(b"data\n--bd \t", 0), (true, 4));
        assert_eq!(scan(b"\r\n--bdx\r\n--bd\n", 0), (true, 7));
        // The CR of the blank line is not content; a CR at the content start is.
        assert_eq!(scan(b"\n--bd\n", 1), (true, 0));
        assert_eq!(scan(b"\n\r\n--bd\n", 1), (true, 1));
        // Not decidable yet: hold from the CR before the LF.
        assert_eq!(scan(b"data\r\n--bd", 0), (false, 4));
        assert_eq!(scan(b"data\r\n--bd-", 0), (false, 4));
        assert_eq!(scan(b"data\r\n--b", 0), (false, 4));
        assert_eq!(scan(b"data\r", 0), (false, 4));
        assert_eq!(scan(b"data", 0), (false, 4));
        assert_eq!(scan(b"\n", 1), (false, 0));
        // Only the last pattern-length bytes can start a delimiter.
        assert_eq!(scan(b"a\nbcdefgh", 0), (false, 9));
        assert_eq!(scan(b"\n--bdX--b", 0), (false, 9));
    }

    #[test]
    fn classification() {
        assert!(matches!(classify(b""), Class::Undecided));
        assert!(matches!(classify(b"-"), Class::Undecided));
        assert!(matches!(classify(b"--"), Class::Delimiter));
        assert!(matches!(classify(b"\r"), Class::Delimiter));
        assert!(matches!(classify(b"-x"), Class::NotDelimiter));
        assert!(matches!(classify(b"x"), Class::NotDelimiter));
    }

    #[test]
    fn boundaries_are_checked() {
        assert!(Delimiter::new(b"").is_err());
        assert!(Delimiter::new(&[b'a'; MAX_BOUNDARY_LEN + 1]).is_err());
        assert!(Delimiter::new(b"a\nb").is_err());
        assert!(Delimiter::new(b"a\xe5").is_err());
        let d = Delimiter::new(b"----=_Part 1").unwrap();
        assert_eq!(d.boundary(), b"----=_Part 1");
    }

    #[test]
    fn blank_lines() {
        let found = |hay: &[u8], from| match find_blank_line(hay, from) {
            Blank::Found { end, newline } => Some((end, newline)),
            Blank::Missing { .. } => None,
        };
        assert_eq!(found(b"\nx", 0), Some((0, 0)));
        assert_eq!(found(b"\r\nx", 0), Some((0, 1)));
        assert_eq!(found(b"A: 1\n\nx", 0), Some((5, 5)));
        assert_eq!(found(b"A: 1\r\nB: 2\r\n\r\nx", 0), Some((12, 13)));
        assert_eq!(found(b"A: 1\r\n", 0), None);
        assert_eq!(found(b"\r", 0), None);
        assert!(matches!(
            find_blank_line(b"A: 1\r\n", 0),
            Blank::Missing { scanned: 5 }
        ));
        assert!(matches!(
            find_blank_line(b"A: 1\r\nB", 0),
            Blank::Missing { scanned: 7 }
        ));
        assert_eq!(found(b"A: 1\r\n\r\n", 5), Some((6, 7)));
    }
}
