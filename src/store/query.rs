//! The mailbox list query of spec §3.3, as a value the store evaluates.
//!
//! Filtering and sorting belong to the store, not the HTTP handler, so that an SQL engine
//! can push them into its `WHERE`/`ORDER BY` and the key-value engine can stop scanning as
//! soon as it has `max_hits` matches. [`MailboxQuery::matches`] and
//! [`MailboxQuery::compare`] are the reference semantics every engine must reproduce; the
//! conformance suite checks them.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use super::record::{MessageRecord, MessageSummary, State};
use crate::protocol::label::{SequenceType, Status};
use crate::protocol::urn::{ProductId, strip_prefix};

/// The default `maxhits` of spec §3.3.
pub const DEFAULT_MAX_HITS: usize = 200;

/// A list request on one mailbox. `Default` is the request without parameters: production
/// messages in state RECEIVED, oldest first, at most 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxQuery {
    /// `producttype`: the product must be one of these; empty means any.
    pub products: Vec<ProductId>,
    /// `filter=noack`: also list FETCHED (unacknowledged) messages.
    pub include_fetched: bool,
    /// `maxhits`, already capped by the caller.
    pub max_hits: usize,
    /// `status`: only messages with this status (production by default).
    pub status: Status,
    /// `corrid`: exact match.
    pub corr_id: Option<String>,
    /// `contentid`: exact match.
    pub content_id: Option<String>,
    /// `originator`: matches `originator`, or `from` when there is no originator. Compared
    /// as addresses: prefix optional, ASCII case-insensitive.
    pub originator: Option<String>,
    /// `endrecipient`: compared like `originator`.
    pub end_recipient: Option<String>,
    /// `sequencetype`.
    pub sequence_type: Option<SequenceType>,
    /// `since`: arrival time at or after this.
    pub since: Option<DateTime<Utc>>,
    /// `metaname` / `metavalue`.
    pub meta: Option<MetaFilter>,
    /// `sortattribute` / `sortorder`; `None` lists in arrival order only.
    pub sort: Option<SortBy>,
    /// `arrivalorder`: the direction of arrival order, the tie-breaker after `sort`.
    pub arrival_order: SortOrder,
}

impl Default for MailboxQuery {
    fn default() -> Self {
        MailboxQuery {
            products: Vec::new(),
            include_fetched: false,
            max_hits: DEFAULT_MAX_HITS,
            status: Status::Production,
            corr_id: None,
            content_id: None,
            originator: None,
            end_recipient: None,
            sequence_type: None,
            since: None,
            meta: None,
            sort: None,
            arrival_order: SortOrder::Ascending,
        }
    }
}

/// A `meta` element that must be present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFilter {
    /// `metaname`.
    pub name: String,
    /// `metavalue`; `None` matches any value.
    pub value: Option<String>,
}

/// Sort by a label attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortBy {
    /// The attribute.
    pub attribute: SortAttribute,
    /// Its direction.
    pub order: SortOrder,
}

/// A direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest (oldest) first.
    #[default]
    Ascending,
    /// Largest (newest) first.
    Descending,
}

/// The message-list attributes one can sort by. Text attributes compare as written
/// (byte order); `size` compares numerically. A missing value sorts before any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortAttribute {
    /// `tx.id`.
    TxId,
    /// `corr.id`.
    CorrId,
    /// `content.id`.
    ContentId,
    /// `timestamp` (the label datetime, `yyyy-MM-ddTHH:mm:ss`, so text order is time
    /// order).
    Timestamp,
    /// `size`.
    Size,
    /// `originator`.
    Originator,
    /// `from`.
    From,
    /// `to`.
    To,
    /// `end-recipient`.
    EndRecipient,
    /// `product`.
    Product,
    /// `sequence-type`.
    SequenceType,
    /// `status`.
    Status,
    /// `subject`.
    Subject,
}

impl MailboxQuery {
    /// True when `item` (a record or an index entry) belongs in the answer (state
    /// included).
    pub fn matches<L: Listed>(&self, item: &L) -> bool {
        self.matches_summary(item.state(), item.arrival(), item.summary())
    }

    /// [`MailboxQuery::matches`] on the parts a mailbox index can carry, so that an index
    /// walk filters without loading records.
    pub fn matches_summary(
        &self,
        state: State,
        arrival: DateTime<Utc>,
        s: &MessageSummary,
    ) -> bool {
        let wanted_state =
            state == State::Received || (self.include_fetched && state == State::Fetched);
        wanted_state
            && status_of(s) == self.status.as_str()
            && (self.products.is_empty() || product_matches(&self.products, &s.product))
            && self.corr_id.as_ref().is_none_or(|c| *c == s.corr_id)
            && self.content_id.as_ref().is_none_or(|c| *c == s.content_id)
            && self.originator.as_deref().is_none_or(|want| {
                s.originator
                    .as_deref()
                    .or(s.from.as_deref())
                    .is_some_and(|have| same_address(want, have))
            })
            && self.end_recipient.as_deref().is_none_or(|want| {
                s.end_recipient
                    .as_deref()
                    .is_some_and(|have| same_address(want, have))
            })
            && self
                .sequence_type
                .is_none_or(|st| s.sequence_type == st.as_str())
            && self.since.is_none_or(|since| arrival >= since)
            && self.meta.as_ref().is_none_or(|filter| {
                s.meta.iter().any(|m| {
                    m.name == filter.name && filter.value.as_ref().is_none_or(|v| *v == m.value)
                })
            })
    }

