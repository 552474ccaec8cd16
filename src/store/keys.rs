//! The key layout of [`super::KvStore`] and the small index values stored under it.
//!
//! | key | value | purpose |
//! |---|---|---|
//! | `m/<local id:16>` | [`MessageRecord`](super::MessageRecord) | the record |
//! | `t/<tx.id>` | [`TxEntry`] | duplicate detection (spec §3.1); fetch and ack by tx.id; for a message whose corr.id is its tx.id, also its `c/` key |
//! | `x/<mailbox>/<arrival seq:8 BE>` | [`IndexEntry`] | the mailbox list, oldest first |
//! | `z/<mailbox>/<product>/<arrival seq:8 BE>` | [`IndexEntry`] | the same, per product |
//! | `y/<mailbox>/<tx.id>` | local id | no longer written (fetch and ack use `t/`); deleted with its record |
//! | `j/<job id:8 BE>` | [`JobEntry`] | routing jobs, oldest first |
//! | `u/<payload:16>` | [`PendingPayload`] | an upload not yet accepted |
//! | `p/<payload:16><part:4 BE><chunk:4 BE>` | raw bytes | payload chunks |
//! | `h/<class:1>/<since µs:8 BE><local id:16>` | empty | housekeeping: `r` unfetched, `f` fetched, `d` done (acked, sent, expired), by the time the state was entered |
//! | `a/<seq:8 BE>` | [`AuditRecord`](super::AuditRecord) | the admin audit log |
//! | `c/<corr.id>\0<local id:16>` | empty | messages by corr.id, for answers (spec §4.4); management messages are left out, and so is a message whose corr.id is its own tx.id (its `t/` entry says so) |
//! | `k/<name>` | marker | one-time migrations done |
//!
//! A mailbox is written in its bare form (`5565317129.bygglov`), which never contains `/`,
//! so `x/<mailbox>/` is a prefix of exactly that mailbox's keys. Integers are big-endian so
//! byte order is numeric order.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::codec::{as_org, as_timestamp};
use super::record::{LocalId, MessageRecord, MessageSummary, PayloadId, State};
use crate::protocol::urn::{Address, OrgNumber, ProductId};

pub const MESSAGE_PREFIX: &[u8] = b"m/";
pub const PENDING_PREFIX: &[u8] = b"u/";
pub const JOB_PREFIX: &[u8] = b"j/";
pub const AUDIT_PREFIX: &[u8] = b"a/";
pub const MAILBOX_PREFIX: &[u8] = b"x/";
pub const CORR_PREFIX: &[u8] = b"c/";
pub const TX_PREFIX: &[u8] = b"t/";

/// The housekeeping classes of `h/` keys.
pub const UNFETCHED: u8 = b'r';
pub const FETCHED: u8 = b'f';
pub const DONE: u8 = b'd';

/// Set once every record has its `h/` and `c/` keys (records stored before those indexes
/// existed get them at open).
pub const HOUSEKEEPING_INDEXED: &[u8] = b"k/indexes-2";

/// The value of `t/<tx.id>`: who used the tx.id, and for which message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxEntry {
    #[serde(with = "as_org")]
    pub sender: OrgNumber,
    pub local_id: LocalId,
    /// The message is indexed by corr.id under this key instead of a `c/` key of its own
    /// ([`indexed_by_tx_id`]). False in entries written before 2026-11-24, whose messages
    /// have their `c/` key.
    #[serde(default)]
    pub corr_id_too: bool,
}

/// True when `record` is indexed by corr.id through its `t/` key rather than a `c/` key:
/// its corr.id is its own tx.id, as for the first message of most conversations. A `c/`
/// key is a random write into the index (corr.ids are random), one of the seven each
/// delivered message costs; this saves it (`BENCHMARKS.md`, issue 7). Management
/// messages are not indexed by corr.id at all.
pub fn indexed_by_tx_id(record: &MessageRecord) -> bool {
    !record.summary.is_management() && record.summary.corr_id == record.tx_id
}

/// The value of a mailbox list entry: a covering index. It carries everything a list
/// filter looks at (state, arrival, summary), so a list walks the index sequentially and
/// loads records only for matches; without it every entry cost a random read of a whole
/// record, label included (measured: ~49 µs per entry, 5 s per 100 000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub local_id: LocalId,
    pub fetched: bool,
    #[serde(with = "as_timestamp")]
    pub arrival: DateTime<Utc>,
    pub summary: MessageSummary,
}

