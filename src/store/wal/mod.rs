//! shsd's own write-ahead log in front of an index engine (sled): the durable path of
//! every write is one append to a log file and one shared `fdatasync` (spec §8).
//!
//! # Why
//! sled 0.34 rolls its I/O buffer twice for every multi-key batch (`pin_log`), waking its
//! I/O threads and writing the buffer out each time, and rewrites whole tree leaves; with
//! a disk sync per group commit on top, intake was CPU-bound on sled's write path (see
//! `BENCHMARKS.md`). Here a batch costs an append to an in-memory buffer and an insert
//! into an ordered map; the group committer writes the buffer out and fdatasyncs one file.
//!
//! # How
//! - [`WalEngine::apply`] appends the batch to the log (as a record of absolute writes)
//!   and puts it into the [`Overlay`] (what readers see on top of the index), both under
//!   one lock, so the log's order is the order in which batches became visible.
//! - [`WalEngine::sync`] (the group committer) hands the buffered records to the kernel
//!   and fdatasyncs the current segment: every batch applied before it is durable.
//! - A checkpoint thread moves the overlay into the index every
//!   [`WalConfig::checkpoint_interval`] or [`WalConfig::checkpoint_bytes`]: write by
//!   write, then, last, the last LSN it covers (`w/applied`) and the id reservation
//!   together; then it syncs the index (`flush` + fdatasync, see `sled.rs`) and only then
//!   removes the log segments the index now holds.
//! - At open the log is replayed into the overlay from the LSN after `w/applied`. Replaying
//!   over an index that has part of a checkpoint is harmless: every write is absolute and
//!   records are replayed in order, so each key ends with its last logged value.
//! - Ids ([`KvEngine::next_id`]) are reserved in blocks by a log record written before any
//!   batch that uses them, so no id is handed out twice after a crash.
//!
//! After `kill -9` or a power cut, what was synced is replayed; a batch is in the log whole
//! or not at all (checksummed records, a torn tail cut off), and batches that were applied
//! but never synced vanish with the process's memory: nothing half-written is visible.
//!
//! Files: `<store>/wal/<first lsn>.wal` beside sled's own.

mod entry;
mod log;
mod overlay;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::entry::Entry as LogEntry;
use self::log::Appender;
use self::overlay::{Layer, Lookup, Overlay};
use super::kv::{Batch, Direction, EngineError, Entry, KvEngine};
use super::sled::{SledConfig, SledEngine};

/// The index key that holds the last LSN the index has (u64, little-endian).
const APPLIED_KEY: &[u8] = b"w/applied";
/// The index key that holds the id reservation at that LSN.
const IDS_KEY: &[u8] = b"w/ids";
/// Ids reserved per log record.
const ID_BLOCK: u64 = 4096;
/// How long a writer waits for a checkpoint to make room before it fails.
const ROOM_TIMEOUT: Duration = Duration::from_secs(30);

/// Sizes and intervals of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A new segment is started once the current one holds this many bytes.
    pub segment_bytes: u64,
    /// A checkpoint starts once this many bytes were written since the last one...
    pub checkpoint_bytes: usize,
    /// ...or this long after the last one, if anything was written.
    pub checkpoint_interval: Duration,
    /// Writers wait (back-pressure) while this many bytes await a checkpoint.
    pub max_pending_bytes: usize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_bytes: 16 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(2),
            max_pending_bytes: 64 * 1024 * 1024,
        }
    }
}

/// An index engine behind shsd's write-ahead log.
pub struct WalEngine<E: KvEngine> {
    shared: Arc<Shared<E>>,
    checkpointer: Option<JoinHandle<()>>,
}

/// The default store: sled as the index, the log in `<path>/wal`.
pub type SledStoreEngine = WalEngine<SledEngine>;

/// Opens the default store in `config.path`: sled, then the log, replayed.
pub fn open_sled(config: &SledConfig) -> Result<SledStoreEngine, EngineError> {
    let index = SledEngine::open(config)?;
    WalEngine::open(&config.path.join("wal"), index, WalConfig::default())
}

