//! shsd — an SHS 1.2 message broker.
//!
//! # Layout
//! - [`app`]: wires store, TLS, broker and listener; `run(listener, shutdown)`.
//! - [`protocol`]: the SHS wire formats (label, MIME, management documents, message lists,
//!   addresses) without any I/O, so that they can be tested, fuzzed and benchmarked alone.
//! - [`signature`]: signed data parts, sans-IO: XML-DSig (own tokenizer and C14N), CMS
//!   SignedData (own BER reader), signer trust (chains, validity, key usage, CRLs); ring and
//!   x509-parser do the cryptography and the certificates.
//! - [`tls`]: mutual TLS configs (rustls) and the caller's `PeerIdentity`, once per connection.
//! - [`pki`]: the example PKI (CA, CRL, server and client certs) for `shsd certs` and tests.
//! - [`config`]: the TOML configuration parsed into typed values; every error at once.
//! - [`store`]: durable messages, payloads, mailboxes and routing jobs (sled by default).
//! - [`directory`]: organisations, products, agreements and addresses (file or LDAP), and
//!   the agreement rules as pure functions.
//! - [`broker`]: intake, routing, push, mailboxes, admin actions and housekeeping — the SHS
//!   logic between HTTP and the store.
//! - [`body`]: HTTP bodies, whole or streamed through a bounded channel.
//! - [`http`]: the SHS endpoints over hyper: routing, handlers, errors rendered in one place.
//! - [`listener`]: the accept step both listeners share (connection slots, shutdown).
//! - [`metrics`]: the node's counters and gauges (atomics), rendered for Prometheus.
//! - [`admin`]: the admin listener: health, readiness, metrics, the JSON API with its
//!   actions and audit log, and the web console; loopback HTTP or admin mTLS.
//! - [`cli`]: the `shsd` subcommands behind the thin `main.rs`.
//! - [`client`]: the SHS client used by the CLI, the demo, the tests and the load generator.
//! - [`clock`]: time as SHS writes it.
//! - [`percent`]: percent-encoding for URLs and header values.
//! - [`systemd`]: READY / WATCHDOG / STOPPING notifications for `Type=notify`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod body;
pub mod broker;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod directory;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod percent;
pub mod pki;
pub mod protocol;
pub mod signature;
pub mod store;
pub mod systemd;
pub mod tls;
