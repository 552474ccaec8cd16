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
//!   and puts it into the `Overlay` (what readers see on top of the index), both under
//!   one lock, so the log's order is the order in which batches became visible.
//! - [`WalEngine::sync`] (the group committer) hands the buffered records to the kernel
//!   and fdatasyncs the current segment: every batch applied before it is durable.
//! - A checkpoint thread moves the overlay into the index every
//!   [`WalConfig::checkpoint_interval`] or [`WalConfig::checkpoint_bytes`]: write by
//!   write (pausing now and then, so as not to starve requests on a small machine), then,
//!   last, the last LSN it covers (`w/applied`) and the id reservation together. The index
//!   is synced (`flush` + fdatasync, see `sled.rs`) only before log segments are removed
//!   and at shutdown: a crash before that means a longer replay, not a loss.
//! - Large values (payload chunks, records, list entries) are not copied into the overlay or
//!   the index: they keep a pointer to the value's bytes in the log (`value.rs`). A segment
//!   file goes once the index has all its records and no stored value points into it
//!   (found by a scan of the index, `gc.rs`).
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

mod checkpoint;
mod entry;
mod gc;
mod log;
mod overlay;
mod value;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::entry::Entry as LogEntry;
use self::log::{Appended, Appender};
use self::overlay::{Layer, Lookup, Overlay};
use self::value::{Pointer, SEPARATE_AT, Stored};
use super::kv::{Batch, Direction, EngineError, Entry, KvEngine, Op};
use super::sled::{SledConfig, SledEngine};
use crate::metrics::BacklogSnapshot;

/// The index key that holds the last LSN the index has (u64, little-endian).
const APPLIED_KEY: &[u8] = b"w/applied";
/// The index key that holds the id reservation at that LSN.
const IDS_KEY: &[u8] = b"w/ids";
/// The index key that says the index holds values in their stored form ([`value`]).
const FORMAT_KEY: &[u8] = b"w/format";
/// The index's own keys start with this; the store's never do.
const OWN_PREFIX: &[u8] = b"w/";
/// Ids reserved per log record.
const ID_BLOCK: u64 = 4096;
/// How long a writer waits for a checkpoint to make room before it fails.
const ROOM_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound of the overlay ([`WalConfig::max_pending_bytes`], `[store]
/// log_backlog_mib`): at most about 64 MiB of writes not yet in the index, as the overlay
/// counts them (its maps and allocations cost more than that in memory).
pub const DEFAULT_BACKLOG_BYTES: usize = 64 * 1024 * 1024;

/// Sizes and intervals of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// A new segment is started once the current one holds this many bytes.
    pub segment_bytes: u64,
    /// A checkpoint starts once this many bytes were written since the last one...
    pub checkpoint_bytes: usize,
    /// ...or this long after the last one, if anything was written.
    pub checkpoint_interval: Duration,
    /// Writers wait (back-pressure) while the overlay holds this many bytes: the writes
    /// awaiting a checkpoint and those the running one is moving. This bounds the log's
    /// memory (measured in `BENCHMARKS.md`).
    pub max_pending_bytes: usize,
    /// Unused segments are looked for this often, or less often if the scan of the whole
    /// index that it takes needs more than a twentieth of the time (a large store). The
    /// default is ten minutes: a segment only goes once the messages whose payloads it
    /// holds are removed, which housekeeping does every ten minutes by default, and each
    /// scan pulls the whole index through sled (a 60 s run with 600 000 messages stored
    /// peaked about 30 MiB higher when the scan ran every minute; `BENCHMARKS.md`).
    pub gc_interval: Duration,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_bytes: 16 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(2),
            max_pending_bytes: DEFAULT_BACKLOG_BYTES,
            gc_interval: Duration::from_secs(600),
        }
    }
}

/// An index engine behind shsd's write-ahead log.
pub struct WalEngine<E: KvEngine> {
    shared: Arc<Shared<E>>,
    /// The checkpoint and garbage-collection threads.
    threads: Vec<JoinHandle<()>>,
}

/// The default store: sled as the index, the log in `<path>/wal`.
pub type SledStoreEngine = WalEngine<SledEngine>;

/// Opens the default store in `config.path`: sled, then the log (`log`), replayed.
pub fn open_sled(config: &SledConfig, log: WalConfig) -> Result<SledStoreEngine, EngineError> {
    let index = SledEngine::open(config)?;
    WalEngine::open(&config.path.join("wal"), index, log)
}

