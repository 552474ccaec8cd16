//! The SHS 1.2 wire formats, sans-IO: everything here works on bytes and values and never
//! touches a socket, a file or an async runtime.
//!
//! - [`urn`]: organisation numbers, addresses and product ids (`urn:X-shs:…`).
//! - [`label`]: the `shs.label` XML document that heads every message.
//! - [`mime`]: the streaming multipart reader and writer for whole messages.
//! - [`management`]: `shs.management` confirm/error documents and reply labels.
//! - [`message_list`]: the `shs.message-list` document answered by list requests.
//! - [`validate`]: the intake rules a label must pass before anything is stored.
//! - [`agreement`], [`product_type`]: the `shs.agreement` and `shs.product` documents of
//!   the directory.
//! - [`error`]: the SHS error codes and the protocol error type that carries them.

pub mod agreement;
pub mod error;
pub mod label;
pub mod management;
pub mod message_list;
pub mod mime;
pub mod product_type;
pub mod urn;
pub mod validate;
pub(crate) mod xml;

pub use error::{ErrorCode, ProtocolError};
