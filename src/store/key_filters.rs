//! Filters of the index's tx.ids and corr.ids, so that look-ups whose answer is almost
//! always "none" can be skipped: a new tx.id's duplicate check, and the corr.id look-up
//! after an ack whose message is the only one with its corr.id (`BENCHMARKS.md`, issue 7).
//!
//! They are filled from the index's `t/` and `c/` keys on a thread of their own after the
//! store opens, so the open does not wait for them (filling them during the open doubled
//! it for a million messages, 5.0 to 10.3 s); until the fill is done they answer "maybe"
//! and every look-up is made. Every batch notes its new keys from the start
//! (before it is applied), so a key written while the fill runs is in the filters whether
//! or not the fill's scan saw it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use super::StoreError;
use super::bloom::Bloom;
use super::codec::decode;
use super::keys::{self, TxEntry};
use super::kv::KvEngine;
use super::lifecycle::for_each_page;
use super::shared_corr_ids::SharedCorrIds;

/// Bits of the filter of tx.ids: 2^22, 512 KiB. A tx.id is a `t/` key of a message or of
/// a confirm, so a store of a million messages holds up to two million; at that the
/// filter still tells about half of the new ones without a look-up (three bits each, from
/// the standard formulas), at a quarter of that nearly all.
const TX_ID_BITS: u32 = 22;

/// The filters.
pub(super) struct KeyFilters {
    /// Every tx.id with a `t/` key (and some without).
    tx_ids: Bloom,
    /// Which corr.ids more than one indexed message may share.
    corr_ids: SharedCorrIds,
    /// Set once the fill has read every key the index had at open.
    filled: AtomicBool,
}

impl Default for KeyFilters {
    fn default() -> Self {
        KeyFilters {
            tx_ids: Bloom::with_bits(TX_ID_BITS),
            corr_ids: SharedCorrIds::default(),
            filled: AtomicBool::new(false),
        }
    }
}

impl KeyFilters {
    /// Notes a `t/` key about to be written.
    pub(super) fn note_tx_id(&self, tx_id: &[u8]) {
        self.tx_ids.insert(tx_id);
    }

    /// Notes a `c/` key about to be written.
    pub(super) fn note_corr_id(&self, corr_id: &[u8]) {
        self.corr_ids.note(corr_id);
    }

    /// False only if no `t/` key of `tx_id` exists.
    pub(super) fn tx_id_may_exist(&self, tx_id: &[u8]) -> bool {
        !self.is_filled() || self.tx_ids.may_contain(tx_id)
    }

    /// False only if at most one message was indexed by `corr_id` (a `c/` key, or a `t/`
    /// key standing for one) since the store opened or when it did.
    pub(super) fn corr_id_may_be_shared(&self, corr_id: &[u8]) -> bool {
        !self.is_filled() || self.corr_ids.may_be_shared(corr_id)
    }

    pub(super) fn is_filled(&self) -> bool {
        self.filled.load(Ordering::Acquire)
    }

