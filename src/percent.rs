//! Percent-encoding: decoding of URL path segments and query components, shared by the
//! SHS listener (`http`) and the admin listener (`admin`), and encoding of header values
//! (`X-shs-signer`); public so that clients decode what the node encodes.

/// Decodes `%XX` escapes in a path segment; `None` for broken escapes or non-UTF-8 results.
/// Percent-encodes the bytes of `text` that an HTTP header value cannot carry as they are
/// (controls, non-ASCII) and `%` itself, so a UTF-8 value fits a header and decodes back.
pub fn percent_encode_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space.
pub fn form_decode(component: &str) -> Option<String> {
    percent_decode(&component.replace('+', " "))
}

/// The `name=value` pairs of a query string, decoded; `None` for a broken escape.
pub fn query_pairs(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_percent_encoded_and_decode_back() {
        let text = "CN=Åsa Öberg, serial 1% off";
        let encoded = percent_encode_header(text);
        assert_eq!(encoded, "CN=%C3%85sa %C3%96berg, serial 1%25 off");
        assert_eq!(percent_decode(&encoded).as_deref(), Some(text));
    }

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(
            percent_decode("urn%3AX-shs%3A1"),
            Some("urn:X-shs:1".into())
        );
        assert_eq!(percent_decode("%C3%A5%C3%A4%C3%B6"), Some("åäö".into()));
        assert_eq!(percent_decode("%e5"), None, "not UTF-8");
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(form_decode("a+b%2Bc"), Some("a b+c".into()));
    }

    #[test]
    fn splits_query_pairs() {
        assert_eq!(
            query_pairs("a=1&b=&c&&d=x%20y"),
            Some(vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "".into()),
                ("d".into(), "x y".into()),
            ])
        );
        assert_eq!(query_pairs("a=%zz"), None);
    }
}
