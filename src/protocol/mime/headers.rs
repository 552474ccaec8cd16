//! Header blocks of MIME entities (RFC 2045, RFC 5322 §2.2): the raw bytes as received, the
//! unfolded fields, and the two structured values the broker needs (`Content-Type` with its
//! parameters, `Content-Transfer-Encoding`).
//!
//! Values are kept as bytes because senders write raw ISO-8859-1 in them (file names);
//! turning them into text happens on demand, UTF-8 first and ISO-8859-1 as the fallback.

use std::fmt;

use memchr::memchr;

use super::filename;
use crate::protocol::ProtocolError;

/// A part's `Content-Transfer-Encoding` (RFC 2045 §6). The reader refuses other values,
/// because a part whose encoding is unknown cannot be checked or decoded later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferEncoding {
    /// `binary`: raw bytes, any line length.
    Binary,
    /// `7bit`: the RFC 2045 default when the header is absent.
    SevenBit,
    /// `8bit`: raw bytes in lines.
    EightBit,
    /// `base64`.
    Base64,
    /// `quoted-printable`.
    QuotedPrintable,
}

impl TransferEncoding {
    /// Reads a header value (case-insensitive, surrounding blanks ignored), so that an
    /// unknown encoding is caught at the part header rather than deep in a consumer.
    pub fn parse(value: &[u8]) -> Result<Self, ProtocolError> {
        let value = value.trim_ascii();
        let known = [
            ("binary", TransferEncoding::Binary),
            ("7bit", TransferEncoding::SevenBit),
            ("8bit", TransferEncoding::EightBit),
            ("base64", TransferEncoding::Base64),
            ("quoted-printable", TransferEncoding::QuotedPrintable),
        ];
        known
            .into_iter()
            .find(|(name, _)| value.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, encoding)| encoding)
            .ok_or_else(|| {
                ProtocolError::mime(format!(
                    "unknown Content-Transfer-Encoding {:?}",
                    String::from_utf8_lossy(value)
                ))
            })
    }

    /// The header value as written in messages shsd produces.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferEncoding::Binary => "binary",
            TransferEncoding::SevenBit => "7bit",
            TransferEncoding::EightBit => "8bit",
            TransferEncoding::Base64 => "base64",
            TransferEncoding::QuotedPrintable => "quoted-printable",
        }
    }

    /// Whether the part bytes are the content itself, so that no decoder needs to run.
    pub fn is_identity(self) -> bool {
        !matches!(
            self,
            TransferEncoding::Base64 | TransferEncoding::QuotedPrintable
        )
    }
}

/// One header block of a MIME entity: the raw bytes exactly as received, so that a stored
/// message is re-emitted byte for byte, and the unfolded fields for lookups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHeaders {
    raw: Vec<u8>,
    fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    value: Vec<u8>,
}