struct Shared<E> {
    index: E,
    dir: PathBuf,
    config: WalConfig,
    log: Mutex<LogState>,
    overlay: RwLock<Overlay>,
    /// One checkpoint at a time; holds the one that failed half-way, to be retried.
    checkpointing: Mutex<Option<Frozen>>,
    signal: Mutex<Signal>,
    /// Wakes the checkpoint thread.
    wake: Condvar,
    /// Wakes writers waiting for room.
    room: Condvar,
}

struct LogState {
    appender: Appender,
    /// The last id handed out.
    last_id: u64,
    /// Ids up to this one are reserved in the log.
    id_ceiling: u64,
}

/// A checkpoint's content: the frozen layer, the last LSN in it, the id reservation then.
struct Frozen {
    layer: Arc<Layer>,
    upto: u64,
    id_ceiling: u64,
}

#[derive(Default)]
struct Signal {
    requested: bool,
    shutdown: bool,
    /// The last checkpoint's failure, until one succeeds.
    failure: Option<String>,
}

impl<E: KvEngine> WalEngine<E> {
    /// Opens the log in `dir` in front of `index`: replays what the index lacks, moves it
    /// into the index (a checkpoint), and starts the checkpoint thread.
    pub fn open(dir: &Path, index: E, config: WalConfig) -> Result<Self, EngineError> {
        let applied = read_u64(&index, APPLIED_KEY)?.unwrap_or(0);
        let stored_ceiling = read_u64(&index, IDS_KEY)?;
        let segments = log::list_segments(dir)?;
        let mut overlay = Overlay::default();
        let mut replayed_ceiling = None;
        let mut replayed = 0u64;
        let last = log::read_after(dir, &segments, applied, |_, body| {
            match entry::decode(body)? {
                LogEntry::Batch(batch) => overlay.apply(batch),
                LogEntry::Ids(ceiling) => {
                    replayed_ceiling = Some(replayed_ceiling.unwrap_or(0).max(ceiling));
                }
            }
            replayed += 1;
            Ok(())
        })
        .map_err(|err| match err {
            log::ReadError::Io(io) => EngineError::Io(io),
            corrupt => EngineError::Corrupt(corrupt.to_string()),
        })?;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                from = applied + 1,
                "replayed the write-ahead log"
            );
        }
        let id_ceiling = match (stored_ceiling, replayed_ceiling) {
            (Some(stored), Some(replayed)) => stored.max(replayed),
            (Some(ceiling), None) | (None, Some(ceiling)) => ceiling,
            // A store from before the log: the index's own generator is past every id.
            (None, None) => index.next_id()?,
        };
        let appender = Appender::start(dir, config.segment_bytes, segments, last)?;
        let shared = Arc::new(Shared {
            index,
            dir: dir.to_path_buf(),
            config,
            log: Mutex::new(LogState {
                appender,
                last_id: id_ceiling,
                id_ceiling,
            }),
            overlay: RwLock::new(overlay),
            checkpointing: Mutex::new(None),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
        });
        shared.checkpoint()?;
        let checkpointer = std::thread::Builder::new()
            .name("shsd-store-checkpoint".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.run_checkpoints()
            })?;
        Ok(WalEngine {
            shared,
            checkpointer: Some(checkpointer),
        })
    }

    /// The index engine, for engine-specific checks.
    pub fn index(&self) -> &E {
        &self.shared.index
    }

    /// Moves everything written so far into the index and syncs it (the checkpoint thread
    /// does this by itself; tests and tools call it to know when).
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        self.shared.checkpoint()
    }

    /// Number of log segment files.
    pub fn segment_count(&self) -> usize {
        lock(&self.shared.log).appender.segment_count()
    }

    /// Stops like a crashed process: no final checkpoint (tests of recovery).
    #[cfg(test)]
    fn abandon(mut self) {
        if let Some(thread) = self.checkpointer.take() {
            lock(&self.shared.signal).shutdown = true;
            self.shared.wake.notify_all();
            let _ = thread.join();
        }
    }
}

