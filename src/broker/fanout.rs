//! Product addressing with several receivers (spec §5.2): one copy per receiver, each with
//! a new tx.id and `to` set, the same corr.id and content.id, sharing the parent's stored
//! payload. A copy whose routing already found a local mailbox is stored straight in it;
//! any other copy gets its own routing job, so it is pushed, or refused with an error to
//! the sender, like a direct-addressed message.

use crate::protocol::label::{Label, To};
use crate::store::{FanOutCopy, LocalId, MessageRecord, Route};

use super::error::BrokerError;
use super::router::Recipient;
use super::summary::summarize;

/// The copies of `parent` for `receivers`.
pub fn copies(
    parent: &MessageRecord,
    recipients: &[Recipient],
) -> Result<Vec<FanOutCopy>, BrokerError> {
    let label = Label::parse(&parent.label).map_err(|err| {
        BrokerError::Internal(format!(
            "stored label of {} does not parse: {err}",
            parent.local_id
        ))
    })?;
    Ok(recipients
        .iter()
        .map(|recipient| {
            let mut copy = label.clone();
            copy.tx_id = super::new_tx_id();
            copy.to = Some(To {
                value: recipient.address.to_string(),
                common_name: None,
            });
            FanOutCopy {
                local_id: LocalId::random(),
                summary: summarize(&copy, parent.payload.size),
                label: copy.to_xml(),
                route: match &recipient.local_mailbox {
                    Some(mailbox) => Route::Mailbox(mailbox.clone()),
                    None => Route::Job,
                },
            }
        })
        .collect())
}