impl IndexEntry {
    /// The entry for a record that is in its mailbox.
    pub fn of(record: &MessageRecord) -> Self {
        IndexEntry {
            local_id: record.local_id,
            fetched: record.state == State::Fetched,
            arrival: record.arrival,
            summary: record.summary.clone(),
        }
    }

    /// The state the entry stands for.
    pub fn state(&self) -> State {
        if self.fetched {
            State::Fetched
        } else {
            State::Received
        }
    }
}

/// The value of a routing job: the message, and its retry schedule once a delivery
/// attempt failed (absent in jobs written before schedules existed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntry {
    pub local_id: LocalId,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub not_before_micros: Option<i64>,
    #[serde(default)]
    pub last_error: Option<String>,
}

impl JobEntry {
    /// A job that has not been tried yet.
    pub fn new(local_id: LocalId) -> Self {
        JobEntry {
            local_id,
            attempts: 0,
            not_before_micros: None,
            last_error: None,
        }
    }
}

/// The value of a pending-upload marker: written before the first chunk, removed by the
/// batch that accepts (or the one that discards) the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPayload {
    pub started_unix: i64,
    /// Set while a discard deletes the chunks, so that no accept can commit it meanwhile.
    #[serde(default)]
    pub discarding: bool,
}

pub fn message(id: LocalId) -> Vec<u8> {
    with_prefix(MESSAGE_PREFIX, id.0.as_bytes())
}

pub fn tx(tx_id: &str) -> Vec<u8> {
    with_prefix(TX_PREFIX, tx_id.as_bytes())
}

pub fn mailbox_prefix(mailbox: &Address) -> Vec<u8> {
    let mut key = b"x/".to_vec();
    key.extend_from_slice(mailbox.bare().as_bytes());
    key.push(b'/');
    key
}

pub fn mailbox_entry(mailbox: &Address, arrival_seq: u64) -> Vec<u8> {
    let mut key = mailbox_prefix(mailbox);
    key.extend_from_slice(&arrival_seq.to_be_bytes());
    key
}

