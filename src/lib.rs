//! shsd — an SHS 1.2 message broker.
//!
//! # Layout
//! - [`protocol`]: the SHS wire formats (label, MIME, management documents, message lists,
//!   addresses) without any I/O, so that they can be tested, fuzzed and benchmarked alone.
//! - [`store`]: durable storage of messages, payloads, mailboxes and routing jobs behind a
//!   narrow trait; sled by default, group commit so that every acknowledgement is on disk.
#![forbid(unsafe_code)]

pub mod protocol;
pub mod store;
