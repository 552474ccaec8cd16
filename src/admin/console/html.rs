//! HTML escaping, in one place. Every value the console shows that did not come from a
//! string literal in this module's siblings — anything from a label, a search field, the
//! configuration, an error text — goes through [`esc`] (element text and quoted attribute
//! values alike) or, inside a URL, through [`url`] and then [`esc`]. Label values are
//! untrusted input from any SHS sender, so this is what keeps script injection impossible;
//! the Content-Security-Policy of [`super::layout`] is the second wall.

use std::fmt;

/// Text made safe for HTML element content and for double- or single-quoted attribute
/// values: `&`, `<`, `>`, `"` and `'` are replaced by character references.
pub(super) struct Escaped<'a>(&'a str);

/// Escapes `text` for HTML when formatted (`format!("<td>{}</td>", esc(value))`).
pub(super) fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            let reference = match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            };
            f.write_str(reference)?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Percent-encodes `text` for a URL query value or path segment: everything but the
/// unreserved characters of RFC 3986. The result still goes through [`esc`] when it is
/// written into an `href`.
pub(super) fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_become_references() {
        assert_eq!(
            esc(r#"<a href="x" onclick='y'>&amp;</a>"#).to_string(),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(esc("").to_string(), "");
        assert_eq!(esc("plain text åäö").to_string(), "plain text åäö");
    }

    #[test]
    fn a_script_in_a_label_value_cannot_open_a_tag_or_leave_an_attribute() {
        for hostile in [
            "<script>alert(1)</script>",
            "\"><script>alert(1)</script>",
            "' autofocus onfocus='alert(1)",
            "</textarea><img src=x onerror=alert(1)>",
            "<!--",
        ] {
            let text = esc(hostile).to_string();
            assert!(!text.contains(['<', '>', '"', '\'']), "{text}");
            // Inside an attribute it stays one attribute value.
            let attribute = format!("<input value=\"{}\">", esc(hostile));
            assert_eq!(attribute.matches('"').count(), 2, "{attribute}");
        }
    }

    #[test]
    fn escaping_keeps_multibyte_characters_whole() {
        assert_eq!(esc("ö<ü>").to_string(), "ö&lt;ü&gt;");
    }

    #[test]
    fn urls_encode_everything_but_unreserved_characters() {
        assert_eq!(url("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(url("urn:X-shs:1.a_b~"), "urn%3AX-shs%3A1.a_b~");
        assert_eq!(url("\"><script>"), "%22%3E%3Cscript%3E");
    }
}
