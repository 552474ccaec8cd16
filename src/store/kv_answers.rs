//! Answers for [`super::KvStore`] (spec §4.4): messages found by corr.id through the `c/`
//! index, and the confirm or error that answered one noted on its record.

use super::StoreError;
use super::codec::encode;
use super::keys;
use super::kv::{Batch, Direction, KvEngine};
use super::kv_store::Inner;
use super::record::{Answer, LocalId, MessageRecord};

impl<E: KvEngine> Inner<E> {
    /// The ids of the messages with `corr_id` (at most `limit`) except those in `except`:
    /// a scan of one conversation's keys in the `c/` index (empty values), no record read.
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
