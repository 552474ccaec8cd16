//! History entries (spec §4.3) and the byte-preserving append used on fetch (spec §4.2).

use super::{History, Label};
use crate::protocol::ProtocolError;
use crate::protocol::xml::{self, XmlWriter, error};

use super::write::write_history;

impl History {
    /// The entry a node appends when it accepts a message (spec §4.3): its `node.id` and
    /// `local.id`, the label's `tx.id`, `to`, `content.id` and `shs.agreement` (if the
    /// sender named one; see [`History::with_agreement`]), `datetime` and the comment
    /// `Received`.
    pub fn received(
        label: &Label,
        node_id: impl Into<String>,
        local_id: impl Into<String>,
        datetime: impl Into<String>,
    ) -> History {
        History {
            node_id: node_id.into(),
            content_id: Some(label.content.content_id.clone()),
            tx_id: Some(label.tx_id.clone()),
            from: None,
            to: label.to.as_ref().map(|to| to.value.clone()),
            local_id: Some(local_id.into()),
            shs_agreement: label.shs_agreement.clone(),
            product_id: None,
            corr_id: None,
            datetime: datetime.into(),
            comment: Some("Received".to_owned()),
        }
    }

    /// The same entry naming the agreement the node found for the message.
    pub fn with_agreement(mut self, agreement: impl Into<String>) -> History {
        self.shs_agreement = Some(agreement.into());
        self
    }

    /// The same entry with another comment, e.g. `Received; signature verified: <signer>`
    /// (the DTD allows one comment per entry).
    pub fn with_comment(mut self, comment: impl Into<String>) -> History {
        self.comment = Some(comment.into());
        self
    }
}

/// Where history goes in one label's bytes: found while parsing it
/// ([`Label::parse_for_history`]), so that intake parses a label once, not again to
/// append its history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySplice {
    /// The byte offset of the closing `</shs.label>`; `None` for `<shs.label/>`.
    at: Option<usize>,
    encoding: xml::Encoding,
    /// The length of the label it was found in, to refuse another label's bytes.
    len: usize,
}

impl Label {
    /// Parses a label as [`Label::parse`] does and notes where history entries go in
    /// `bytes`, for [`append_history_at`].
    pub fn parse_for_history(bytes: &[u8]) -> Result<(Label, HistorySplice), ProtocolError> {
        let decoded = xml::decode("shs.label", bytes)?;
        let document = xml::parse("shs.label", &decoded)?;
        let label = super::read::label_from(&document.root)?;
        let splice = HistorySplice {
            at: document.root_end.map(|end| decoded.byte_offset(end)),
            encoding: decoded.encoding,
            len: bytes.len(),
        };
        Ok((label, splice))
    }
}

/// Appends `entries` to a label without touching anything the sender wrote: the history
/// elements are inserted as text just before the closing `</shs.label>` of `original`, in
/// the original document's encoding (for ISO-8859-1 and US-ASCII documents, characters
/// the encoding cannot hold are written as `&#N;` references). Every byte before and
/// after the insertion point is kept, so the result is the original with the entries
/// spliced in (spec §4.2 round-trip rule, §4.3).
///
/// `original` must be a valid label (it is parsed first); the result parses to the same
/// label with `entries` added to its history.
pub fn append_history(original: &[u8], entries: &[History]) -> Result<Vec<u8>, ProtocolError> {
    let (_, splice) = Label::parse_for_history(original)?;
    append_history_at(original, &splice, entries)
}

/// [`append_history`] for a label already parsed by [`Label::parse_for_history`]: `splice`
/// must come from the same bytes (a splice from a label of another length is refused).
pub fn append_history_at(
    original: &[u8],
    splice: &HistorySplice,
    entries: &[History],
) -> Result<Vec<u8>, ProtocolError> {
    if splice.len != original.len() {
        return Err(error(
            "shs.label",
            "the history splice was found in another label",
        ));
    }
    let at = splice
        .at
        .ok_or_else(|| error("shs.label", "an empty <shs.label/> cannot take history"))?;
    let (head, tail) = original.split_at(at.min(original.len()));

    let mut w = XmlWriter::fragment(1);
    for entry in entries {
        write_history(&mut w, entry);
    }
    let mut fragment = w.into_string();
    if fragment.is_empty() {
        return Ok(original.to_vec());
    }
    if !head.ends_with(b"\n") {
        fragment.insert(0, '\n');
    }
    let fragment = splice.encoding.encode(&fragment);

    let mut out = Vec::with_capacity(original.len() + fragment.len());
    out.extend_from_slice(head);
    out.extend_from_slice(&fragment);
    out.extend_from_slice(tail);
    Ok(out)
}
