//! Answers for [`super::KvStore`] (spec §4.4): messages found by corr.id through the `c/`
//! index (and the `t/` entries that stand for `c/` keys), and the confirm or error that
//! answered one noted on its record.

use super::StoreError;
use super::codec::encode;
use super::keys;
use super::kv::{Batch, Direction, KvEngine};
use super::kv_store::Inner;
use super::record::{Answer, LocalId, MessageRecord};

impl<E: KvEngine> Inner<E> {
    /// The ids of the messages with `corr_id` (at most `limit`) except those in `except`,
    /// oldest first: a scan of one conversation's keys in the `c/` index (empty values),
    /// and the `t/` entry of the tx.id equal to the corr.id, which stands for the `c/` key
    /// of the message that began the conversation ([`keys::indexed_by_tx_id`]). No record
    /// is read.
    pub(super) fn corr_id_members(
        &self,
        corr_id: &str,
        limit: usize,
        except: &[LocalId],
    ) -> Result<Vec<LocalId>, StoreError> {
        let prefix = keys::corr_prefix(corr_id);
        let mut ids = Vec::new();
        for (key, _) in self.engine.scan(&prefix, None, Direction::Forward, limit)? {
            let id = keys::corr_id_of(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed corr.id key".into()))?;
            if !except.contains(&id) {
                ids.push(id);
            }
        }
        if let Some(entry) = self.tx_entry(corr_id)?
            && entry.corr_id_too
            && !except.contains(&entry.local_id)
            && !ids.contains(&entry.local_id)
        {
            // Local ids are in arrival order, as the `c/` keys are.
            let at = ids.partition_point(|id| *id < entry.local_id);
            ids.insert(at, entry.local_id);
            ids.truncate(limit);
        }
        Ok(ids)
    }

    /// The records of `ids` that exist, in that order.
    pub(super) fn records(&self, ids: &[LocalId]) -> Result<Vec<MessageRecord>, StoreError> {
        let mut records = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(record) = self.record(id)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    pub(super) fn note_answer(&self, id: LocalId, answer: Answer) -> Result<(), StoreError> {
        let _guard = self.lock_writes();
        let Some(mut record) = self.record(id)? else {
            return Ok(());
        };
        record.answer = Some(answer);
        let mut batch = Batch::default();
        batch.put(keys::message(id), encode(&record)?);
        self.engine.apply(batch)?;
        Ok(())
    }
}