    /// Waits (at most 10 s) until the fill is done.
    #[cfg(test)]
    pub(super) fn wait_until_filled(&self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !self.is_filled() {
            assert!(
                Instant::now() < deadline,
                "the key filters were not filled in 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Reads the index's `t/` and `c/` keys into the filters (a `t/` entry standing for a
    /// `c/` key counts as one), then marks them filled.
    /// Stops early (unfilled) once `stop` is set.
    fn fill<E: KvEngine + ?Sized>(&self, engine: &E, stop: &AtomicBool) -> Result<(), StoreError> {
        let stopped = || {
            stop.load(Ordering::Relaxed)
                .then(|| StoreError::Unavailable("the store is closing".into()))
        };
        for_each_page(engine, keys::TX_PREFIX, |page| {
            if let Some(closing) = stopped() {
                return Err(closing);
            }
            for (key, value) in page {
                let tx_id = key.strip_prefix(keys::TX_PREFIX).unwrap_or(key);
                self.tx_ids.insert(tx_id);
                if decode::<TxEntry>(value)?.corr_id_too {
                    self.corr_ids.note(tx_id);
                }
            }
            Ok(())
        })?;
        for_each_page(engine, keys::CORR_PREFIX, |page| {
            if let Some(closing) = stopped() {
                return Err(closing);
            }
            for (key, _) in page {
                let corr_id = keys::corr_id_bytes(key)
                    .ok_or_else(|| StoreError::Corrupt("malformed corr.id key".into()))?;
                self.corr_ids.note(corr_id);
            }
            Ok(())
        })?;
        self.filled.store(true, Ordering::Release);
        Ok(())
    }
}

/// The thread that fills the filters; dropping it stops and joins the thread, so that the
/// engine it holds is closed with the store.
pub(super) struct FillThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FillThread {
    /// Starts filling `filters` from `engine`. A failed fill is logged and leaves the
    /// filters answering "maybe": slower, never wrong.
    pub(super) fn start<E: KvEngine>(
        engine: Arc<E>,
        filters: Arc<KeyFilters>,
    ) -> Result<FillThread, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("shsd-store-filt".into())
            .spawn(move || {
                let started = Instant::now();
                match filters.fill(&*engine, &stopping) {
                    Ok(()) => tracing::debug!(took = ?started.elapsed(), "key filters filled"),
                    Err(_) if stopping.load(Ordering::Relaxed) => {}
                    Err(err) => tracing::warn!(error = %err,
                        "could not fill the key filters; every tx.id and corr.id is looked up"),
                }
            })
            .map_err(|err| {
                StoreError::Unavailable(format!("cannot start the key filters' thread: {err}"))
            })?;
        Ok(FillThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for FillThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::Batch;
    use crate::store::memory::MemoryEngine;

    #[test]
    fn unfilled_filters_answer_maybe_and_filled_ones_know_the_keys() {
        let engine = Arc::new(MemoryEngine::default());
        let mut batch = Batch::default();
        let entry = |corr_id_too| TxEntry {
            sender: "5565317129".parse().unwrap(),
            local_id: crate::store::LocalId::random(),
            corr_id_too,
        };
        let encoded = |entry: &TxEntry| crate::store::codec::encode(entry).unwrap();
        batch.put(keys::tx("tx-old"), encoded(&entry(false)));
        // A conversation's first message, indexed by corr.id through its `t/` key, and its
        // reply with a `c/` key.
        batch.put(keys::tx("pair"), encoded(&entry(true)));
        batch.put(keys::tx("lone-too"), encoded(&entry(true)));
        batch.put(
            keys::corr("pair", crate::store::LocalId::random()),
            Vec::new(),
        );
        batch.put(
            keys::corr("lone", crate::store::LocalId::random()),
            Vec::new(),
        );
        engine.apply(batch).unwrap();
        let filters = Arc::new(KeyFilters::default());
        assert!(filters.tx_id_may_exist(b"tx-new"), "unfilled: maybe");
        assert!(filters.corr_id_may_be_shared(b"lone"));
        let filling = FillThread::start(Arc::clone(&engine), Arc::clone(&filters)).unwrap();
        filters.wait_until_filled();
        drop(filling);
        assert!(filters.tx_id_may_exist(b"tx-old"));
        assert!(!filters.tx_id_may_exist(b"tx-new"));
        assert!(filters.corr_id_may_be_shared(b"pair"));
        assert!(!filters.corr_id_may_be_shared(b"lone"));
        assert!(!filters.corr_id_may_be_shared(b"lone-too"));
        assert!(!filters.corr_id_may_be_shared(b"tx-old"));
    }

    #[test]
    fn a_stopped_fill_leaves_the_filters_answering_maybe() {
        let engine = MemoryEngine::default();
        let mut batch = Batch::default();
        batch.put(keys::tx("tx-old"), vec![1]);
        engine.apply(batch).unwrap();
        let filters = KeyFilters::default();
        let stop = AtomicBool::new(true);
        assert!(filters.fill(&engine, &stop).is_err());
        assert!(!filters.is_filled());
        assert!(filters.tx_id_may_exist(b"anything"));
    }
}
