//! The read paths of [`super::KvStore`] that walk an index: a mailbox list (spec §3.3)
//! and the routing jobs. Both page through the engine in bounded steps, so memory stays
//! flat however long the mailbox or the job queue is. Mailbox index entries carry the
//! message summary ([`IndexEntry`]), so filtering reads the index sequentially and loads
//! only the records it returns.

use super::codec::decode;
use super::keys::{self, IndexEntry, JobEntry};
use super::kv::{Direction, KvEngine};
use super::kv_store::Inner;
use super::query::{ListHits, MailboxQuery};
use super::record::{JobId, MessageRecord};
use super::{Retry, RoutingJob, StoreError};
use crate::protocol::urn::Address;

/// How many index entries a list reads per engine call; tiny in tests, so that small
/// mailboxes already cross page boundaries.
const PAGE: usize = if cfg!(test) { 7 } else { 256 };

impl<E: KvEngine> Inner<E> {
    pub(super) fn list(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
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
            for (_, value) in page {
                let entry: IndexEntry = decode(&value)?;
                if !query.matches_summary(entry.state(), entry.arrival, &entry.summary) {
                    continue;
                }
                let Some(record) = self.record(entry.local_id)? else {
                    continue;
                };
                // The record is the truth (the index can only disagree through a bug).
                hits.offer(record);
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
