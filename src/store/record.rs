//! What the store keeps about a message: the record (state, label, summary, payload
//! description) and the identifiers that name records, payloads and routing jobs.
//!
//! These are plain data structs with serde derives; [`super::codec`] frames them with a
//! format-version byte. Typed protocol values (`Address`, `OrgNumber`, `ErrorCode`) are
//! written as their canonical strings, so the stored form does not depend on how the
//! protocol types are laid out in memory.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::{as_error_code, as_latin1, as_opt_address, as_org, as_timestamp};
use crate::protocol::ErrorCode;
use crate::protocol::urn::{Address, OrgNumber};

/// The node's own id for one stored message (`X-shs-localid`, `local.id` in the history).
/// Chosen by the broker before acceptance, because the label's history entry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalId(pub Uuid);

impl LocalId {
    /// A fresh id: a UUID version 7, the time in milliseconds then 74 random bits. Ids in
    /// arrival order keep the store's record keys (`m/<id>`) in arrival order, so new
    /// records go to the end of the index and a mailbox read oldest first reads its records
    /// from neighbouring index pages, instead of one random page each.
    pub fn random() -> Self {
        LocalId(Uuid::now_v7())
    }
}

impl fmt::Display for LocalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Names the stored data parts of one message; fan-out copies share their parent's.
/// Made as [`LocalId`]s are ([`PayloadId::fresh`]), for the same locality of its chunk keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PayloadId(pub Uuid);

impl PayloadId {
    /// A fresh id: a UUID version 7, like [`LocalId::random`].
    pub fn fresh() -> Self {
        PayloadId(Uuid::now_v7())
    }
}

impl fmt::Display for PayloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A durable routing job. Ids only grow, also across restarts, so jobs resume oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The message states of spec §5.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    /// Stored, routing pending.
    New,
    /// In a local mailbox, not yet fetched.
    Received,
    /// Fetched at least once, not yet acknowledged; can be fetched again.
    Fetched,
    /// Acknowledged by the receiving business system: final for the mailbox.
    Acknowledged,
    /// Routing or delivery failed; kept until an administrator acts.
    Quarantined,
    /// Pushed to another node or system, which answered 2xx.
    Sent,
    /// Product-addressed to several recipients: this parent has one copy per recipient.
    FannedOut,
    /// Not fetched within the expiry period: taken out of its mailbox, and the sender was
    /// sent an `error` (spec §10). Deleted after the retention period like a done message.
    Expired,
}

impl State {
    /// Every state, in the order of the spec's state diagram.
    pub const ALL: [State; 8] = [
        State::New,
        State::Received,
        State::Fetched,
        State::Acknowledged,
        State::Quarantined,
        State::Sent,
        State::FannedOut,
        State::Expired,
    ];

    /// The name the admin API, the console and the logs use (`FANNED_OUT`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "NEW",
            State::Received => "RECEIVED",
            State::Fetched => "FETCHED",
            State::Acknowledged => "ACKNOWLEDGED",
            State::Quarantined => "QUARANTINED",
            State::Sent => "SENT",
            State::FannedOut => "FANNED_OUT",
            State::Expired => "EXPIRED",
        }
    }

    /// The state named by `name` as [`State::as_str`] writes it, case-insensitively.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(name))
    }

    /// True for the states in which the message sits in its mailbox list index.
    pub fn in_mailbox(self) -> bool {
        matches!(self, State::Received | State::Fetched)
    }
}

/// One entry of the message log: when the message entered a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The state entered.
    pub state: State,
    /// When (UTC).
    #[serde(with = "as_timestamp")]
    pub at: DateTime<Utc>,
}

/// A `meta` element of the label.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetaEntry {
    /// `name`.
    pub name: String,
    /// The element text.
    pub value: String,
}

/// A `data` element of the label, as the message list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataPartSummary {
    /// `datapartType`.
    pub datapart_type: Option<String>,
    /// `filename`.
    pub filename: Option<String>,
    /// `no-of-bytes`, as written.
    pub no_of_bytes: Option<String>,
    /// `no-of-records`, as written.
    pub no_of_records: Option<String>,
}

/// Everything an `shs.message-list` entry shows, taken from the label at intake, so that
/// listing never parses labels and an SQL engine can filter on columns. Values are as the
/// sender wrote them (spec §4.2 round-trip rule); comparisons normalise where the spec
/// says so (see [`super::query`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MessageSummary {
    /// `tx.id`.
    pub tx_id: String,
    /// `timestamp` in the list: the label `datetime`, as written.
    pub timestamp: String,
    /// `corr.id`.
    pub corr_id: String,
    /// `content.id`.
    pub content_id: String,
    /// `size` in bytes.
    pub size: u64,
    /// `originator`.
    pub originator: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `end-recipient`.
    pub end_recipient: Option<String>,
    /// `product`.
    pub product: String,
    /// `sequence-type` (`event`, `request`, `reply`, `adm`).
    pub sequence_type: String,
    /// `status` (`production` or `test`; empty means the default, production).
    pub status: String,
    /// `meta*`, in label order.
    pub meta: Vec<MetaEntry>,
    /// `subject`.
    pub subject: Option<String>,
    /// `data*`, in label order.
    pub data: Vec<DataPartSummary>,
}