    /// The answer order: the sort attribute (if any), then arrival order.
    pub fn compare<L: Listed>(&self, a: &L, b: &L) -> Ordering {
        let by_attribute = self.sort.map_or(Ordering::Equal, |sort| {
            directed(
                sort.order,
                compare_attribute(sort.attribute, a.summary(), b.summary()),
            )
        });
        by_attribute
            .then_with(|| directed(self.arrival_order, a.arrival_seq().cmp(&b.arrival_seq())))
    }
}

/// What a list is decided on: a stored record, or a mailbox index entry that carries the
/// same parts (so a list can be answered from the index alone).
pub trait Listed {
    /// The message-list view of the label.
    fn summary(&self) -> &MessageSummary;
    /// The message's state.
    fn state(&self) -> State;
    /// When the node accepted it.
    fn arrival(&self) -> DateTime<Utc>;
    /// The store's arrival order.
    fn arrival_seq(&self) -> u64;
}

impl Listed for MessageRecord {
    fn summary(&self) -> &MessageSummary {
        &self.summary
    }

    fn state(&self) -> State {
        self.state
    }

    fn arrival(&self) -> DateTime<Utc> {
        self.arrival
    }

    fn arrival_seq(&self) -> u64 {
        self.arrival_seq
    }
}

fn directed(order: SortOrder, ordering: Ordering) -> Ordering {
    match order {
        SortOrder::Ascending => ordering,
        SortOrder::Descending => ordering.reverse(),
    }
}

fn status_of(s: &MessageSummary) -> &str {
    if s.status.is_empty() {
        Status::Production.as_str()
    } else {
        &s.status
    }
}

fn product_matches(wanted: &[ProductId], product: &str) -> bool {
    product
        .parse::<ProductId>()
        .is_ok_and(|product| wanted.contains(&product))
}

/// Address equality as spec §1 defines it: prefix optional, prefix and organisation
/// number case-insensitive. Sub-addresses are compared case-insensitively too, as the
/// field writes them inconsistently.
pub fn same_address(a: &str, b: &str) -> bool {
    strip_prefix(a).eq_ignore_ascii_case(strip_prefix(b))
}

fn compare_attribute(attribute: SortAttribute, a: &MessageSummary, b: &MessageSummary) -> Ordering {
    use SortAttribute as A;
    match attribute {
        A::TxId => a.tx_id.cmp(&b.tx_id),
        A::CorrId => a.corr_id.cmp(&b.corr_id),
        A::ContentId => a.content_id.cmp(&b.content_id),
        A::Timestamp => a.timestamp.cmp(&b.timestamp),
        A::Size => a.size.cmp(&b.size),
        A::Originator => a.originator.cmp(&b.originator),
        A::From => a.from.cmp(&b.from),
        A::To => a.to.cmp(&b.to),
        A::EndRecipient => a.end_recipient.cmp(&b.end_recipient),
        A::Product => a.product.cmp(&b.product),
        A::SequenceType => a.sequence_type.cmp(&b.sequence_type),
        A::Status => status_of(a).cmp(status_of(b)),
        A::Subject => a.subject.cmp(&b.subject),
    }
}

/// Collects the answer of a list as an engine walks a mailbox in arrival order (ascending
/// or, without a sort attribute and with descending arrival order, descending): the
/// reference for every engine. Without a sort attribute the walk order is the answer
/// order and the walk stops at `max_hits`; with one every match is seen and at most
/// 2 × `max_hits` are kept, trimmed as they come.
pub(super) struct ListHits<'q, L> {
    query: &'q MailboxQuery,
    hits: Vec<L>,
}

impl<'q, L: Listed> ListHits<'q, L> {
    /// An empty answer to `query`.
    pub fn new(query: &'q MailboxQuery) -> Self {
        ListHits {
            query,
            hits: Vec::new(),
        }
    }

    /// True when the walk goes in descending arrival order (else ascending).
    pub fn walks_descending(&self) -> bool {
        self.query.sort.is_none() && self.query.arrival_order == SortOrder::Descending
    }

    /// True when nothing more is needed (no hits wanted, or enough in walk order).
    pub fn done(&self) -> bool {
        self.query.max_hits == 0 || self.wanted() == Some(0)
    }

    /// How many more hits end the walk: `None` when every match must be seen (sorted by
    /// something other than arrival).
    pub fn wanted(&self) -> Option<usize> {
        match self.query.sort {
            None => Some(self.query.max_hits.saturating_sub(self.hits.len())),
            Some(_) => None,
        }
    }

    /// Takes `item` if it matches the query.
    pub fn offer(&mut self, item: L) {
        if !self.query.matches(&item) {
            return;
        }
        self.hits.push(item);
        if self.query.sort.is_some() && self.hits.len() >= 2 * self.query.max_hits {
            self.trim();
        }
    }

    /// The answer: in the query's order, at most `max_hits`.
    pub fn finish(mut self) -> Vec<L> {
        self.trim();
        self.hits
    }

    fn trim(&mut self) {
        let query = self.query;
        self.hits.sort_by(|a, b| query.compare(a, b));
        self.hits.truncate(query.max_hits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_prefix_and_case() {
        assert!(same_address("urn:X-shs:5565317129", "5565317129"));
        assert!(same_address(
            "URN:x-shs:5565317129.Bygglov",
            "5565317129.bygglov"
        ));
        assert!(!same_address("5565317129", "5565317128"));
        assert!(!same_address("5565317129", "5565317129.a"));
    }

    #[test]
    fn empty_status_counts_as_production() {
        let summary = MessageSummary::default();
        assert_eq!(status_of(&summary), "production");
    }
}
