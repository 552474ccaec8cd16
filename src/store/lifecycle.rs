//! The bookkeeping every state change of a record keeps in step, in one place so that no
//! write path can forget it:
//!
//! - the housekeeping index (`h/` keys): which messages wait unfetched, fetched or done
//!   since when, so that retention and expiry walk the due ones in time order instead of
//!   scanning every record (spec §10);
//! - the mailbox depths: an in-memory count per mailbox, counted once at open and then
//!   moved by each committed batch, so `/metrics` answers without touching the disk.
//!
//! A write path builds a [`Staging`], records each record's transition with
//! [`Staging::transition`], and commits it with [`Staging::apply`]: the depths move only if
//! the batch was applied.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::codec::encode;
use super::key_filters::KeyFilters;
use super::keys::{self, IndexEntry};
use super::kv::{Batch, Direction, Entry, KvEngine};
use super::record::{MessageRecord, State};
use super::{StoreError, record::LocalId};
use crate::protocol::urn::Address;

/// How many keys one scan at open reads at a time.
const PAGE: usize = 1024;

/// A batch being built, with what it does to the mailbox depths.
#[derive(Default)]
pub(super) struct Staging {
    /// The writes.
    pub batch: Batch,
    /// The tx.ids claimed by this batch (two records of one batch must not share one).
    pub seen_tx: HashSet<String>,
    /// A tx.id the caller has just looked up, under the write lock, and found unused: its
    /// record's staging need not read the index again (intake's look-up tells a duplicate
    /// from a tx.id taken by another sender, so it reads first).
    pub unused_tx: Option<String>,
    /// Mailbox depth changes to apply once the batch is applied.
    depths: Vec<(Address, i64)>,
    /// The corr.ids this batch indexes (by `c/` keys, or by `t/` keys that stand for them).
    corr_ids: Vec<String>,
}

impl Staging {
    /// Records that a record goes from `before` to `after` (`None`: not stored): moves its
    /// housekeeping key and notes the depth change. Call once per record and batch, after
    /// the record's own writes are staged.
    pub fn transition(&mut self, before: Option<&MessageRecord>, after: Option<&MessageRecord>) {
        match (before, after) {
            // Management messages are not indexed (no answer looks for one): one index
            // write less for every confirm an ack makes.
            (None, Some(new)) if !new.summary.is_management() => {
                if !keys::indexed_by_tx_id(new) {
                    let key = keys::corr(&new.summary.corr_id, new.local_id);
                    self.batch.put(key, Vec::new());
                }
                self.corr_ids.push(new.summary.corr_id.clone());
            }
            // Unconditional: stores written before 2026-11-23 indexed management messages.
            (Some(old), None) => {
                self.batch
                    .delete(keys::corr(&old.summary.corr_id, old.local_id));
            }
            _ => {}
        }
        let old_key = before.and_then(housekeeping_key);
        let new_key = after.and_then(housekeeping_key);
        if old_key != new_key {
            if let Some(key) = old_key {
                self.batch.delete(key);
            }
            if let Some(key) = new_key {
                self.batch.put(key, Vec::new());
            }
        }
        if let Some(mailbox) = before.and_then(listed_in) {
            self.depths.push((mailbox, -1));
        }
        if let Some(mailbox) = after.and_then(listed_in) {
            self.depths.push((mailbox, 1));
        }
    }

    /// Applies the batch; on success moves the depths by what it did. The new tx.ids and
    /// corr.ids are noted first: a failed batch only leaves bits that cost a look-up.
    pub fn apply<E: KvEngine + ?Sized>(
        self,
        engine: &E,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        for tx_id in &self.seen_tx {
            digest.filters.note_tx_id(tx_id.as_bytes());
        }
        for corr_id in &self.corr_ids {
            digest.filters.note_corr_id(corr_id.as_bytes());
        }
        engine.apply(self.batch)?;
        digest.depths.shift(self.depths);
        Ok(())
    }
}

/// What the store keeps in memory about its index, moved by every batch a [`Staging`]
/// applies.
pub(super) struct Digest {
    /// Messages listed per mailbox, counted at open.
    pub depths: MailboxDepths,
    /// Filters of the tx.ids and corr.ids, filled after open ([`KeyFilters`]).
    pub filters: Arc<KeyFilters>,
}

impl Digest {
    /// Counts the mailbox index (at open, after [`index_for_housekeeping`]); the filters
    /// start empty, answering "maybe" until they are filled.
    pub fn build<E: KvEngine + ?Sized>(engine: &E) -> Result<Digest, StoreError> {
        Ok(Digest {
            depths: MailboxDepths::count(engine)?,
            filters: Arc::new(KeyFilters::default()),
        })
    }
}

/// The number of messages listed in each mailbox (states RECEIVED and FETCHED).
#[derive(Debug, Default)]
pub(super) struct MailboxDepths {
    counts: Mutex<HashMap<Address, u64>>,
}

impl MailboxDepths {
    /// Counts the mailbox index once (at open; keys only, no record is read).
    pub fn count<E: KvEngine + ?Sized>(engine: &E) -> Result<MailboxDepths, StoreError> {
        let mut counts: HashMap<Address, u64> = HashMap::new();
        for_each_page(engine, keys::MAILBOX_PREFIX, |page| {
            for (key, _) in page {
                let mailbox = keys::mailbox_of_entry(key)
                    .and_then(|bare| std::str::from_utf8(bare).ok())
                    .and_then(|bare| bare.parse::<Address>().ok())
                    .ok_or_else(|| StoreError::Corrupt("malformed mailbox index key".into()))?;
                *counts.entry(mailbox).or_default() += 1;
            }
            Ok(())
        })?;
        Ok(MailboxDepths {
            counts: Mutex::new(counts),
        })
    }