/// What a background thread runs, on the shared state.
type BackgroundJob<E> = fn(&Shared<E>);

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
    /// Wakes the garbage-collection thread (at shutdown).
    gc_wake: Condvar,
    /// The last LSN the durable index has.
    applied: AtomicU64,
    /// How far the log is in its files (read without the log's lock).
    position: Arc<log::WrittenPosition>,
    /// Open segment files, for reading values through pointers.
    files: Mutex<HashMap<u64, Arc<File>>>,
    /// When unused segments were last looked for, and how long that took.
    last_gc: Mutex<(Instant, Duration)>,
    /// Checkpoints finished.
    checkpoints: AtomicU64,
    /// Writers that waited for room.
    waits: AtomicU64,
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
    /// The log segment to sync before the index gets the layer; `None` once synced.
    log_file: Option<Arc<File>>,
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
        gc::store_values_in_stored_form(&index)?;
        let applied = read_u64(&index, APPLIED_KEY)?.unwrap_or(0);
        let stored_ceiling = read_u64(&index, IDS_KEY)?;
        let segments = log::list_segments(dir)?;
        let mut overlay = Overlay::default();
        let mut replayed_ceiling = None;
        let mut replayed = 0u64;
        let last = log::read_after(dir, &segments, applied, |at, body| {
            match entry::decode(body)? {
                LogEntry::Batch(writes) => overlay.apply(writes.into_iter().map(|(key, range)| {
                    let stored = range.map(|range| {
                        let start = range.start;
                        stored_form(&body[range], at, start)
                    });
                    (key.to_vec(), stored)
                })),
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
        let position = appender.position();
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
            gc_wake: Condvar::new(),
            applied: AtomicU64::new(applied),
            position,
            files: Mutex::new(HashMap::new()),
            last_gc: Mutex::new((Instant::now(), Duration::ZERO)),
            checkpoints: AtomicU64::new(0),
            waits: AtomicU64::new(0),
        });
        shared.checkpoint()?;
        shared.sync_index()?;
        let mut engine = WalEngine {
            shared,
            threads: Vec::new(),
        };
        // Pushed one by one, so that a failed spawn still stops the threads already running
        // (when `engine` is dropped).
        let jobs: [(&str, BackgroundJob<E>); 2] = [
            ("shsd-store-checkpoint", Shared::run_checkpoints),
            ("shsd-store-gc", Shared::run_collections),
        ];
        for (name, job) in jobs {
            let shared = Arc::clone(&engine.shared);
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || job(&shared))?;
            engine.threads.push(thread);
        }
        Ok(engine)
    }

    /// Stops the threads; `true` if they were running.
    fn stop_threads(&mut self) -> bool {
        if self.threads.is_empty() {
            return false;
        }
        lock(&self.shared.signal).shutdown = true;
        self.shared.wake.notify_all();
        self.shared.gc_wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        true
    }

    /// The index engine, for engine-specific checks.
    pub fn index(&self) -> &E {
        &self.shared.index
    }

    /// Moves everything written so far into the index and syncs it (the checkpoint thread
    /// does the first by itself, and the index is synced before log segments go; tests and
    /// tools call this to know when).
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        self.shared.checkpoint()?;
        self.shared.sync_index().map(drop)
    }

    /// Number of log segment files.
    pub fn segment_count(&self) -> usize {
        lock(&self.shared.log).appender.segment_count()
    }

    /// Removes the segments no stored value needs any more (a thread of its own does this
    /// by itself, see [`WalConfig::gc_interval`]); returns how many.
    pub fn collect_garbage(&self) -> Result<usize, EngineError> {
        self.shared.collect_garbage()
    }

    /// Stops like a crashed process: no final checkpoint (tests of recovery).
    #[cfg(test)]
    fn abandon(mut self) {
        self.stop_threads();
    }
}

impl<E: KvEngine> Drop for WalEngine<E> {
    /// Stops the checkpoint thread, which makes a last checkpoint so the next open has
    /// little to replay.
    fn drop(&mut self) {
        if self.stop_threads()
            && let Err(err) = self
                .shared
                .checkpoint()
                .and_then(|()| self.shared.sync_index().map(drop))
        {
            tracing::warn!(%err, "no final checkpoint: the log is replayed at the next start");
        }
    }
}

