//! The admin search ([`super::Store::search`]) of [`super::KvStore`].
//!
//! There is no secondary index for it: a search with a tx.id is one point read through
//! the duplicate key `t/<tx.id>`; any other search pages through every `m/` record in
//! bounded steps, decoding each one. That is linear in the number of stored messages,
//! which is acceptable for an occasional administrator's query on a loopback listener
//! and costs nothing on the write path; an SQL engine would use its indexes instead.
//!
//! Records are keyed by random local id, so key order says nothing about age: the scan
//! keeps the newest matches by arrival sequence (at most twice the limit in memory,
//! trimmed as it goes) and answers newest first.

use super::StoreError;
use super::codec::decode;
use super::keys;
use super::kv::{Direction, KvEngine};
use super::kv_store::Inner;
use super::record::MessageRecord;
use super::search::AdminSearch;

/// How many records a search decodes per engine call; tiny in tests, so that small
/// stores already cross page boundaries.
const PAGE: usize = if cfg!(test) { 5 } else { 128 };

impl<E: KvEngine> Inner<E> {
    pub(super) fn search(&self, search: &AdminSearch) -> Result<Vec<MessageRecord>, StoreError> {
        let limit = search.limit();
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(tx_id) = &search.tx_id {
            // tx.ids are unique per node (the duplicate key), so this is the whole answer.
            let Some(entry) = self.tx_entry(tx_id)? else {
                return Ok(Vec::new());
            };
            let found = self.record(entry.local_id)?;
            return Ok(found.into_iter().filter(|r| search.matches(r)).collect());
        }
        let newest_first = |hits: &mut Vec<MessageRecord>| {
            hits.sort_by_key(|r| std::cmp::Reverse(r.arrival_seq));
            hits.truncate(limit);
        };
        let mut hits = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.engine.scan(
                keys::MESSAGE_PREFIX,
                after.as_deref(),
                Direction::Forward,
                PAGE,
            )?;
            let full = page.len() == PAGE;
            after = page.last().map(|(key, _)| key.clone());
            for (_, value) in page {
                let record: MessageRecord = decode(&value)?;
                if search.matches(&record) {
                    hits.push(record);
                    if hits.len() >= 2 * limit {
                        newest_first(&mut hits);
                    }
                }
            }
            if !full {
                break;
            }
        }
        newest_first(&mut hits);
        Ok(hits)
    }
}
