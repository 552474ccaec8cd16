//! Housekeeping for [`super::KvStore`] (spec §10): the due messages from the `h/` index,
//! expiry of unfetched messages, and removal of finished ones with the payload going when
//! its last holder goes.

use chrono::{DateTime, Utc};

use super::codec::encode;
use super::group_commit::Ticket;
use super::housekeeping::{Due, Expiry, Removal};
use super::keys::{self, PendingPayload, TxEntry};
use super::kv::{Direction, KvEngine};
use super::kv_store::Inner;
use super::lifecycle::{Staging, payload_family, stage_unlisting, wrong_state};
use super::record::{LocalId, MessageRecord, State};
use super::{NewMessage, StoreError};

impl<E: KvEngine> Inner<E> {
    /// Up to `limit` messages of class `due` whose state began before `before`, oldest
    /// first.
    pub(super) fn due(
        &self,
        due: Due,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LocalId>, StoreError> {
        let class = match due {
            Due::Unfetched => keys::UNFETCHED,
            Due::Fetched => keys::FETCHED,
            Due::Done => keys::DONE,
        };
        let prefix = keys::housekeeping_prefix(class);
        let mut ids = Vec::new();
        for (key, _) in self.engine.scan(&prefix, None, Direction::Forward, limit)? {
            let (since, id) = keys::housekeeping_of(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed housekeeping key".into()))?;
            if since >= before {
                break;
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// RECEIVED → EXPIRED with `notice` stored in the same batch.
    pub(super) fn expire(
        &self,
        id: LocalId,
        notice: Option<NewMessage>,
    ) -> Result<(Expiry, Option<Ticket>), StoreError> {
        let guard = self.lock_writes();
        let record = self.record(id)?;
        let Some(mut record) = record.filter(|r| r.state == State::Received) else {
            drop(guard);
            if let Some(notice) = notice {
                self.discard_quietly(notice.payload.id);
            }
            return Ok((Expiry::NotDue, None));
        };
        let before = record.clone();
        let mut staging = Staging::default();
        stage_unlisting(&mut staging.batch, &record);
        record.enter(State::Expired, Utc::now());
        staging.batch.put(keys::message(id), encode(&record)?);
        staging.transition(Some(&before), Some(&record));
        let (notice, notice_job) = match notice {
            Some(message) => {
                let (stored, job) = self.stage_new(&mut staging, message)?;
                (Some(stored), job)
            }
            None => (None, None),
        };
        staging.apply(&*self.engine, &self.digest)?;
        let ticket = self.commit_ticket();
        drop(guard);
        let expiry = Expiry::Expired {
            record,
            notice,
            notice_job,
        };
        Ok((expiry, Some(ticket)))
    }

    /// Removes message `id` (any state but NEW). Already gone: an empty [`Removal`].
    pub(super) fn remove(&self, id: LocalId) -> Result<(Removal, Option<Ticket>), StoreError> {
        let guard = self.lock_writes();
        let Some(record) = self.record(id)? else {
            return Ok((Removal::default(), None));
        };
        if record.state == State::New {
            return Err(wrong_state(&record, "remove while routing is under way"));
        }
        let mut staging = Staging::default();
        let removal = self.stage_removal(&mut staging, &record)?;
        staging.apply(&*self.engine, &self.digest)?;
        let ticket = self.commit_ticket();
        drop(guard);
        Ok((removal, Some(ticket)))
    }

    /// Stages the removal of `record` with every key that names it. The payload is marked
    /// for deletion when no other record of its fan-out family remains; a fan-out parent
    /// goes with its last copy, and cannot go before its copies (they find their siblings
    /// through it). The chunks are deleted after the batch is durable
    /// ([`super::kv_payload::delete_payload`]); if that is interrupted, the marker makes
    /// the next open finish it.
    pub(super) fn stage_removal(
        &self,
        staging: &mut Staging,
        record: &MessageRecord,
    ) -> Result<Removal, StoreError> {
        let parent = match record.parent {
            Some(parent) => self.record(parent)?,
            None => None,
        };
        let mut others = Vec::new();
        for member in payload_family(record, parent.as_ref()) {
            if let Some(other) = self.record(member)? {
                others.push(other);
            }
        }
        let parent_id = parent.as_ref().map(|p| p.local_id);
        let copies_remain = others.iter().any(|o| Some(o.local_id) != parent_id);
        if record.state == State::FannedOut && copies_remain {
            return Err(wrong_state(record, "delete before its fan-out copies"));
        }
        let mut removal = Removal::default();
        self.stage_record_removal(staging, record)?;
        removal.removed.push(record.local_id);
        if !copies_remain {
            if let Some(parent) = parent.filter(|p| p.state == State::FannedOut) {
                self.stage_record_removal(staging, &parent)?;
                removal.removed.push(parent.local_id);
            }
            let payload = record.payload.id;
            let marker = PendingPayload {
                started_unix: Utc::now().timestamp(),
                discarding: true,
            };
            staging.batch.put(keys::pending(payload), encode(&marker)?);
            removal.payload_deleted = Some(payload);
        }
        Ok(removal)
    }

    /// Stages the deletion of one record and the keys that name it.
    fn stage_record_removal(
        &self,
        staging: &mut Staging,
        record: &MessageRecord,
    ) -> Result<(), StoreError> {
        let id = record.local_id;
        staging.batch.delete(keys::message(id));
        let tx_key = keys::tx(&record.tx_id);
        if self
            .value::<TxEntry>(&tx_key)?
            .is_some_and(|entry| entry.local_id == id)
        {
            staging.batch.delete(tx_key);
        }
        stage_unlisting(&mut staging.batch, record);
        // Stores written before 2026-11-23 also keyed delivered messages by mailbox
        // and tx.id; such a key goes with its record.
        if let Some(mailbox) = &record.mailbox {
            let key = keys::legacy_mailbox_tx(mailbox, &record.tx_id);
            if self.value::<LocalId>(&key)? == Some(id) {
                staging.batch.delete(key);
            }
        }
        staging.transition(Some(record), None);
        Ok(())
    }
}