impl PartHeaders {
    /// Parses a header block without its terminating blank line (CRLF or LF line ends).
    /// Folded lines are unfolded; a line without a colon, a blank line or a continuation
    /// line before any field is a broken structure.
    pub fn parse(raw: &[u8]) -> Result<Self, ProtocolError> {
        let mut fields: Vec<Field> = Vec::new();
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        if !body.is_empty() {
            for line in body.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if let [b' ' | b'\t', ..] = line {
                    // RFC 5322 unfolding: drop the line break, keep the blanks.
                    let last = fields.last_mut().ok_or_else(|| {
                        ProtocolError::mime("header block starts with a continuation line")
                    })?;
                    last.value.extend_from_slice(line);
                    continue;
                }
                if line.is_empty() {
                    return Err(ProtocolError::mime("blank line inside a header block"));
                }
                let colon = memchr(b':', line)
                    .ok_or_else(|| ProtocolError::mime("header line without a colon"))?;
                let (name, value) = line.split_at(colon);
                let name = name.trim_ascii_end();
                if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
                    return Err(ProtocolError::mime(format!(
                        "invalid header name {:?}",
                        String::from_utf8_lossy(name)
                    )));
                }
                fields.push(Field {
                    name: name.iter().map(|&b| char::from(b)).collect(),
                    value: value.get(1..).unwrap_or_default().to_vec(),
                });
            }
        }
        for field in &mut fields {
            let trimmed = field.value.trim_ascii();
            if trimmed.len() != field.value.len() {
                field.value = trimmed.to_vec();
            }
        }
        Ok(PartHeaders {
            raw: raw.to_vec(),
            fields,
        })
    }

    /// Builds a header block for a part shsd writes itself (CRLF line ends). CR and LF inside
    /// names or values become spaces, so that no value can inject a header line.
    pub fn from_fields(fields: &[(&str, &str)]) -> Self {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        let mut raw = Vec::new();
        let mut parsed = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let (name, value) = (clean(name), clean(value));
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value.as_bytes());
            raw.extend_from_slice(b"\r\n");
            parsed.push(Field {
                name: name.trim().to_owned(),
                value: value.trim().as_bytes().to_vec(),
            });
        }
        PartHeaders {
            raw,
            fields: parsed,
        }
    }

    /// The header block exactly as received (or as built), for byte-exact re-emission.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The unfolded, trimmed value of the first field with this name (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
            .map(|field| field.value.as_slice())
    }

    /// Every field in order, as (name, unfolded value), for logging and diagnostics.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields
            .iter()
            .map(|field| (field.name.as_str(), field.value.as_slice()))
    }

    /// The `Content-Type`, if present and well-formed; the broker checks the label's type and
    /// reads `charset` and `name` from it.
    pub fn content_type(&self) -> Option<ContentType> {
        let value = self.get("content-type")?;
        ContentType::parse(&filename::decode_bytes(value, None)).ok()
    }

    /// The `Content-Transfer-Encoding`; `7bit` when absent (RFC 2045 §6.1).
    pub fn transfer_encoding(&self) -> Result<TransferEncoding, ProtocolError> {
        match self.get("content-transfer-encoding") {
            Some(value) => TransferEncoding::parse(value),
            None => Ok(TransferEncoding::SevenBit),
        }
    }

    /// The part's file name: `Content-Disposition` `filename` (RFC 2231, including
    /// continuations, or RFC 2047 encoded words, or raw UTF-8/ISO-8859-1), else the
    /// `Content-Type` `name`. `None` when absent or empty. The name is as the sender wrote
    /// it: callers that use it as a path must sanitise it.
    pub fn filename(&self) -> Option<String> {
        let from_disposition = self.get("content-disposition").and_then(|value| {
            let text = filename::decode_bytes(value, None);
            let (_, params) = split_params(&text);
            filename::param_value(&params, "filename")
        });
        from_disposition
            .or_else(|| {
                self.content_type()
                    .and_then(|ct| filename::param_value(&ct.params, "name"))
            })
            .filter(|name| !name.is_empty())
    }

    /// The `Content-Type` `charset` parameter, lower-cased (charset names are
    /// case-insensitive).
    pub fn charset(&self) -> Option<String> {
        self.content_type()?
            .param("charset")
            .map(str::to_ascii_lowercase)
    }
}

