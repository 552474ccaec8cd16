//! Which log segments may go, and the one-time rewrite of a store from before the log.
//!
//! A segment may go once the index has all its records (it is older than the last
//! checkpoint) and no stored value points into it. Pointers are only ever made into the
//! segment being written, so the set of pointers into older segments only shrinks: a scan
//! of the overlay and then of the index that finds no pointer into a segment proves that
//! none will appear. The overlay is scanned first because a checkpoint moves values from
//! it into the index, never the other way: a pointer that was in the overlay when it was
//! scanned has been seen; one in the index only stays there or is replaced by a newer
//! value. So the scan needs no lock against checkpoints or writers. (The overlay's pointers
//! are all into records after the mark, so its scan only guards against a mistake here.)

use std::collections::HashSet;
use std::time::Instant;

use super::value::{self, segment_of};
use super::{FORMAT_KEY, OWN_PREFIX, Shared, lock, read};
use crate::store::kv::{Batch, Direction, EngineError, KvEngine};

/// Entries per page of the scans.
const PAGE: usize = 4096;
/// Where an interrupted rewrite resumes: the last key rewritten.
const REWRITTEN_KEY: &[u8] = b"w/rewritten-up-to";

impl<E: KvEngine> Shared<E> {
    /// The garbage-collection thread: [`Shared::collect_garbage`] every
    /// [`super::WalConfig::gc_interval`], or every twenty times as long as the last one
    /// took, whichever is longer, until shutdown.
    pub(super) fn run_collections(&self) {
        loop {
            let (last, took) = *lock(&self.last_gc);
            let due = last + self.config.gc_interval.max(took * 20);
            if self.wait_until(&self.gc_wake, due, |_| false).shutdown {
                return;
            }
            if let Err(err) = self.collect_garbage() {
                tracing::warn!(%err, "looking for unused write-ahead log segments failed");
            }
        }
    }

    /// Removes the segments that no stored value needs; returns how many. Runs beside
    /// checkpoints and writers (see the module documentation for why that is safe).
    pub(super) fn collect_garbage(&self) -> Result<usize, EngineError> {
        let started = Instant::now();
        let removed = self.remove_unused_segments();
        *lock(&self.last_gc) = (started, started.elapsed());
        removed
    }

    fn remove_unused_segments(&self) -> Result<usize, EngineError> {
        let applied = self.sync_index()?;
        let mut unused: HashSet<u64> = lock(&self.log)
            .appender
            .replayed_segments(applied)
            .into_iter()
            .collect();
        if unused.is_empty() {
            return Ok(0);
        }
        for stored in read(&self.overlay).values() {
            if let Some(segment) = segment_of(stored) {
                unused.remove(&segment);
            }
        }
        let mut cursor: Option<Vec<u8>> = None;
        while !unused.is_empty() {
            let page = self
                .index
                .scan(b"", cursor.as_deref(), Direction::Forward, PAGE)?;
            for (key, stored) in &page {
                if let Some(segment) = segment_of(stored).filter(|_| !key.starts_with(OWN_PREFIX)) {
                    unused.remove(&segment);
                }
            }
            if page.len() < PAGE {
                break;
            }
            cursor = page.last().map(|(key, _)| key.clone());
        }
        let unused: Vec<u64> = unused.into_iter().collect();
        let removed = lock(&self.log).appender.remove_segments(&unused)?;
        let mut files = lock(&self.files);
        for segment in &unused {
            files.remove(segment);
        }
        if removed > 0 {
            tracing::debug!(removed, "removed write-ahead log segments no value needs");
        }
        Ok(removed)
    }
}

/// A store written before the log holds its values as they are; the index now holds them
/// in their stored form ([`value`]). Rewrites every value once, a page per batch together
/// with how far it got, so that an interrupted rewrite resumes instead of rewriting a
/// value twice.
pub(super) fn store_values_in_stored_form(index: &impl KvEngine) -> Result<(), EngineError> {
    if index.get(FORMAT_KEY)?.is_some() {
        return Ok(());
    }
    let mut cursor = index.get(REWRITTEN_KEY)?;
    let mut rewritten = 0u64;
    loop {
        let page = index.scan(b"", cursor.as_deref(), Direction::Forward, PAGE)?;
        let Some((last, _)) = page.last() else {
            break;
        };
        let last = last.clone();
        let mut batch = Batch::default();
        for (key, plain) in page {
            if !key.starts_with(OWN_PREFIX) {
                batch.put(key, value::in_place(&plain));
                rewritten += 1;
            }
        }
        batch.put(REWRITTEN_KEY.to_vec(), last.clone());
        index.apply(batch)?;
        cursor = Some(last);
    }
    let mut batch = Batch::default();
    batch.put(FORMAT_KEY.to_vec(), b"1".to_vec());
    batch.delete(REWRITTEN_KEY.to_vec());
    index.apply(batch)?;
    index.sync()?;
    if rewritten > 0 {
        tracing::info!(
            values = rewritten,
            "rewrote the values of a store from an earlier shsd for the write-ahead log"
        );
    }
    Ok(())
}
