//! The streaming multipart reader and writer for SHS messages (spec §3.1, §4.1).
//!
//! An SHS message is a `multipart/mixed` entity: part 1 is the XML label, parts 2..n are
//! the data parts. Everything here is sans-IO: the broker pushes the bytes it reads from the
//! socket into a [`MessageReader`] and gets [`Event`]s back, reads the label whole and streams
//! each data part's raw bytes to the store; on the way out [`MessageWriter`] produces the
//! framing around the stored bytes. Data parts are never decoded or rewritten on the way
//! through, so a delivered message carries the sender's bytes exactly; [`TransferDecoder`]
//! is there for whoever needs a part's content.
//!
//! - `headers`: header blocks, `Content-Type` and its parameters, transfer encodings.
//! - `filename`: RFC 2231 / RFC 2047 / raw 8-bit file names.
//! - `reader`: the push parser; `scan`: its delimiter and blank-line searches.
//! - `decode`: streaming base64 and quoted-printable.
//! - `writer`: the framing of messages shsd sends.

mod decode;
mod filename;
mod headers;
mod reader;
mod scan;
mod writer;

#[cfg(test)]
mod tests;

pub use decode::TransferDecoder;
pub use headers::{ContentType, PartHeaders, TransferEncoding};
pub use reader::{Event, MessageReader};
pub use writer::{MessageWriter, new_boundary};

use crate::protocol::ProtocolError;

/// The size limits the reader enforces while it buffers (spec §12), so that a hostile sender
/// cannot make it hold more than this in memory. Data parts are streamed and not limited
/// here; the message size limit belongs to the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest label part as received, in bytes (default 1 MiB).
    pub max_label_bytes: usize,
    /// Largest single header block (message, label or data part), in bytes (default 64 KiB).
    pub max_header_bytes: usize,
    /// Most data parts in one message, the label not counted (default 1000).
    pub max_parts: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_label_bytes: 1 << 20,
            max_header_bytes: 64 << 10,
            max_parts: 1000,
        }
    }
}

/// A whole message split into its parts, for tests, small messages and fuzzing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMessage {
    /// The body's own header block, in the `message/rfc822` form.
    pub message_headers: Option<PartHeaders>,
    /// The label part's header block.
    pub label_headers: PartHeaders,
    /// The label XML, transfer encoding removed.
    pub label: Vec<u8>,
    /// The data parts: header block and raw (still transfer-encoded) bytes.
    pub parts: Vec<(PartHeaders, Vec<u8>)>,
}

/// Splits a whole message held in memory with a [`MessageReader`], so that it follows
/// exactly the rules of the streaming path.
pub fn split_message(
    body: &[u8],
    http_content_type: Option<&str>,
    limits: Limits,
) -> Result<SplitMessage, ProtocolError> {
    let mut reader = MessageReader::new(http_content_type, limits)?;
    reader.push(body);
    reader.finish();
    let mut label = None;
    let mut parts: Vec<(PartHeaders, Vec<u8>)> = Vec::new();
    loop {
        match reader.next_event()? {
            Event::Label { headers, body } => label = Some((headers, body)),
            Event::PartStart { headers, .. } => parts.push((headers, Vec::new())),
            Event::PartData(data) => {
                if let Some((_, bytes)) = parts.last_mut() {
                    bytes.extend_from_slice(data);
                }
            }
            Event::PartEnd => {}
            Event::End => break,
            // Unreachable after finish(): a starved reader reports an error instead.
            Event::NeedMore => return Err(ProtocolError::mime("input ended early")),
        }
    }
    let (label_headers, label) =
        label.ok_or_else(|| ProtocolError::mime("the message has no label part"))?;
    Ok(SplitMessage {
        message_headers: reader.message_headers().cloned(),
        label_headers,
        label,
        parts,
    })
}
