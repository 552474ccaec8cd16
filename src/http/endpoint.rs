//! Which SHS endpoint a request is for (spec §3): method and path in, [`Endpoint`] out.
//!
//! Pure, so the whole routing table is unit-tested without a server.

use crate::protocol::urn::{Address, ProductId, strip_prefix};

use crate::percent::percent_decode;

/// One of the SHS endpoints, with its path parameters parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /shs/rs`: send a message.
    Send,
    /// `GET /shs/ds/{address}[/{product}]`: list a mailbox.
    List {
        /// The mailbox.
        mailbox: Address,
        /// A product filter from the path, on top of the `producttype` query parameter.
        product: Option<ProductId>,
    },
    /// `GET /shs/ds/{address}/{txId}`: fetch one message.
    Fetch {
        /// The mailbox.
        mailbox: Address,
        /// The message's tx.id.
        tx_id: String,
    },
    /// `POST /shs/ds/{address}/{txId}?action=ack`: acknowledge one message.
    Ack {
        /// The mailbox.
        mailbox: Address,
        /// The message's tx.id.
        tx_id: String,
    },
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path (404).
    NotFound,
    /// The path exists but not for this method (405 with `Allow`).
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'static str,
    },
    /// The path names a mailbox that is not an SHS address (400).
    BadAddress(String),
}

/// Routes a request. `prefix` is the configured path prefix (`""` or e.g. `/axel`).
pub fn route(method: &str, path: &str, prefix: &str) -> Result<Endpoint, RouteError> {
    let rest = path.strip_prefix(prefix).ok_or(RouteError::NotFound)?;
    let segments: Vec<&str> = rest
        .strip_prefix('/')
        .ok_or(RouteError::NotFound)?
        .split('/')
        .collect();
    match segments.as_slice() {
        ["shs", "rs"] => match method {
            "POST" => Ok(Endpoint::Send),
            _ => Err(RouteError::MethodNotAllowed { allow: "POST" }),
        },
        ["shs", "ds", address] if !address.is_empty() => {
            let mailbox = mailbox(address)?;
            match method {
                "GET" => Ok(Endpoint::List {
                    mailbox,
                    product: None,
                }),
                _ => Err(RouteError::MethodNotAllowed { allow: "GET" }),
            }
        }
        ["shs", "ds", address, item] if !address.is_empty() && !item.is_empty() => {
            let mailbox = mailbox(address)?;
            let item = percent_decode(item).ok_or(RouteError::NotFound)?;
            match (method, list_product(&item)) {
                ("GET", Some(product)) => Ok(Endpoint::List {
                    mailbox,
                    product: Some(product),
                }),
                ("GET", None) => Ok(Endpoint::Fetch {
                    mailbox,
                    tx_id: item,
                }),
                ("POST", None) => Ok(Endpoint::Ack {
                    mailbox,
                    tx_id: item,
                }),
                ("POST", Some(_)) => Err(RouteError::MethodNotAllowed { allow: "GET" }),
                _ => Err(RouteError::MethodNotAllowed { allow: "GET, POST" }),
            }
        }
        _ => Err(RouteError::NotFound),
    }
}

fn mailbox(segment: &str) -> Result<Address, RouteError> {
    let text = percent_decode(segment).ok_or_else(|| RouteError::BadAddress(segment.to_owned()))?;
    text.parse().map_err(|_| RouteError::BadAddress(text))
}

/// The second segment names a product (a list filter) when it is a special product name or
/// carries the `urn:X-shs:` prefix; a bare UUID or any other NMTOKEN is a tx.id (spec §3).
fn list_product(segment: &str) -> Option<ProductId> {
    let product: ProductId = segment.parse().ok()?;
    let prefixed = strip_prefix(segment).len() != segment.trim().len();
    match product {
        ProductId::Uuid(_) if !prefixed => None,
        _ => Some(product),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TX: &str = "4c9fd3e8-b4c4-49aa-926a-52a68864a7b8";

    fn addr(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn send() {
        assert_eq!(route("POST", "/shs/rs", ""), Ok(Endpoint::Send));
        assert_eq!(
            route("GET", "/shs/rs", ""),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
    }

    #[test]
    fn list_with_and_without_prefix_in_the_address() {
        for path in [
            "/shs/ds/2120000142",
            "/shs/ds/urn:X-shs:2120000142",
            "/shs/ds/urn%3AX-shs%3A2120000142",
        ] {
            assert_eq!(
                route("GET", path, ""),
                Ok(Endpoint::List {
                    mailbox: addr("2120000142"),
                    product: None
                }),
                "{path}"
            );
        }
        assert_eq!(
            route("DELETE", "/shs/ds/2120000142", ""),
            Err(RouteError::MethodNotAllowed { allow: "GET" })
        );
    }

    #[test]
    fn list_by_product_segment() {
        assert_eq!(
            route("GET", "/shs/ds/2120000142.bygglov/confirm", ""),
            Ok(Endpoint::List {
                mailbox: addr("2120000142.bygglov"),
                product: Some(ProductId::Confirm)
            })
        );
        let prefixed = format!("/shs/ds/2120000142/urn:X-shs:{TX}");
        assert!(matches!(
            route("GET", &prefixed, ""),
            Ok(Endpoint::List {
                product: Some(ProductId::Uuid(_)),
                ..
            })
        ));
    }

    #[test]
    fn fetch_and_ack_by_tx_id() {
        let path = format!("/shs/ds/2120000142/{TX}");
        assert_eq!(
            route("GET", &path, ""),
            Ok(Endpoint::Fetch {
                mailbox: addr("2120000142"),
                tx_id: TX.to_owned()
            })
        );
        assert_eq!(
            route("POST", &path, ""),
            Ok(Endpoint::Ack {
                mailbox: addr("2120000142"),
                tx_id: TX.to_owned()
            })
        );
        assert_eq!(
            route("PUT", &path, ""),
            Err(RouteError::MethodNotAllowed { allow: "GET, POST" })
        );
        // A non-UUID tx.id is still a tx.id.
        assert!(matches!(
            route("GET", "/shs/ds/2120000142/tx-42", ""),
            Ok(Endpoint::Fetch { .. })
        ));
    }

    #[test]
    fn prefix_is_required_when_configured() {
        assert_eq!(route("POST", "/axel/shs/rs", "/axel"), Ok(Endpoint::Send));
        assert_eq!(route("POST", "/shs/rs", "/axel"), Err(RouteError::NotFound));
    }

    #[test]
    fn unknown_paths_and_bad_addresses() {
        for path in [
            "/",
            "/shs",
            "/shs/ds",
            "/shs/ds/",
            "/shs/rs/x",
            "/shs/ds/2120000142/a/b",
            "shs/rs",
        ] {
            assert_eq!(route("GET", path, ""), Err(RouteError::NotFound), "{path}");
        }
        assert!(matches!(
            route("GET", "/shs/ds/kalle", ""),
            Err(RouteError::BadAddress(_))
        ));
        assert!(matches!(
            route("GET", "/shs/ds/%zz", ""),
            Err(RouteError::BadAddress(_))
        ));
        assert_eq!(
            route("GET", "/shs/ds/2120000142/%e4%zz", ""),
            Err(RouteError::NotFound)
        );
    }
}
