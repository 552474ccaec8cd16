//! Product addressing with several receivers (spec §5.2): one copy per receiver, each with
//! a new tx.id and `to` set, the same corr.id and content.id, sharing the parent's stored
//! payload. Each copy gets its own routing job, so it is checked and delivered (or pushed)
//! like a direct-addressed message.

use crate::protocol::label::{Label, To};
use crate::protocol::urn::Address;
use crate::store::{FanOutCopy, LocalId, MessageRecord, Route};

use super::error::BrokerError;
use super::summary::summarize;

/// The copies of `parent` for `receivers`.
pub fn copies(
    parent: &MessageRecord,
    receivers: &[Address],
) -> Result<Vec<FanOutCopy>, BrokerError> {
    let label = Label::parse(&parent.label).map_err(|err| {
        BrokerError::Internal(format!(
            "stored label of {} does not parse: {err}",
            parent.local_id
        ))
    })?;
    Ok(receivers
        .iter()
        .map(|receiver| {
            let mut copy = label.clone();
            copy.tx_id = uuid::Uuid::new_v4().to_string();
            copy.to = Some(To {
                value: receiver.to_string(),
                common_name: None,
            });
            FanOutCopy {
                local_id: LocalId::random(),
                summary: summarize(&copy, parent.payload.size),
                label: copy.to_xml(),
                route: Route::Job,
            }
        })
        .collect())
}
