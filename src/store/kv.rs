//! The ordered key-value engine that [`super::KvStore`] is written against.
//!
//! Deliberately tiny, so that adding an engine is a page of code and all message logic,
//! with its tests, lives once in `kv_store.rs`: point reads, bounded prefix scans in either
//! direction, atomic batches, an explicit durability barrier and monotonic ids.

use std::ops::Bound;

use super::error::StoreError;

/// What an engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The operating system refused: I/O error, disk full, failed sync.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine found its own files inconsistent, or hit an internal bug.
    #[error("engine failure: {0}")]
    Corrupt(String),
}

impl From<EngineError> for StoreError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Io(io) => StoreError::Unavailable(io.to_string()),
            EngineError::Corrupt(reason) => StoreError::Corrupt(reason),
        }
    }
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Ascending key order.
    Forward,
    /// Descending key order.
    Reverse,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace.
    Put(Vec<u8>, Vec<u8>),
    /// Remove if present.
    Delete(Vec<u8>),
}

/// Writes applied all together or not at all, also across a crash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// In order; a later op on the same key wins.
    pub ops: Vec<Op>,
}

impl Batch {
    /// Adds an insert.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }

    /// Adds a removal.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A key and its value, as returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value engine. Calls are blocking; `KvStore` runs them off the async
/// runtime.
pub trait KvEngine: Send + Sync + 'static {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Up to `limit` entries whose keys start with `prefix`, in `direction`, strictly after
    /// `after` (in that direction) when given: callers page through long ranges with
    /// bounded memory.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Entry>, EngineError>;

    /// Applies `batch` atomically: readers and a crash see all of it or none of it.
    fn apply(&self, batch: Batch) -> Result<(), EngineError>;

    /// Puts `key` (`Some` value) or deletes it (`None`), from borrowed bytes. The
    /// write-ahead log's checkpoint moves its layer into the index one write at a time this
    /// way: the layer stays readable meanwhile, and an engine that copies into buffers of
    /// its own (sled) need not get a copy first.
    fn apply_one(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        let mut batch = Batch::default();
        match value {
            Some(value) => batch.put(key.to_vec(), value.to_vec()),
            None => batch.delete(key.to_vec()),
        }
        self.apply(batch)
    }

    /// Makes every batch applied before this call durable (survives power loss). Called
    /// from the group-commit thread only.
    fn sync(&self) -> Result<(), EngineError>;

    /// Hands what was applied to the operating system without waiting for the disk, so
    /// that the engine's memory does not hold it (sled: `flush`, no fdatasync). Called
    /// after each checkpoint of the write-ahead log; nothing to do for most engines.
    fn write_back(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// A number larger than any returned before, also across restarts (gaps allowed).
    fn next_id(&self) -> Result<u64, EngineError>;

    /// The writes a log in front of the index holds that the index does not have yet
    /// (metrics); `None` for an engine without such a log.
    fn backlog(&self) -> Option<crate::metrics::BacklogSnapshot> {
        None
    }

    /// The engine's size on disk in bytes; `None` for an engine without files.
    fn size_on_disk(&self) -> Result<Option<u64>, EngineError> {
        Ok(None)
    }
}

/// The key bounds of a [`KvEngine::scan`], shared by the engines so that they agree.
pub fn scan_bounds(
    prefix: &[u8],
    after: Option<&[u8]>,
    direction: Direction,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let prefix_end = match prefix_successor(prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    match (direction, after) {
        (Direction::Forward, Some(after)) => (Bound::Excluded(after.to_vec()), prefix_end),
        (Direction::Forward, None) => (Bound::Included(prefix.to_vec()), prefix_end),
        (Direction::Reverse, Some(after)) => (
            Bound::Included(prefix.to_vec()),
            Bound::Excluded(after.to_vec()),
        ),
        (Direction::Reverse, None) => (Bound::Included(prefix.to_vec()), prefix_end),
    }
}

/// The smallest key greater than every key starting with `prefix`; `None` if unbounded.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"x/a"), Some(b"x/b".to_vec()));
        assert_eq!(prefix_successor(b"x\xff\xff"), Some(b"y".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }

    #[test]
    fn bounds_by_direction() {
        let (lo, hi) = scan_bounds(b"p/", Some(b"p/5"), Direction::Forward);
        assert_eq!(lo, Bound::Excluded(b"p/5".to_vec()));
        assert_eq!(hi, Bound::Excluded(b"p0".to_vec()));
        let (lo, hi) = scan_bounds(b"p/", Some(b"p/5"), Direction::Reverse);
        assert_eq!(lo, Bound::Included(b"p/".to_vec()));
        assert_eq!(hi, Bound::Excluded(b"p/5".to_vec()));
    }
}
