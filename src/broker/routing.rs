//! Routing with the directory (spec §5.1, §5.2, §9): known organisations, agreements,
//! product addressing, and where remote receivers are reached. Without a directory the
//! pure [`router::decide`] alone routes to local mailboxes.
//!
//! Directory outages are errors, not decisions: the routing job stays pending and the
//! router retries it, so no message is quarantined because LDAP was down for a minute.

use chrono::Local;

use crate::directory::agreements::{self, Exchange};
use crate::directory::{AgreementRefusal, Directory, DirectoryError};
use crate::protocol::ErrorCode;
use crate::protocol::agreement::Agreement;
use crate::protocol::label::{Label, SequenceType};
use crate::protocol::product_type::ProductType;
use crate::protocol::urn::{Address, OrgNumber, ProductId};
use crate::store::MessageRecord;

use super::Broker;
use super::error::BrokerError;
use super::router::{self, Decision, Recipient};

impl Broker {
    /// Where `record` goes.
    pub(super) async fn route(&self, record: &MessageRecord) -> Result<Decision, BrokerError> {
        let to = record
            .summary
            .to
            .as_deref()
            .and_then(|text| text.parse::<Address>().ok());
        let Some(directory) = self.directory.as_deref() else {
            return Ok(router::decide(to.as_ref(), &self.config));
        };
        let product = match record.summary.product.parse::<ProductId>() {
            Ok(product) => product,
            Err(err) => return Ok(quarantine(ErrorCode::UnknownProductType, err.to_string())),
        };
        // Management messages (confirm, error) answer an exchange that was checked: they
        // go straight to their receiver.
        if record.summary.sequence_type == "adm" {
            return match to {
                Some(to) => self.towards(directory, to, &product).await,
                None => Ok(router::decide(None, &self.config)),
            };
        }
        let known = directory.product(&product).await.map_err(unavailable)?;
        match &known {
            None if self
                .config
                .directory
                .as_ref()
                .is_some_and(|d| d.known_products_only) =>
            {
                let reason = format!("the directory does not know product {product}");
                return Ok(quarantine(ErrorCode::UnknownProductType, reason));
            }
            Some(product_type) => {
                if let Some(reason) = disallowed_part(record, product_type) {
                    return Ok(quarantine(ErrorCode::IllegalDatapartContent, reason));
                }
            }
            None => {}
        }
        let sender = record.sender;
        if !self.knows(directory, sender).await? {
            let reason = format!("the directory does not know the sender {sender}");
            return Ok(quarantine(ErrorCode::UnknownSender, reason));
        }
        let candidates = directory.agreements(&product).await.map_err(unavailable)?;
        let today = Local::now().date_naive();
        let Some(to) = to else {
            let found = agreements::recipients(sender, &product, today, &candidates);
            return match found.as_slice() {
                [] => Ok(quarantine(
                    ErrorCode::UnresolvedReceiver,
                    format!("no agreement names a receiver of product {product} from {sender}"),
                )),
                [only] => {
                    self.towards(directory, Address::organisation(*only), &product)
                        .await
                }
                many => {
                    // Each copy is routed here as its own direct-addressed message would
                    // be, so that copies for local mailboxes are delivered with the fan-out
                    // instead of one routing job after another.
                    let label = stored_label(record)?;
                    let mut recipients = Vec::with_capacity(many.len());
                    for org in many {
                        let address = Address::organisation(*org);
                        let decision = self
                            .direct(
                                directory,
                                &label,
                                sender,
                                address.clone(),
                                &product,
                                &candidates,
                            )
                            .await?;
                        let local_mailbox = match decision {
                            Decision::Deliver(mailbox) => Some(mailbox),
                            _ => None,
                        };
                        recipients.push(Recipient {
                            address,
                            local_mailbox,
                        });
                    }
                    Ok(Decision::FanOut(recipients))
                }
            };
        };
        let label = stored_label(record)?;
        self.direct(directory, &label, sender, to, &product, &candidates)
            .await
    }