    /// Every mailbox that holds or held messages since start, with its depth, sorted.
    pub fn snapshot(&self) -> Vec<(Address, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = counts.iter().map(|(m, n)| (m.clone(), *n)).collect();
        all.sort();
        all
    }

    fn shift(&self, changes: Vec<(Address, i64)>) {
        if changes.is_empty() {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for (mailbox, change) in changes {
            let count = counts.entry(mailbox).or_default();
            *count = count.saturating_add_signed(change);
        }
    }
}

/// The `h/` key a record in its current state has, if any: the class by state, the time
/// the state was entered (the last entry of its log).
pub(super) fn housekeeping_key(record: &MessageRecord) -> Option<Vec<u8>> {
    let class = match record.state {
        State::Received => keys::UNFETCHED,
        State::Fetched => keys::FETCHED,
        State::Acknowledged | State::Sent | State::Expired => keys::DONE,
        State::New | State::Quarantined | State::FannedOut => return None,
    };
    let since = record
        .state_log
        .last()
        .map_or(record.arrival, |change| change.at);
    Some(keys::housekeeping(class, since, record.local_id))
}

/// The mailbox a record is listed in, if its state lists it.
fn listed_in(record: &MessageRecord) -> Option<Address> {
    record.mailbox.clone().filter(|_| record.state.in_mailbox())
}

/// Puts a record into `mailbox` as RECEIVED: listed, findable by tx.id. The caller records
/// the transition.
pub(super) fn stage_delivery(
    batch: &mut Batch,
    record: &mut MessageRecord,
    mailbox: Address,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    record.enter(State::Received, now);
    record.mailbox = Some(mailbox);
    stage_listing(batch, record)
}

/// Lists a record that is RECEIVED in its mailbox: its index entries. (Fetch and ack find
/// it by its tx.id key.) The caller records the transition.
pub(super) fn stage_listing(batch: &mut Batch, record: &MessageRecord) -> Result<(), StoreError> {
    let mailbox = mailbox_of(record)?;
    let entry = encode(&IndexEntry::of(record))?;
    for key in keys::index_keys(&mailbox, record) {
        batch.put(key, entry.clone());
    }
    Ok(())
}

/// Takes a record out of its mailbox list (it stays findable by tx.id). The caller
/// records the transition.
pub(super) fn stage_unlisting(batch: &mut Batch, record: &MessageRecord) {
    if let Some(mailbox) = listed_in(record) {
        for key in keys::index_keys(&mailbox, record) {
            batch.delete(key);
        }
    }
}

/// The mailbox of a record that must have one.
pub(super) fn mailbox_of(record: &MessageRecord) -> Result<Address, StoreError> {
    record.mailbox.clone().ok_or_else(|| {
        StoreError::Corrupt(format!(
            "message {} is {:?} without a mailbox",
            record.local_id, record.state
        ))
    })
}

/// The error for an operation that does not apply in the record's state.
pub(super) fn wrong_state(record: &MessageRecord, action: &'static str) -> StoreError {
    StoreError::WrongState {
        local_id: record.local_id,
        state: record.state,
        action,
    }
}

/// Gives every record its `h/` key once, for stores written before the index existed.
/// Idempotent; run at open.
pub(super) fn index_for_housekeeping<E: KvEngine + ?Sized>(engine: &E) -> Result<(), StoreError> {
    if engine.get(keys::HOUSEKEEPING_INDEXED)?.is_some() {
        return Ok(());
    }
    let mut indexed = 0_usize;
    for_each_page(engine, keys::MESSAGE_PREFIX, |page| {
        let mut batch = Batch::default();
        for (_, value) in page {
            let record: MessageRecord = super::codec::decode(value)?;
            if !record.summary.is_management() {
                batch.put(
                    keys::corr(&record.summary.corr_id, record.local_id),
                    Vec::new(),
                );
            }
            if let Some(key) = housekeeping_key(&record) {
                batch.put(key, Vec::new());
            }
            indexed += 1;
        }
        Ok(engine.apply(batch)?)
    })?;
    let mut batch = Batch::default();
    batch.put(keys::HOUSEKEEPING_INDEXED.to_vec(), Vec::new());
    engine.apply(batch)?;
    if indexed > 0 {
        tracing::info!(
            count = indexed,
            "indexed stored messages (housekeeping, corr.id)"
        );
    }
    Ok(())
}

/// Calls `visit` with every entry under `prefix`, a bounded page at a time.
pub(super) fn for_each_page<E: KvEngine + ?Sized>(
    engine: &E,
    prefix: &[u8],
    mut visit: impl FnMut(&[Entry]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = engine.scan(prefix, after.as_deref(), Direction::Forward, PAGE)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        visit(&page)?;
    }
}

/// The local ids of the family sharing a record's payload: a fan-out parent and its
/// copies. Only those ids can hold the payload besides the record itself.
pub(super) fn payload_family(
    record: &MessageRecord,
    parent: Option<&MessageRecord>,
) -> Vec<LocalId> {
    let mut family = Vec::new();
    match parent {
        Some(parent) => {
            family.push(parent.local_id);
            family.extend(parent.copies.iter().copied());
        }
        None => family.extend(record.copies.iter().copied()),
    }
    family.retain(|id| *id != record.local_id);
    family
}
