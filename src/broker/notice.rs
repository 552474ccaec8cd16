//! The confirm and error messages the node generates (spec §4.4): a reply label, an
//! `shs.management` document as the one data part, stored like any other message.

use crate::clock;
use crate::config::Config;
use crate::protocol::ErrorCode;
use crate::protocol::label::{From as LabelFrom, History, Label};
use crate::protocol::management::{self, ManagementBody};
use crate::protocol::urn::Address;
use crate::store::{LocalId, NewMessage, Route, Store};

use super::error::BrokerError;
use super::summary::summarize;

/// Which management message to generate.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The message was acknowledged by its receiver.
    Confirm,
    /// The message could not be delivered.
    Error {
        /// Why.
        code: ErrorCode,
        /// One line.
        info: String,
    },
}

/// Builds and uploads the management message answering `original`, addressed to its
/// sender. Returns `None` when `original` is itself a management message (they are never
/// answered) or names no sender.
pub async fn build(
    store: &dyn Store,
    config: &Config,
    original: &Label,
    notice: Notice,
) -> Result<Option<NewMessage>, BrokerError> {
    if !management::may_be_answered(original) {
        return Ok(None);
    }
    let Some(recipient) = original
        .sender_text()
        .and_then(|text| text.parse::<Address>().ok())
    else {
        return Ok(None);
    };
    let arrival = clock::now();
    let datetime = clock::shs_datetime(arrival);
    let local_id = LocalId::random();
    let body = match notice {
        Notice::Confirm => ManagementBody::Confirmation {
            appinfo: Vec::new(),
        },
        Notice::Error { code, info } => ManagementBody::Error {
            code: code.into(),
            info: Some(info),
            appinfo: Vec::new(),
        },
    };
    let tx_id = super::new_tx_id();
    let (mut label, document) = management::reply(original, body, tx_id, datetime.clone());
    // The notice comes from the original receiver's organisation, or from the original
    // sender's own when the original was product-addressed (the tx.id is fresh either way).
    let sender = original
        .to
        .as_ref()
        .and_then(|to| to.value.parse::<Address>().ok())
        .map(|to| to.org())
        .unwrap_or(recipient.org());
    if label.from.is_none() && label.originator.is_none() {
        // A product-addressed original has no `to` for the reply's `from`, but a label
        // needs a `from` or `originator` (DTD; spec §4.2, which our own intake enforces):
        // name the organisation the notice is recorded as coming from.
        label.from = Some(LabelFrom {
            value: Address::organisation(sender).to_string(),
            ..LabelFrom::default()
        });
    }
    label.history.push(History::received(
        &label,
        config.node_id.clone(),
        local_id.0.to_string(),
        datetime,
    ));
    let kind = document.kind();
    let xml = document.to_xml();

    let mut writer = store.begin_payload().await?;
    let headers = format!(
        "Content-Type: text/xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment; filename={}",
        kind.filename()
    );
    writer.start_part(headers.into_bytes()).await?;
    writer.write(&xml).await?;
    writer.end_part().await?;
    let payload = writer.finish().await?;

    let route = if config.is_local_mailbox(&recipient) {
        Route::Mailbox(recipient)
    } else {
        Route::Job
    };
    Ok(Some(NewMessage {
        local_id,
        sender,
        arrival,
        summary: summarize(&label, payload.size),
        label: label.to_xml(),
        payload,
        signer: None,
        route,
    }))
}