impl<E: KvEngine> KvEngine for WalEngine<E> {
    fn backlog(&self) -> Option<BacklogSnapshot> {
        let shared = &self.shared;
        Some(BacklogSnapshot {
            bytes: read(&shared.overlay).held_bytes() as u64,
            limit_bytes: shared.config.max_pending_bytes as u64,
            checkpoints: shared.checkpoints.load(Ordering::Relaxed),
            waits: shared.waits.load(Ordering::Relaxed),
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let stored = match read(&self.shared.overlay).get(key) {
            Lookup::Written(stored) => stored,
            Lookup::Unknown => self.shared.index.get(key)?,
        };
        stored
            .map(|stored| self.shared.resolve(&stored))
            .transpose()
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
        out.into_iter()
            .map(|(key, stored)| Ok((key, self.shared.resolve(&stored)?)))
            .collect()
    }

    fn apply(&self, batch: Batch) -> Result<(), EngineError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.wait_for_room()?;
        let pending =
            {
                let mut log = lock(&self.shared.log);
                let (at, starts) = log
                    .appender
                    .append(|out| entry::encode_batch(&batch, out))?;
                let mut overlay = write(&self.shared.overlay);
                overlay.apply(batch.ops.into_iter().zip(starts).map(|(op, start)| {
                    match (op, start) {
                        (Op::Put(key, value), Some(start)) => {
                            let stored = stored_form(&value, at, start);
                            (key, Some(stored))
                        }
                        (Op::Put(key, _) | Op::Delete(key), _) => (key, None),
                    }
                }));
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
    /// Sleeps on `condvar` until `deadline`, shutdown, or `woken` says so; returns the
    /// signal, still locked, for the caller to read.
    fn wait_until(
        &self,
        condvar: &Condvar,
        deadline: Instant,
        woken: impl Fn(&Signal) -> bool,
    ) -> MutexGuard<'_, Signal> {
        let mut signal = lock(&self.signal);
        while !signal.shutdown && !woken(&signal) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            signal = condvar
                .wait_timeout(signal, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        signal
    }

    /// A stored value's bytes: in place, or read through its pointer (from the write
    /// buffer if not yet written out), checksum checked.
    fn resolve(&self, stored: &[u8]) -> Result<Vec<u8>, EngineError> {
        let pointer = match value::decode(stored).map_err(EngineError::Corrupt)? {
            Stored::InPlace(value) => return Ok(value.to_vec()),
            Stored::InLog(pointer) => pointer,
        };
        let len = pointer.len as usize;
        let buffered = if self
            .position
            .has(pointer.segment, pointer.offset, len as u64)
        {
            None
        } else {
            lock(&self.log)
                .appender
                .read_buffered(pointer.segment, pointer.offset, len)
        };
        let bytes = match buffered {
            Some(bytes) => bytes,
            None => {
                let file = self.segment_file(pointer.segment)?;
                let mut bytes = vec![0; len];
                file.read_exact_at(&mut bytes, pointer.offset)?;
                bytes
            }
        };
        if crc32fast::hash(&bytes) != pointer.crc {
            return Err(EngineError::Corrupt(format!(
                "write-ahead log segment {:016x}: the value at byte {} fails its checksum",
                pointer.segment, pointer.offset
            )));
        }
        Ok(bytes)
    }

    /// An open handle on a segment; kept open, so that a read already on its way still
    /// succeeds if the segment is removed meanwhile.
    fn segment_file(&self, segment: u64) -> Result<Arc<File>, EngineError> {
        let mut files = lock(&self.files);
        if let Some(file) = files.get(&segment) {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(log::open_segment(&self.dir, segment)?);
        files.insert(segment, Arc::clone(&file));
        Ok(file)
    }
}

/// How a value written at `start` of the body of the record `at` is stored: in place if
/// small, else as a pointer to it in the log.
fn stored_form(value: &[u8], at: Appended, start: usize) -> Vec<u8> {
    if value.len() < SEPARATE_AT {
        return value::in_place(value);
    }
    value::in_log(Pointer {
        segment: at.segment,
        offset: at.body_offset + start as u64,
        len: value.len() as u32,
        crc: crc32fast::hash(value),
    })
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
        if let Some(value) = value.filter(|_| !key.starts_with(OWN_PREFIX)) {
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