/// A parsed `Content-Type` value: the media type and its parameters, so that callers compare
/// types without worrying about case, quoting or folding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lower-cased.
    pub media_type: String,
    /// Parameters in order; names lower-cased, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// Parses `type/subtype; name=value; name="quoted value"`. Parameters without `=` are
    /// skipped (senders write `*/*;`), a media type without `/` is an error.
    pub fn parse(value: &str) -> Result<Self, ProtocolError> {
        let (media_type, params) = split_params(value);
        let (kind, subtype) = media_type
            .split_once('/')
            .ok_or_else(|| ProtocolError::mime(format!("invalid media type {media_type:?}")))?;
        let (kind, subtype) = (kind.trim(), subtype.trim());
        if !is_token(kind) || !is_token(subtype) {
            return Err(ProtocolError::mime(format!(
                "invalid media type {media_type:?}"
            )));
        }
        Ok(ContentType {
            media_type: format!("{kind}/{subtype}").to_ascii_lowercase(),
            params,
        })
    }

    /// The value of a parameter (name case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether this is an XML media type (`text/xml`, `application/xml`, `*/*+xml`): the
    /// label part must be one.
    pub fn is_xml(&self) -> bool {
        self.media_type == "text/xml"
            || self.media_type == "application/xml"
            || self.media_type.ends_with("+xml")
    }
}

impl fmt::Display for ContentType {
    /// Writes the value back as a header value, quoting parameter values where needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.media_type)?;
        for (name, value) in &self.params {
            if is_token(value) {
                write!(f, "; {name}={value}")?;
            } else {
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "; {name}=\"{escaped}\"")?;
            }
        }
        Ok(())
    }
}

/// RFC 2045 token: printable ASCII without blanks and tspecials.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| (33..=126).contains(&b) && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// Splits a structured header value into its leading item (media type, disposition type)
/// and its parameters. Lenient on purpose: stray `;`, blanks and unterminated quotes are
/// tolerated, because real senders write them and nothing here is trusted afterwards.
pub(super) fn split_params(value: &str) -> (&str, Vec<(String, String)>) {
    let (head, mut rest) = match value.split_once(';') {
        Some((head, rest)) => (head.trim(), rest),
        None => return (value.trim(), Vec::new()),
    };
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let name_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_end);
        let Some(after) = after.strip_prefix('=') else {
            // A parameter without a value: skip it.
            rest = after;
            continue;
        };
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted),
            None => {
                let end = after.find(';').unwrap_or(after.len());
                let (value, remaining) = after.split_at(end);
                (value.trim_end().to_owned(), remaining)
            }
        };
        params.push((name.trim().to_ascii_lowercase(), value));
        rest = remaining;
    }
    (head, params)
}