impl MessageSummary {
    /// A management message (`sequence-type` `adm`: a confirm, an error) answers others
    /// and is never answered itself (spec §4.4), so the corr.id look-up for answers leaves
    /// it out.
    pub fn is_management(&self) -> bool {
        self.sequence_type == "adm"
    }
}

/// One stored data part: its MIME header block exactly as received, and its body length.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartInfo {
    /// The part's MIME headers, byte for byte (they may hold ISO-8859-1 file names).
    #[serde(with = "as_latin1")]
    pub raw_headers: Vec<u8>,
    /// Body length in bytes.
    pub len: u64,
    /// Number of stored chunks; 0 for an empty part.
    pub chunks: u32,
}

/// Where the data parts of a message are and how big they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadInfo {
    /// The payload.
    pub id: PayloadId,
    /// The data parts, in MIME order.
    pub parts: Vec<PartInfo>,
    /// Sum of the part body lengths.
    pub size: u64,
}

/// Why a message was quarantined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The SHS error code sent to the sender.
    #[serde(with = "as_error_code")]
    pub code: ErrorCode,
    /// One line for the sender and the administrator.
    pub text: String,
}

/// Everything the node knows about one message, except its payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The node's id for the message.
    pub local_id: LocalId,
    /// `tx.id` (the same as `summary.tx_id`, kept at top level as the duplicate key).
    pub tx_id: String,
    /// The sending organisation (from `from`, or `originator` without `from`): with
    /// `tx_id` the duplicate key of spec §3.1.
    #[serde(with = "as_org")]
    pub sender: OrgNumber,
    /// The local mailbox it was delivered to, once routed to one.
    #[serde(with = "as_opt_address")]
    pub mailbox: Option<Address>,
    /// The current state (the last entry of `state_log`).
    pub state: State,
    /// Every state entered, oldest first.
    pub state_log: Vec<StateChange>,
    /// When the node accepted the message (UTC; rendered in node local time at the edge).
    #[serde(with = "as_timestamp")]
    pub arrival: DateTime<Utc>,
    /// Store-assigned arrival order: the mailbox index key, so listing is oldest first even
    /// when routing finishes out of order.
    pub arrival_seq: u64,
    /// The label exactly as it is served on fetch (history appended), opaque to the store.
    #[serde(with = "as_latin1")]
    pub label: Vec<u8>,
    /// The message-list view of the label.
    pub summary: MessageSummary,
    /// The data parts.
    pub payload: PayloadInfo,
    /// Code and text when quarantined.
    pub error: Option<ErrorInfo>,
    /// A verified signer (spec §7), for the history, admin API and console.
    pub signer: Option<String>,
    /// For a fan-out copy: the product-addressed original.
    pub parent: Option<LocalId>,
    /// For a fanned-out original: its copies.
    pub copies: Vec<LocalId>,
    /// The confirm or error the receiver sent back about this message (spec §4.4), once
    /// one arrived; absent in records written before answers were recorded.
    #[serde(default)]
    pub answer: Option<Answer>,
}

/// A management message that answered a message: what it said and when it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `None` for a confirm; the error's code and text for an error.
    pub error: Option<ErrorInfo>,
    /// The tx.id of the management message.
    pub tx_id: String,
    /// When it was delivered here.
    #[serde(with = "as_timestamp")]
    pub at: DateTime<Utc>,
}

impl MessageRecord {
    /// Moves to `state` and records the transition.
    pub(crate) fn enter(&mut self, state: State, at: DateTime<Utc>) {
        self.state = state;
        self.state_log.push(StateChange {
            state,
            at: stored_precision(at),
        });
    }
}

/// Times are stored with microseconds; records handed out carry the same precision, so a
/// record returned by a write equals the record read back later.
pub(crate) fn stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's record and chunk keys follow arrival order only if ids made later sort
    /// later: version 7, time first.
    #[test]
    fn ids_made_later_sort_later() {
        let first = (LocalId::random(), PayloadId::fresh());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = (LocalId::random(), PayloadId::fresh());
        assert!(first.0 < later.0 && first.1 < later.1);
        assert_eq!(later.0.0.get_version_num(), 7);
        assert_ne!(LocalId::random(), LocalId::random());
    }
}