impl<E: KvEngine> Drop for WalEngine<E> {
    /// Stops the checkpoint thread, which makes a last checkpoint so the next open has
    /// little to replay.
    fn drop(&mut self) {
        if let Some(thread) = self.checkpointer.take() {
            lock(&self.shared.signal).shutdown = true;
            self.shared.wake.notify_all();
            let _ = thread.join();
            if let Err(err) = self.shared.checkpoint() {
                tracing::warn!(%err, "no final checkpoint: the log is replayed at the next start");
            }
        }
    }
}

impl<E: KvEngine> KvEngine for WalEngine<E> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        match read(&self.shared.overlay).get(key) {
            Lookup::Written(value) => Ok(value),
            Lookup::Unknown => self.shared.index.get(key),
        }
    }

    /// Pages through the overlay and the index together, the overlay winning on equal keys
    /// and its tombstones hiding the index's entries.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError> {
        let mut out = Vec::new();
        let mut cursor = after.map(<[u8]>::to_vec);
        while out.len() < limit {
            let want = limit - out.len();
            let written =
                read(&self.shared.overlay).page(prefix, cursor.as_deref(), direction, want);
            let indexed = self
                .shared
                .index
                .scan(prefix, cursor.as_deref(), direction, want)?;
            // Beyond the last key of a full page, the other page may be missing entries:
            // merge only up to the nearer of those keys, then page on from there.
            let last = |page_len: usize, key: Option<&Vec<u8>>| {
                (page_len == want).then(|| key.cloned()).flatten()
            };
            let bound = match (
                last(written.len(), written.last().map(|(k, _)| k)),
                last(indexed.len(), indexed.last().map(|(k, _)| k)),
            ) {
                (Some(a), Some(b)) => Some(nearer(a, b, direction)),
                (a, b) => a.or(b),
            };
            let within = |key: &[u8]| match &bound {
                None => true,
                Some(bound) => match direction {
                    Direction::Forward => key <= bound.as_slice(),
                    Direction::Reverse => key >= bound.as_slice(),
                },
            };
            merge_pages(written, indexed, direction, &within, limit, &mut out);
            match bound {
                Some(bound) => cursor = Some(bound),
                None => break,
            }
        }
        Ok(out)
    }

    fn apply(&self, batch: Batch) -> Result<(), EngineError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.wait_for_room()?;
        let pending = {
            let mut log = lock(&self.shared.log);
            log.appender
                .append(|out| entry::encode_batch(&batch, out))?;
            let mut overlay = write(&self.shared.overlay);
            overlay.apply(batch);
            overlay.active_bytes()
        };
        if pending >= self.shared.config.checkpoint_bytes {
            self.shared.request_checkpoint();
        }
        Ok(())
    }

    /// Writes the buffered records out and fdatasyncs the segment they are in.
    fn sync(&self) -> Result<(), EngineError> {
        let file = lock(&self.shared.log).appender.write_out()?;
        file.sync_data()?;
        Ok(())
    }

    fn next_id(&self) -> Result<u64, EngineError> {
        let mut log = lock(&self.shared.log);
        let id = log.last_id + 1;
        if id > log.id_ceiling {
            let ceiling = id + ID_BLOCK;
            log.appender.append(|out| entry::encode_ids(ceiling, out))?;
            log.id_ceiling = ceiling;
        }
        log.last_id = id;
        Ok(id)
    }

    fn size_on_disk(&self) -> Result<Option<u64>, EngineError> {
        let mut size = self.shared.index.size_on_disk()?.unwrap_or(0);
        for entry in std::fs::read_dir(&self.shared.dir)? {
            size += entry?.metadata()?.len();
        }
        Ok(Some(size))
    }
}

