//! The read paths of [`super::KvStore`] that walk an index: a mailbox list (spec §3.3)
//! and the routing jobs. Both page through the engine in bounded steps, so memory stays
//! flat however long the mailbox or the job queue is. Mailbox index entries carry the
//! message summary ([`IndexEntry`]), so filtering reads the index sequentially and loads
//! only the records it returns, and a list of summaries (what the `shs.message-list`
//! shows) loads none.

use chrono::{DateTime, Utc};

use super::codec::decode;
use super::keys::{self, IndexEntry, JobEntry};
use super::kv::{Direction, KvEngine};
use super::kv_store::Inner;
use super::query::{ListHits, Listed, MailboxQuery};
use super::record::{JobId, MessageRecord, MessageSummary, State};
use super::{Retry, RoutingJob, StoreError};
use crate::protocol::urn::Address;

/// How many index entries a list reads per engine call; tiny in tests, so that small
/// mailboxes already cross page boundaries.
const PAGE: usize = if cfg!(test) { 7 } else { 256 };

/// A mailbox index entry with the arrival sequence of its key: all a list answer needs.
struct Entry {
    seq: u64,
    entry: IndexEntry,
}

impl Listed for Entry {
    fn summary(&self) -> &MessageSummary {
        &self.entry.summary
    }

    fn state(&self) -> State {
        self.entry.state()
    }

    fn arrival(&self) -> DateTime<Utc> {
        self.entry.arrival
    }

    fn arrival_seq(&self) -> u64 {
        self.seq
    }
}

impl<E: KvEngine> Inner<E> {
    /// The records of a list: each match's record is read (the record is the truth; the
    /// index can only disagree through a bug).
    pub(super) fn list(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let records = self.walk_list(mailbox, query, |entry| self.record(entry.entry.local_id))?;
        self.listed.remember(
            records
                .iter()
                .map(|record| (record.tx_id.as_str(), record.local_id)),
        );
        Ok(records)
    }

    /// The summaries of a list, from the index entries alone: no record is read.
    pub(super) fn list_summaries(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let entries = self.walk_list(mailbox, query, |entry| Ok(Some(entry)))?;
        self.listed.remember(
            entries
                .iter()
                .map(|e| (e.entry.summary.tx_id.as_str(), e.entry.local_id)),
        );
        Ok(entries.into_iter().map(|e| e.entry.summary).collect())
    }

    /// Walks the mailbox's index (or one product's) in the query's order and offers what
    /// `load` makes of each matching entry (`None`: gone, skip it).
    fn walk_list<L: Listed>(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
        mut load: impl FnMut(Entry) -> Result<Option<L>, StoreError>,
    ) -> Result<Vec<L>, StoreError> {
        let mut hits = ListHits::new(query);
        if hits.done() {
            return Ok(hits.finish());
        }
        // One product (`GET /shs/ds/{address}/{product}`, the usual filtered list) walks
        // that product's index; anything else the whole mailbox's.
        let prefix = match query.products.as_slice() {
            [product] => keys::product_prefix(mailbox, product),
            _ => keys::mailbox_prefix(mailbox),
        };
        // Filters are evaluated on the covering index entries; only matches are loaded.
        let direction = if hits.walks_descending() {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        let mut after: Option<Vec<u8>> = None;
        // The first page is as long as the hits still wanted (every entry read costs its
        // decoding, and a value in the log a read of its own); later pages, after entries
        // that did not match, double up to [`PAGE`].
        let mut page_size = hits.wanted().unwrap_or(PAGE).clamp(1, PAGE);
        loop {
            let page = self
                .engine
                .scan(&prefix, after.as_deref(), direction, page_size)?;
            let full = page.len() == page_size;
            page_size = (page_size * 2).min(PAGE);
            after = page.last().map(|(key, _)| key.clone());
            for (key, value) in page {
                let entry: IndexEntry = decode(&value)?;
                if !query.matches_summary(entry.state(), entry.arrival, &entry.summary) {
                    continue;
                }
                let seq = keys::arrival_seq_of(&key)
                    .ok_or_else(|| StoreError::Corrupt("malformed mailbox index key".into()))?;
                let Some(item) = load(Entry { seq, entry })? else {
                    continue;
                };
                hits.offer(item);
                if hits.done() {
                    return Ok(hits.finish());
                }
            }
            if !full {
                break;
            }
        }
        Ok(hits.finish())
    }

    pub(super) fn pending_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        let after = after.map(|id| keys::job(id.0));
        let entries = self.engine.scan(
            keys::JOB_PREFIX,
            after.as_deref(),
            Direction::Forward,
            limit,
        )?;
        let mut jobs = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let id = keys::job_id_of(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed job key".into()))?;
            let entry: JobEntry = decode(&value)?;
            jobs.push(RoutingJob {
                id: JobId(id),
                message: self.existing(entry.local_id)?,
                retry: Retry {
                    attempts: entry.attempts,
                    not_before: entry
                        .not_before_micros
                        .and_then(chrono::DateTime::from_timestamp_micros),
                    last_error: entry.last_error,
                },
            });
        }
        Ok(jobs)
    }
}