    /// Where a message from `sender` to `to` goes once its product and sender have been
    /// checked: the receiver must be known and an agreement must allow the exchange.
    async fn direct(
        &self,
        directory: &dyn Directory,
        label: &Label,
        sender: OrgNumber,
        to: Address,
        product: &ProductId,
        candidates: &[Agreement],
    ) -> Result<Decision, BrokerError> {
        let receiver = to.org();
        if !self.knows(directory, receiver).await? {
            let reason = format!("the directory does not know the receiver {receiver}");
            return Ok(quarantine(ErrorCode::UnknownReceiver, reason));
        }
        // The summary has no agreement name or transfer type: those come from the label.
        let exchange = Exchange {
            sender,
            receiver,
            product,
            reply: label.sequence_type == SequenceType::Reply,
            transfer: label.transfer_type,
            date: Local::now().date_naive(),
            named: label.shs_agreement.as_deref(),
        };
        if let Err(refusal) = agreements::check(&exchange, candidates) {
            let code = match refusal {
                AgreementRefusal::Missing { .. } => ErrorCode::MissingAgreement,
                AgreementRefusal::Illegal { .. } => ErrorCode::IllegalAgreement,
            };
            return Ok(quarantine(code, refusal.to_string()));
        }
        self.towards(directory, to, product).await
    }

    /// Whether acknowledging `record` should send its sender a confirm: not when the
    /// agreement the exchange went under says `confirm="no"`. Without a directory, or when
    /// the directory cannot tell now, a confirm is sent (an ack never fails for it).
    pub(super) async fn confirm_wanted(&self, record: &MessageRecord, label: &Label) -> bool {
        let Some(directory) = self.directory.as_deref() else {
            return true;
        };
        let (Some(to), Ok(product)) = (
            record
                .summary
                .to
                .as_deref()
                .and_then(|t| t.parse::<Address>().ok()),
            record.summary.product.parse::<ProductId>(),
        ) else {
            return true;
        };
        let candidates = match directory.agreements(&product).await {
            Ok(candidates) => candidates,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read agreements at ack; sending a confirm");
                return true;
            }
        };
        let exchange = Exchange {
            sender: record.sender,
            receiver: to.org(),
            product: &product,
            reply: label.sequence_type == SequenceType::Reply,
            transfer: label.transfer_type,
            date: record.arrival.with_timezone(&Local).date_naive(),
            named: label.shs_agreement.as_deref(),
        };
        agreements::check(&exchange, &candidates).map_or(true, |agreement| agreement.confirm)
    }

    /// Delivery to one receiver: its local mailbox, or its address in the directory.
    async fn towards(
        &self,
        directory: &dyn Directory,
        to: Address,
        product: &ProductId,
    ) -> Result<Decision, BrokerError> {
        if self.config.organisation(to.org()).is_some() {
            return Ok(router::decide(Some(&to), &self.config));
        }
        match directory
            .address(to.org(), product)
            .await
            .map_err(unavailable)?
        {
            Some(address) => Ok(Decision::Push {
                to,
                url: address.url,
            }),
            None => Ok(quarantine(
                ErrorCode::MissingDeliveryAddress,
                format!("the directory has no address for {to} and product {product}"),
            )),
        }
    }

    /// True for local organisations and those the directory knows.
    async fn knows(&self, directory: &dyn Directory, org: OrgNumber) -> Result<bool, BrokerError> {
        if self.config.organisation(org).is_some() {
            return Ok(true);
        }
        Ok(directory
            .organisation(org)
            .await
            .map_err(unavailable)?
            .is_some())
    }
}

/// The label of a stored record (it parsed at intake).
fn stored_label(record: &MessageRecord) -> Result<Label, BrokerError> {
    Label::parse(&record.label).map_err(|err| {
        BrokerError::Internal(format!(
            "stored label of {} does not parse: {err}",
            record.local_id
        ))
    })
}

/// Why a data part of `record` is not one the product allows (by `datapartType`,
/// case-insensitive), or `None`. A product that names no data parts allows any.
fn disallowed_part(record: &MessageRecord, product: &ProductType) -> Option<String> {
    if product.data.is_empty() {
        return None;
    }
    record
        .summary
        .data
        .iter()
        .enumerate()
        .find_map(|(index, part)| {
            let kind = part.datapart_type.as_deref().unwrap_or("");
            let allowed = product
                .data
                .iter()
                .any(|spec| spec.datapart_type.eq_ignore_ascii_case(kind));
            (!allowed).then(|| {
                let names: Vec<&str> = product
                    .data
                    .iter()
                    .map(|spec| spec.datapart_type.as_str())
                    .collect();
                format!(
                    "data part {} has datapartType {kind:?}; product {} allows {}",
                    index + 1,
                    product.id,
                    names.join(", ")
                )
            })
        })
}

fn quarantine(code: ErrorCode, reason: String) -> Decision {
    Decision::Quarantine { code, reason }
}

/// A directory failure keeps the job pending (503-like): retried, never a verdict.
fn unavailable(err: DirectoryError) -> BrokerError {
    BrokerError::Unavailable(err.to_string())
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
