//! Signed data parts (spec §7), sans I/O.

mod error;
pub(crate) mod xml;

pub use error::SignatureError;