/// Reads a quoted string after its opening quote; returns the unescaped value and what
/// follows the closing quote up to the next `;` (garbage there is ignored).
fn read_quoted(s: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '"' => {
                let after = s.get(i + 1..).unwrap_or_default();
                let next = after.find(';').unwrap_or(after.len());
                return (value, after.get(next..).unwrap_or_default());
            }
            _ => value.push(c),
        }
    }
    (value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folded_fields_case_insensitively() {
        let raw = b"Subject: SHS-message\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n\tboundary=\"----=_Part_8\"\n";
        let headers = PartHeaders::parse(raw).unwrap();
        assert_eq!(headers.raw(), raw);
        assert_eq!(headers.get("mime-version"), Some(&b"1.0"[..]));
        assert_eq!(
            headers.get("CONTENT-TYPE"),
            Some(&b"multipart/mixed;\tboundary=\"----=_Part_8\""[..])
        );
        let ct = headers.content_type().unwrap();
        assert_eq!(ct.media_type, "multipart/mixed");
        assert_eq!(ct.param("Boundary"), Some("----=_Part_8"));
        assert_eq!(headers.iter().count(), 3);
    }

    #[test]
    fn crlf_and_missing_final_line_end_parse_alike() {
        let a = PartHeaders::parse(b"A: 1\r\nB:  two \r\n\tparts\r\n").unwrap();
        let b = PartHeaders::parse(b"A: 1\nB:  two \n\tparts").unwrap();
        assert_eq!(a.get("b"), Some(&b"two \tparts"[..]));
        assert_eq!(a.get("a"), b.get("a"));
        assert_eq!(a.get("b"), b.get("b"));
        assert_eq!(PartHeaders::parse(b"").unwrap().iter().count(), 0);
    }

    #[test]
    fn broken_header_blocks_are_errors() {
        for raw in [
            &b" folded first\n"[..],
            b"no colon here\n",
            b"A: 1\n\nB: 2\n",
            b": empty name\n",
            b"Bad Name: x\n",
        ] {
            let err = PartHeaders::parse(raw).unwrap_err();
            assert!(matches!(err, ProtocolError::Mime(_)), "{raw:?}: {err:?}");
        }
    }

    #[test]
    fn transfer_encodings() {
        let te = |v: &str| TransferEncoding::parse(v.as_bytes());
        assert_eq!(te("BASE64"), Ok(TransferEncoding::Base64));
        assert_eq!(
            te(" Quoted-Printable "),
            Ok(TransferEncoding::QuotedPrintable)
        );
        assert_eq!(te("7bit"), Ok(TransferEncoding::SevenBit));
        assert_eq!(te("8BIT"), Ok(TransferEncoding::EightBit));
        assert_eq!(te("binary"), Ok(TransferEncoding::Binary));
        assert!(matches!(te("x-uuencode"), Err(ProtocolError::Mime(_))));
        let none = PartHeaders::parse(b"Content-Type: text/plain\n").unwrap();
        assert_eq!(none.transfer_encoding(), Ok(TransferEncoding::SevenBit));
        for encoding in [
            TransferEncoding::Binary,
            TransferEncoding::SevenBit,
            TransferEncoding::EightBit,
            TransferEncoding::Base64,
            TransferEncoding::QuotedPrintable,
        ] {
            assert_eq!(te(encoding.as_str()), Ok(encoding));
        }
    }

    #[test]
    fn content_type_parameters() {
        let ct = ContentType::parse(
            "Text/XML ; charset=\"UTF-8\";; name=\"a \\\"b\\\";c.xml\" ; junk ; x = y ",
        )
        .unwrap();
        assert_eq!(ct.media_type, "text/xml");
        assert!(ct.is_xml());
        assert_eq!(ct.param("CHARSET"), Some("UTF-8"));
        assert_eq!(ct.param("name"), Some("a \"b\";c.xml"));
        assert_eq!(ct.param("x"), Some("y"));
        assert_eq!(ct.param("junk"), None);
        assert!(ContentType::parse("*/*;").is_ok());
        assert!(ContentType::parse("text").is_err());
        assert!(ContentType::parse("text/").is_err());
        assert!(ContentType::parse("te xt/plain").is_err());
        assert!(!ContentType::parse("text/plain").unwrap().is_xml());
        assert!(ContentType::parse("application/shs+xml").unwrap().is_xml());
    }

    #[test]
    fn content_type_display_round_trips() {
        let ct = ContentType::parse("multipart/mixed; boundary=\"a=b c\"; x=y").unwrap();
        assert_eq!(ct.to_string(), "multipart/mixed; boundary=\"a=b c\"; x=y");
        assert_eq!(ContentType::parse(&ct.to_string()).unwrap(), ct);
    }

    #[test]
    fn unterminated_quote_is_tolerated() {
        let (_, params) = split_params("attachment; filename=\"abc");
        assert_eq!(params, vec![("filename".to_owned(), "abc".to_owned())]);
    }

    #[test]
    fn from_fields_writes_crlf_and_blocks_injection() {
        let headers = PartHeaders::from_fields(&[
            ("Content-Type", "text/xml; charset=ISO-8859-1"),
            ("X-Evil", "a\r\nInjected: yes"),
        ]);
        assert_eq!(
            headers.raw(),
            b"Content-Type: text/xml; charset=ISO-8859-1\r\nX-Evil: a  Injected: yes\r\n"
        );
        assert_eq!(headers.get("injected"), None);
        assert_eq!(headers.charset().as_deref(), Some("iso-8859-1"));
        assert_eq!(PartHeaders::parse(headers.raw()).unwrap(), headers);
    }
}
