//! shsd — an SHS 1.2 message broker.
//!
//! # Layout
//! - [`protocol`]: the SHS wire formats (label, MIME, management documents, message lists,
//!   addresses) without any I/O, so that they can be tested, fuzzed and benchmarked alone.
//! - [`tls`]: mutual TLS configs (rustls) and the caller's `PeerIdentity`, once per connection.
//! - [`config`]: the TOML configuration parsed into typed values; every error at once.
//! - [`http`]: the SHS endpoints over hyper: routing, handlers, errors rendered in one place.
//! - [`pki`]: the example PKI (CA, CRL, server and client certs) for `shsd certs` and tests.
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod http;
pub mod pki;
pub mod protocol;
pub mod tls;
