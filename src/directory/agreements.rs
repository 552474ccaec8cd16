//! The agreement rules of spec §9 and the recipients of product addressing (§5.2), as pure
//! functions over the agreements the directory returned for a product.
//!
//! An agreement has a principal, a customer (none: public) and a flow seen from the
//! principal. A message from `S` to `R` fits a bilateral agreement when `S` is the principal,
//! `R` the customer and the flow is `to-customer` or `any`, or the other way round with
//! `from-customer` or `any`. A `reply` travels against the agreement's direction, so it is
//! checked as if it went from `R` to `S`. A public agreement of `R` (no customer, flow
//! `from-customer` or `any`) lets anyone send its products to `R`. The agreement must be
//! valid on the day (valid-to inclusive) and cover the transfer type.

use chrono::NaiveDate;

use crate::protocol::agreement::{Agreement, AgreementTransfer, Flow};
use crate::protocol::label::TransferType;
use crate::protocol::urn::{OrgNumber, ProductId};

/// One exchange to check against the agreements.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The sending organisation.
    pub sender: OrgNumber,
    /// The receiving organisation.
    pub receiver: OrgNumber,
    /// The label's product.
    pub product: &'a ProductId,
    /// True for `sequence-type="reply"`: checked against the agreement's direction.
    pub reply: bool,
    /// The label's transfer type.
    pub transfer: TransferType,
    /// The day the message arrived (node local time).
    pub date: NaiveDate,
    /// The agreement the label names in `shs.agreement`, if any.
    pub named: Option<&'a str>,
}

/// Why no agreement allows an exchange; each maps to its SHS error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementRefusal {
    /// No agreement fits (`MissingAgreement`).
    #[error("no agreement lets {sender} send product {product} to {receiver}")]
    Missing {
        /// The sender.
        sender: OrgNumber,
        /// The receiver.
        receiver: OrgNumber,
        /// The product.
        product: String,
    },
    /// The agreement the label names does not fit (`IllegalAgreement`).
    #[error("agreement {id} does not allow this message: {reason}")]
    Illegal {
        /// The named agreement.
        id: String,
        /// Why not.
        reason: String,
    },
}

/// The agreement that allows `exchange` among `candidates` (the agreements for its
/// product): the named one if the label names one, else bilateral ones first, then public
/// ones.
pub fn check<'a>(
    exchange: &Exchange<'_>,
    candidates: &'a [Agreement],
) -> Result<&'a Agreement, AgreementRefusal> {
    if let Some(id) = exchange.named {
        let Some(named) = candidates.iter().find(|a| a.id.eq_ignore_ascii_case(id)) else {
            return Err(AgreementRefusal::Illegal {
                id: id.to_owned(),
                reason: format!(
                    "there is no such agreement for product {}",
                    exchange.product
                ),
            });
        };
        return match misfit(named, exchange) {
            None => Ok(named),
            Some(reason) => Err(AgreementRefusal::Illegal {
                id: id.to_owned(),
                reason,
            }),
        };
    }
    let bilateral = candidates
        .iter()
        .filter(|a| a.customer.is_some())
        .find(|a| misfit(a, exchange).is_none());
    let public = || {
        candidates
            .iter()
            .filter(|a| a.customer.is_none())
            .find(|a| misfit(a, exchange).is_none())
    };
    bilateral.or_else(public).ok_or(AgreementRefusal::Missing {
        sender: exchange.sender,
        receiver: exchange.receiver,
        product: exchange.product.to_string(),
    })
}

/// The receivers of a product-addressed asynchronous message from `sender`: the parties
/// that valid agreements for `product` name as receiver, bilateral ones first, then
/// public ones; each once, in agreement order.
pub fn recipients(
    sender: OrgNumber,
    product: &ProductId,
    date: NaiveDate,
    candidates: &[Agreement],
) -> Vec<OrgNumber> {
    let usable = |a: &&Agreement| {
        a.products.contains(product) && valid_on(a, date) && transfer_fits(a, TransferType::Asynch)
    };
    let mut found = Vec::new();
    for agreement in candidates
        .iter()
        .filter(|a| a.customer.is_some())
        .filter(usable)
    {
        let receiver = match agreement.customer {
            Some(customer)
                if agreement.principal == sender && flows(agreement, Flow::ToCustomer) =>
            {
                Some(customer)
            }
            Some(customer) if customer == sender && flows(agreement, Flow::FromCustomer) => {
                Some(agreement.principal)
            }
            _ => None,
        };
        if let Some(receiver) = receiver.filter(|r| !found.contains(r)) {
            found.push(receiver);
        }
    }
    for agreement in candidates
        .iter()
        .filter(|a| a.customer.is_none())
        .filter(usable)
    {
        let receiver = agreement.principal;
        if receiver != sender && flows(agreement, Flow::FromCustomer) && !found.contains(&receiver)
        {
            found.push(receiver);
        }
    }
    found
}

/// Why `agreement` does not allow `exchange`, or `None` when it does.
fn misfit(agreement: &Agreement, exchange: &Exchange<'_>) -> Option<String> {
    if !agreement.products.contains(exchange.product) {
        return Some(format!("it does not cover product {}", exchange.product));
    }
    if !valid_on(agreement, exchange.date) {
        return Some(format!("it is not valid on {}", exchange.date));
    }
    if !transfer_fits(agreement, exchange.transfer) {
        return Some(format!(
            "it covers transfer type {}, not this one",
            agreement.transfer.as_str()
        ));
    }
    // A reply goes against the agreement's direction.
    let (from, to) = if exchange.reply {
        (exchange.receiver, exchange.sender)
    } else {
        (exchange.sender, exchange.receiver)
    };
    let fits = match agreement.customer {
        Some(customer) => {
            (agreement.principal == from && customer == to && flows(agreement, Flow::ToCustomer))
                || (agreement.principal == to
                    && customer == from
                    && flows(agreement, Flow::FromCustomer))
        }
        None => agreement.principal == to && flows(agreement, Flow::FromCustomer),
    };
    (!fits).then(|| {
        format!(
            "its parties and direction ({} {}{}) do not cover {from} to {to}",
            agreement.principal,
            agreement.flow.as_str(),
            agreement
                .customer
                .map(|c| format!(" {c}"))
                .unwrap_or_else(|| " anyone".to_owned()),
        )
    })
}

/// True when messages may flow `way` under `agreement`.
fn flows(agreement: &Agreement, way: Flow) -> bool {
    agreement.flow == Flow::Any || agreement.flow == way
}

fn valid_on(agreement: &Agreement, date: NaiveDate) -> bool {
    agreement.valid_from.is_none_or(|from| from <= date)
        && agreement.valid_to.is_none_or(|to| date <= to)
}

fn transfer_fits(agreement: &Agreement, transfer: TransferType) -> bool {
    match agreement.transfer {
        AgreementTransfer::Any => true,
        AgreementTransfer::Asynch => transfer == TransferType::Asynch,
        AgreementTransfer::Synch => transfer == TransferType::Synch,
    }
}

#[cfg(test)]
#[path = "agreements_tests.rs"]
mod tests;
