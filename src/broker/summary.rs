//! The message-list view of a label, stored beside the label so that listing a mailbox
//! never re-parses labels.

use crate::protocol::label::Label;
use crate::protocol::message_list::ListedMessage;
use crate::store::{DataPartSummary, MessageSummary, MetaEntry};

/// The summary of `label` for a message of `size` payload bytes.
pub fn summarize(label: &Label, size: u64) -> MessageSummary {
    MessageSummary {
        tx_id: label.tx_id.clone(),
        timestamp: label.datetime.clone(),
        corr_id: label.corr_id.clone(),
        content_id: label.content.content_id.clone(),
        size,
        originator: label.originator.as_ref().map(|o| o.value.clone()),
        from: label.from.as_ref().map(|f| f.value.clone()),
        to: label.to.as_ref().map(|t| t.value.clone()),
        end_recipient: label.end_recipient.as_ref().map(|e| e.value.clone()),
        product: label.product.value.clone(),
        sequence_type: label.sequence_type.as_str().to_owned(),
        status: label.status.as_str().to_owned(),
        meta: label
            .meta
            .iter()
            .map(|m| MetaEntry {
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect(),
        subject: label.subject.clone(),
        data: label
            .data()
            .iter()
            .map(|d| DataPartSummary {
                datapart_type: d.datapart_type.clone(),
                filename: d.filename.clone(),
                no_of_bytes: d.no_of_bytes.clone(),
                no_of_records: d.no_of_records.clone(),
            })
            .collect(),
    }
}

/// The `message` element of a list answer for a stored message's summary.
pub fn listed(s: &MessageSummary) -> ListedMessage {
    ListedMessage {
        tx_id: s.tx_id.clone(),
        timestamp: s.timestamp.clone(),
        corr_id: Some(s.corr_id.clone()),
        content_id: Some(s.content_id.clone()),
        size: Some(s.size),
        originator: s.originator.clone(),
        from: s.from.clone(),
        to: s.to.clone(),
        end_recipient: s.end_recipient.clone(),
        product: Some(s.product.clone()),
        // Stored from a parsed label, so always valid; `event` only for damaged records.
        sequence_type: s
            .sequence_type
            .parse()
            .unwrap_or(crate::protocol::label::SequenceType::Event),
        status: s.status.parse().unwrap_or_default(),
        meta: s
            .meta
            .iter()
            .map(|m| crate::protocol::label::Meta {
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect(),
        subject: s.subject.clone(),
        data: s
            .data
            .iter()
            .map(|d| crate::protocol::label::Data {
                datapart_type: d.datapart_type.clone(),
                filename: d.filename.clone(),
                no_of_bytes: d.no_of_bytes.clone(),
                no_of_records: d.no_of_records.clone(),
            })
            .collect(),
    }
}