/// The arrival sequence a mailbox or product index key ends with.
pub fn arrival_seq_of(index_key: &[u8]) -> Option<u64> {
    let tail = index_key.len().checked_sub(8).map(|at| &index_key[at..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn product_prefix(mailbox: &Address, product: &ProductId) -> Vec<u8> {
    let mut key = b"z/".to_vec();
    key.extend_from_slice(mailbox.bare().as_bytes());
    key.push(b'/');
    key.extend_from_slice(product.bare().as_bytes());
    key.push(b'/');
    key
}

/// Every index key of a record in its mailbox: the mailbox list and, when the label's
/// product is a valid product id, the per-product list.
pub fn index_keys(mailbox: &Address, record: &MessageRecord) -> Vec<Vec<u8>> {
    let mut keys = vec![mailbox_entry(mailbox, record.arrival_seq)];
    if let Ok(product) = record.summary.product.parse::<ProductId>() {
        let mut key = product_prefix(mailbox, &product);
        key.extend_from_slice(&record.arrival_seq.to_be_bytes());
        keys.push(key);
    }
    keys
}

/// The key earlier builds wrote for each delivered message (one more index write per
/// message than `t/`, which names the same record).
pub fn legacy_mailbox_tx(mailbox: &Address, tx_id: &str) -> Vec<u8> {
    let mut key = b"y/".to_vec();
    key.extend_from_slice(mailbox.bare().as_bytes());
    key.push(b'/');
    key.extend_from_slice(tx_id.as_bytes());
    key
}

pub fn job(id: u64) -> Vec<u8> {
    with_prefix(JOB_PREFIX, &id.to_be_bytes())
}

/// The job id of a `j/` key.
pub fn job_id_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.strip_prefix(JOB_PREFIX)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub fn pending(payload: PayloadId) -> Vec<u8> {
    with_prefix(PENDING_PREFIX, payload.0.as_bytes())
}

/// The payload id of a `u/` key.
pub fn pending_id_of(key: &[u8]) -> Option<PayloadId> {
    let bytes: [u8; 16] = key.strip_prefix(PENDING_PREFIX)?.try_into().ok()?;
    Some(PayloadId(uuid::Uuid::from_bytes(bytes)))
}

pub fn chunk_prefix(payload: PayloadId) -> Vec<u8> {
    with_prefix(b"p/", payload.0.as_bytes())
}

pub fn chunk(payload: PayloadId, part: u32, index: u32) -> Vec<u8> {
    let mut key = chunk_prefix(payload);
    key.extend_from_slice(&part.to_be_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    key
}

pub fn housekeeping_prefix(class: u8) -> Vec<u8> {
    vec![b'h', b'/', class, b'/']
}

/// The `h/` key of a record that entered its state at `since`. Times before 1970 sort
/// first (they do not occur; clamping keeps the key well-formed).
pub fn housekeeping(class: u8, since: DateTime<Utc>, id: LocalId) -> Vec<u8> {
    let mut key = housekeeping_prefix(class);
    let micros = u64::try_from(since.timestamp_micros()).unwrap_or(0);
    key.extend_from_slice(&micros.to_be_bytes());
    key.extend_from_slice(id.0.as_bytes());
    key
}

/// The time and local id of an `h/` key.
pub fn housekeeping_of(key: &[u8]) -> Option<(DateTime<Utc>, LocalId)> {
    let rest = key.get(4..)?;
    let micros: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    let id: [u8; 16] = rest.get(8..)?.try_into().ok()?;
    let micros = i64::try_from(u64::from_be_bytes(micros)).ok()?;
    let since = DateTime::from_timestamp_micros(micros)?;
    Some((since, LocalId(uuid::Uuid::from_bytes(id))))
}

pub fn corr_prefix(corr_id: &str) -> Vec<u8> {
    let mut key = CORR_PREFIX.to_vec();
    key.extend_from_slice(corr_id.as_bytes());
    key.push(0);
    key
}

/// The `c/` key of a message; XML text never holds NUL, so the separator is unambiguous.
pub fn corr(corr_id: &str, id: LocalId) -> Vec<u8> {
    let mut key = corr_prefix(corr_id);
    key.extend_from_slice(id.0.as_bytes());
    key
}

/// The local id of a `c/` key.
pub fn corr_id_of(key: &[u8]) -> Option<LocalId> {
    let id: [u8; 16] = key.get(key.len().checked_sub(16)?..)?.try_into().ok()?;
    Some(LocalId(uuid::Uuid::from_bytes(id)))
}

/// The corr.id of a `c/` key, as bytes.
pub fn corr_id_bytes(key: &[u8]) -> Option<&[u8]> {
    let rest = key.strip_prefix(CORR_PREFIX)?;
    rest.get(..rest.len().checked_sub(17)?)
}

pub fn audit(seq: u64) -> Vec<u8> {
    with_prefix(AUDIT_PREFIX, &seq.to_be_bytes())
}

/// The mailbox of an `x/` key, in its bare form.
pub fn mailbox_of_entry(key: &[u8]) -> Option<&[u8]> {
    let rest = key.strip_prefix(MAILBOX_PREFIX)?;
    rest.get(..rest.len().checked_sub(9)?)
}

fn with_prefix(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + rest.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(rest);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_prefixes_do_not_overlap() {
        let a: Address = "5565317129.a".parse().unwrap();
        let ab: Address = "5565317129.ab".parse().unwrap();
        let org: Address = "5565317129".parse().unwrap();
        let key_ab = mailbox_entry(&ab, 1);
        assert!(!key_ab.starts_with(&mailbox_prefix(&a)));
        assert!(!key_ab.starts_with(&mailbox_prefix(&org)));
        assert!(mailbox_entry(&a, 1) < mailbox_entry(&a, 256));
        let product: ProductId = "confirm".parse().unwrap();
        assert!(!product_prefix(&ab, &product).starts_with(&product_prefix(&a, &product)));
    }

    #[test]
    fn housekeeping_keys_sort_by_time_and_round_trip() {
        let id = LocalId(uuid::Uuid::from_u128(7));
        let early = DateTime::from_timestamp_micros(1_000_000).unwrap();
        let late = DateTime::from_timestamp_micros(1_000_256).unwrap();
        let key = housekeeping(DONE, early, id);
        assert!(key < housekeeping(DONE, late, id));
        assert!(key.starts_with(&housekeeping_prefix(DONE)));
        assert_eq!(housekeeping_of(&key), Some((early, id)));
        assert_eq!(housekeeping_of(b"h/d/short"), None);
    }

    #[test]
    fn mailbox_entries_name_their_mailbox() {
        let mailbox: Address = "5565317129.a".parse().unwrap();
        let key = mailbox_entry(&mailbox, 3);
        assert_eq!(mailbox_of_entry(&key), Some(&b"5565317129.a"[..]));
        assert_eq!(mailbox_of_entry(b"x/"), None);
    }

    #[test]
    fn ids_round_trip_through_keys() {
        assert_eq!(job_id_of(&job(258)), Some(258));
        let payload = PayloadId(uuid::Uuid::from_u128(9));
        assert_eq!(pending_id_of(&pending(payload)), Some(payload));
        assert_eq!(job_id_of(b"j/short"), None);
    }
}
