//! The admin search of spec §11, as a value the store evaluates.
//!
//! Like [`super::query`], filtering belongs to the store so that an SQL engine can push it
//! into a `WHERE` clause; [`AdminSearch::matches`] is the reference semantics every engine
//! must reproduce, and the conformance suite checks them. The answer is newest first
//! (descending arrival order), at most [`AdminSearch::limit`] records.

use chrono::{DateTime, Utc};

use super::record::{MessageRecord, State};
use crate::protocol::urn::{OrgNumber, ProductId};

/// The number of records a search returns when the caller names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// The largest limit a search honours: an answer holds whole records (labels included),
/// so the cap bounds the memory one admin request can take.
pub const MAX_LIMIT: usize = 1000;

/// An administrator's search over all messages. Every field that is set must match;
/// `Default` matches everything and returns the newest [`DEFAULT_LIMIT`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSearch {
    /// `tx.id`, exact.
    pub tx_id: Option<String>,
    /// `corr.id`, exact.
    pub corr_id: Option<String>,
    /// The sending organisation or the organisation of the mailbox the message was
    /// delivered to: "everything that concerns this organisation".
    pub organisation: Option<OrgNumber>,
    /// The label's product, compared as a product id (prefix optional, case-insensitive).
    pub product: Option<ProductId>,
    /// The current state.
    pub state: Option<State>,
    /// Arrival at or after this time.
    pub arrived_from: Option<DateTime<Utc>>,
    /// Arrival strictly before this time, so consecutive windows do not overlap.
    pub arrived_until: Option<DateTime<Utc>>,
    /// At most this many records; capped at [`MAX_LIMIT`] by [`AdminSearch::limit`].
    pub limit: usize,
}

impl Default for AdminSearch {
    fn default() -> Self {
        AdminSearch {
            tx_id: None,
            corr_id: None,
            organisation: None,
            product: None,
            state: None,
            arrived_from: None,
            arrived_until: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl AdminSearch {
    /// The number of records to return: the requested limit, capped.
    pub fn limit(&self) -> usize {
        self.limit.min(MAX_LIMIT)
    }

    /// True when `record` belongs in the answer.
    pub fn matches(&self, record: &MessageRecord) -> bool {
        self.tx_id.as_ref().is_none_or(|t| *t == record.tx_id)
            && self
                .corr_id
                .as_ref()
                .is_none_or(|c| *c == record.summary.corr_id)
            && self.organisation.is_none_or(|org| {
                record.sender == org || record.mailbox.as_ref().is_some_and(|m| m.org() == org)
            })
            && self.product.as_ref().is_none_or(|want| {
                record
                    .summary
                    .product
                    .parse::<ProductId>()
                    .is_ok_and(|have| have == *want)
            })
            && self.state.is_none_or(|s| s == record.state)
            && self.arrived_from.is_none_or(|from| record.arrival >= from)
            && self
                .arrived_until
                .is_none_or(|until| record.arrival < until)
    }
}
