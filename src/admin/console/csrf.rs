//! Cross-site request forgery defence for the console's forms.
//!
//! A loopback admin listener is reachable from any web page open in the operator's
//! browser, and a browser happily posts a form to `http://127.0.0.1:9180/…`. So a form
//! post must prove it came from a console page: it carries a per-process random token in a
//! hidden field (a foreign page cannot read it: no CORS, and the pages cannot be framed),
//! and the browser's own `Sec-Fetch-Site` and `Origin` headers must not name another site.

use http::HeaderMap;
use ring::rand::{SecureRandom, SystemRandom};

use crate::admin::actions::cross_site;

/// The form field that carries the token.
pub(in crate::admin) const FIELD: &str = "csrf";

/// A random token for this process's forms (256 bits, hex).
#[derive(Clone)]
pub(in crate::admin) struct CsrfToken(String);

/// Why a form post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(in crate::admin) enum CsrfRefusal {
    /// The browser says the request comes from another site (`Sec-Fetch-Site`, `Origin`).
    #[error("the request comes from another site")]
    CrossSite,
    /// The form's token is missing or wrong (e.g. a page from before a restart).
    #[error("the form token is missing or stale; reload the page and try again")]
    BadToken,
}

impl CsrfToken {
    /// A fresh token from the system's random number generator. Should that ever fail,
    /// the token is a fresh random UUID pair instead of anything guessable.
    pub(in crate::admin) fn random() -> CsrfToken {
        let mut bytes = [0u8; 32];
        let token = match SystemRandom::new().fill(&mut bytes) {
            Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        CsrfToken(token)
    }

    /// The value to put in the hidden field.
    pub(in crate::admin) fn value(&self) -> &str {
        &self.0
    }

    /// Checks a form post: its headers (the JSON API's cross-site rule,
    /// [`cross_site`]) and the token it carried.
    pub(in crate::admin) fn check(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<(), CsrfRefusal> {
        if cross_site(headers) {
            return Err(CsrfRefusal::CrossSite);
        }
        match token {
            Some(token) if equal_in_constant_time(token.as_bytes(), self.0.as_bytes()) => Ok(()),
            _ => Err(CsrfRefusal::BadToken),
        }
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (CsrfToken::random(), CsrfToken::random());
        assert_eq!(a.value().len(), 64);
        assert_ne!(a.value(), b.value());
    }

    #[test]
    fn a_same_origin_post_with_the_token_passes() {
        let token = CsrfToken::random();
        let good = Some(token.value());
        let h = headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "http://127.0.0.1:9180"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(token.check(&h, good), Ok(()));
        // Old browsers and curl send neither header: the token alone decides.
        assert_eq!(token.check(&HeaderMap::new(), good), Ok(()));
    }

    #[test]
    fn cross_site_posts_and_wrong_tokens_are_refused() {
        let token = CsrfToken::random();
        let good = Some(token.value());
        let cross = headers(&[("host", "127.0.0.1:9180"), ("sec-fetch-site", "cross-site")]);
        assert_eq!(token.check(&cross, good), Err(CsrfRefusal::CrossSite));
        let sibling = headers(&[("sec-fetch-site", "same-site")]);
        assert_eq!(token.check(&sibling, good), Err(CsrfRefusal::CrossSite));
        let foreign = headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(token.check(&foreign, good), Err(CsrfRefusal::CrossSite));
        let null = headers(&[("host", "127.0.0.1:9180"), ("origin", "null")]);
        assert_eq!(token.check(&null, good), Err(CsrfRefusal::CrossSite));
        let other_port = headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "http://127.0.0.1:8000"),
        ]);
        assert_eq!(token.check(&other_port, good), Err(CsrfRefusal::CrossSite));
        let same = headers(&[
            ("host", "127.0.0.1:9180"),
            ("origin", "http://127.0.0.1:9180"),
        ]);
        assert_eq!(token.check(&same, None), Err(CsrfRefusal::BadToken));
        assert_eq!(token.check(&same, Some("00")), Err(CsrfRefusal::BadToken));
        let other = CsrfToken::random();
        assert_eq!(
            token.check(&same, Some(other.value())),
            Err(CsrfRefusal::BadToken)
        );
    }
}