impl<E: KvEngine> Shared<E> {
    fn run_checkpoints(&self) {
        loop {
            {
                let mut signal = lock(&self.signal);
                let deadline = Instant::now() + self.config.checkpoint_interval;
                while !signal.requested && !signal.shutdown {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    signal = self
                        .wake
                        .wait_timeout(signal, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
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

    fn request_checkpoint(&self) {
        lock(&self.signal).requested = true;
        self.wake.notify_one();
    }

    /// Back-pressure: waits while the overlay is over its limit, i.e. while the index
    /// does not keep up. Fails if checkpoints fail or take too long.
    fn wait_for_room(&self) -> Result<(), EngineError> {
        let over = || read(&self.overlay).active_bytes() >= self.config.max_pending_bytes;
        if !over() {
            return Ok(());
        }
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
    fn checkpoint(&self) -> Result<(), EngineError> {
        let mut pending = lock(&self.checkpointing);
        if pending.is_none() {
            let log = lock(&self.log);
            let mut overlay = write(&self.overlay);
            let Some(layer) = overlay.freeze() else {
                return Ok(());
            };
            *pending = Some(Frozen {
                layer,
                upto: log.appender.last_lsn(),
                id_ceiling: log.id_ceiling,
            });
        }
        let Some(frozen) = pending.as_ref() else {
            return Ok(());
        };
        self.room.notify_all();
        // One write at a time: a one-write batch is a plain insert or removal in sled,
        // which shares its lock with readers and does not roll its I/O buffer; a large
        // batch would hold readers off for its whole length. The mark goes last, in a
        // batch of its own, so an index that has the mark has every write before it.
        for (key, value) in frozen.layer.iter() {
            let mut write = Batch::default();
            match value {
                Some(value) => write.put(key.clone(), value.clone()),
                None => write.delete(key.clone()),
            }
            self.index.apply(write)?;
        }
        let mut batch = Batch::default();
        batch.put(APPLIED_KEY.to_vec(), frozen.upto.to_le_bytes().to_vec());
        batch.put(IDS_KEY.to_vec(), frozen.id_ceiling.to_le_bytes().to_vec());
        self.index.apply(batch)?;
        let upto = frozen.upto;
        *pending = None;
        write(&self.overlay).drop_frozen();
        self.room.notify_all();
        self.index.sync()?;
        let removed = lock(&self.log).appender.remove_up_to(upto)?;
        tracing::debug!(upto, removed, "checkpoint of the write-ahead log");
        Ok(())
    }
}

/// Of two keys, the one met first when scanning in `direction`.
fn nearer(a: Vec<u8>, b: Vec<u8>, direction: Direction) -> Vec<u8> {
    match direction {
        Direction::Forward => a.min(b),
        Direction::Reverse => a.max(b),
    }
}

/// Merges a page of the overlay (winning on equal keys; tombstones dropped) with a page of
/// the index, both in `direction`, keeping keys `within` the bound, into `out` up to
/// `limit` entries.
fn merge_pages(
    written: Vec<overlay::Write>,
    indexed: Vec<Entry>,
    direction: Direction,
    within: &dyn Fn(&[u8]) -> bool,
    limit: usize,
    out: &mut Vec<Entry>,
) {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut written = written.into_iter().peekable();
    let mut indexed = indexed.into_iter().peekable();
    while out.len() < limit {
        let order = match (written.peek(), indexed.peek()) {
            (None, None) => break,
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (Some((a, _)), Some((b, _))) => match direction {
                Direction::Forward => a.cmp(b),
                Direction::Reverse => b.cmp(a),
            },
        };
        let (key, value) = match order {
            Less => match written.next() {
                Some(write) => write,
                None => break,
            },
            Greater => match indexed.next() {
                Some((key, value)) => (key, Some(value)),
                None => break,
            },
            Equal => {
                indexed.next();
                match written.next() {
                    Some(write) => write,
                    None => break,
                }
            }
        };
        if !within(&key) {
            break;
        }
        if let Some(value) = value {
            out.push((key, value));
        }
    }
}

fn read_u64(index: &impl KvEngine, key: &[u8]) -> Result<Option<u64>, EngineError> {
    match index.get(key)? {
        None => Ok(None),
        Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
            Ok(bytes) => Ok(Some(u64::from_le_bytes(bytes))),
            Err(_) => Err(EngineError::Corrupt(format!(
                "index key {} holds {} bytes, not 8",
                String::from_utf8_lossy(key),
                bytes.len()
            ))),
        },
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
