//! Checkpoints: moving the overlay into the index, on a thread of their own, and the
//! back-pressure that keeps the overlay bounded when the index falls behind.

use std::io;
use std::time::{Duration, Instant};

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use super::{APPLIED_KEY, Frozen, IDS_KEY, ROOM_TIMEOUT, Shared, lock, read, write};
use crate::store::kv::{Batch, EngineError, KvEngine};

/// A checkpoint pauses after every this many index writes, for as long as they took: it
/// runs at most half the time, so requests are not starved on a small machine, unless it
/// is falling behind the writers.
const THROTTLE_EVERY: usize = 128;

impl<E: KvEngine> Shared<E> {
    pub(super) fn run_checkpoints(&self) {
        loop {
            {
                let deadline = Instant::now() + self.config.checkpoint_interval;
                let mut signal = self.wait_until(&self.wake, deadline, |signal| signal.requested);
                if signal.shutdown {
                    return;
                }
                signal.requested = false;
            }
            let outcome = self.checkpoint();
            let mut signal = lock(&self.signal);
            match outcome {
                Ok(()) => signal.failure = None,
                Err(err) => {
                    if signal.failure.is_none() {
                        tracing::error!(%err, "checkpoint of the write-ahead log failed; retrying");
                    }
                    signal.failure = Some(err.to_string());
                }
            }
            drop(signal);
            self.room.notify_all();
        }
    }

    pub(super) fn request_checkpoint(&self) {
        lock(&self.signal).requested = true;
        self.wake.notify_one();
    }

    /// Back-pressure: waits while the overlay (both layers: the one a checkpoint is moving
    /// stays in memory until it ends) is over its limit, i.e. while the index does not
    /// keep up. Fails if checkpoints fail or take too long.
    pub(super) fn wait_for_room(&self) -> Result<(), EngineError> {
        let over = || read(&self.overlay).held_bytes() >= self.config.max_pending_bytes;
        if !over() {
            return Ok(());
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let since = Instant::now();
        let mut signal = lock(&self.signal);
        while over() {
            if let Some(failure) = &signal.failure {
                return Err(EngineError::Io(io::Error::other(format!(
                    "the store's index does not take writes: {failure}"
                ))));
            }
            if since.elapsed() >= ROOM_TIMEOUT {
                return Err(EngineError::Io(io::Error::other(
                    "the store's index did not take writes in time",
                )));
            }
            signal.requested = true;
            self.wake.notify_one();
            signal = self
                .room
                .wait_timeout(signal, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }

    /// Moves the overlay into the index, syncs the index, then removes the log segments
    /// it no longer needs. A checkpoint that fails half-way is retried with the same
    /// content, which stays readable in the overlay meanwhile.
    pub(super) fn checkpoint(&self) -> Result<(), EngineError> {
        let mut pending = lock(&self.checkpointing);
        if pending.is_none() {
            let mut log = lock(&self.log);
            let mut overlay = write(&self.overlay);
            let Some(layer) = overlay.freeze() else {
                return Ok(());
            };
            // The layer may hold batches the group committer has not synced yet, and the
            // index will point into their records: the log must have them first.
            let file = log.appender.write_out()?;
            *pending = Some(Frozen {
                layer,
                upto: log.appender.last_lsn(),
                id_ceiling: log.id_ceiling,
                log_file: Some(file),
            });
        }
        let Some(frozen) = pending.as_mut() else {
            return Ok(());
        };
        if let Some(file) = &frozen.log_file {
            file.sync_data()?;
            frozen.log_file = None;
        }
        self.room.notify_all();
        // One write at a time: a single write is a plain insert or removal in sled,
        // which shares its lock with readers and does not roll its I/O buffer; a large
        // batch would hold readers off for its whole length. The mark goes last, in a
        // batch of its own, so an index that has the mark has every write before it.
        let mut slice = Instant::now();
        for (done, (key, value)) in frozen.layer.iter().enumerate() {
            if done % THROTTLE_EVERY == THROTTLE_EVERY - 1 {
                // A checkpoint that runs flat out shows up as a latency spike; one that
                // pauses while writers pile up makes them wait at the limit (seconds
                // without intake, measured at 10 000/s), so it pauses only while they
                // have room.
                if !self.falling_behind() {
                    std::thread::sleep(slice.elapsed());
                }
                slice = Instant::now();
            }
            self.index.apply_one(key, value.as_deref())?;
        }
        let mut batch = Batch::default();
        batch.put(APPLIED_KEY.to_vec(), frozen.upto.to_le_bytes().to_vec());
        batch.put(IDS_KEY.to_vec(), frozen.id_ceiling.to_le_bytes().to_vec());
        self.index.apply(batch)?;
        // Counted before the writers waiting for room are woken, so that one of them sees
        // the checkpoint that made its room.
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        let upto = frozen.upto;
        let moved = pending.take();
        let released = write(&self.overlay).release_frozen();
        self.room.notify_all();
        // Freed here, after the overlay's lock is released (only checkpoints take the
        // `checkpointing` lock still held).
        drop((moved, released));
        // Not synced here: until the index is synced (before segments are removed, and at
        // shutdown) a crash only means a longer replay, from the last durable mark.
        self.applied.store(upto, Ordering::Release);
        self.index.write_back()?;
        tracing::debug!(upto, "checkpoint of the write-ahead log");
        Ok(())
    }

    /// True once the overlay fills half its limit.
    fn falling_behind(&self) -> bool {
        read(&self.overlay).held_bytes() >= self.config.max_pending_bytes / 2
    }

    /// Makes the index durable up to the last checkpoint; returns the mark that is now
    /// durable (log segments wholly before it may go).
    pub(super) fn sync_index(&self) -> Result<u64, EngineError> {
        let mark = self.applied.load(Ordering::Acquire);
        self.index.sync()?;
        Ok(mark)
    }
}
