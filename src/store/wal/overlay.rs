//! The writes not yet in the index: what the log holds since the last checkpoint, kept in
//! memory so that reads see them. Removals are kept as tombstones, which hide what the
//! index still has under the same key.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::store::kv::{Direction, scan_bounds};

/// Key → value, or `None` for a removal.
pub(super) type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A key and its value or tombstone.
pub(super) type Write = (Vec<u8>, Option<Vec<u8>>);

/// Rough bookkeeping cost of one entry beyond its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// The two layers over the index: `active` takes new writes; `frozen` is being moved
/// into the index by a checkpoint and is read until the index has it.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    active: Layer,
    /// Bytes written into `active` (replaced values are not subtracted: an upper bound).
    active_bytes: usize,
    frozen: Option<Arc<Layer>>,
    /// `active_bytes` of the layer when it was frozen: it stays in memory until the
    /// checkpoint ends, so it counts against the back-pressure limit too.
    frozen_bytes: usize,
}

/// What the overlay knows of a key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Written since the last checkpoint: the value, or `None` if removed.
    Written(Option<Vec<u8>>),
    /// Not written since: ask the index.
    Unknown,
}

impl Overlay {
    /// Takes writes (a key and its stored value, or `None` to remove it), in order.
    pub(super) fn apply(&mut self, writes: impl IntoIterator<Item = Write>) {
        for (key, value) in writes {
            self.active_bytes +=
                key.len() + value.as_ref().map_or(0, |value| value.len()) + ENTRY_OVERHEAD;
            self.active.insert(key, value);
        }
    }

    pub(super) fn get(&self, key: &[u8]) -> Lookup {
        let found = self
            .active
            .get(key)
            .or_else(|| self.frozen.as_ref().and_then(|frozen| frozen.get(key)));
        match found {
            Some(value) => Lookup::Written(value.clone()),
            None => Lookup::Unknown,
        }
    }

    /// Up to `limit` writes (tombstones included) under `prefix`, strictly after `after`,
    /// in `direction`; where both layers have a key, the active layer's write.
    pub(super) fn page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        direction: Direction,
        limit: usize,
    ) -> Vec<Write> {
        let bounds = scan_bounds(prefix, after, direction);
        if is_empty_range(&bounds) {
            return Vec::new();
        }
        let active = self.active.range(bounds.clone());
        let empty = Layer::new();
        let frozen = self.frozen.as_deref().unwrap_or(&empty).range(bounds);
        match direction {
            Direction::Forward => merge(active, frozen, limit, |a, b| a.cmp(b)),
            Direction::Reverse => merge(active.rev(), frozen.rev(), limit, |a, b| b.cmp(a)),
        }
    }

    /// Starts a checkpoint: the active layer becomes the frozen one (returned) and a new
    /// active layer begins. `None` when nothing was written since the last one.
    pub(super) fn freeze(&mut self) -> Option<Arc<Layer>> {
        if self.active.is_empty() {
            return None;
        }
        let frozen = Arc::new(std::mem::take(&mut self.active));
        self.frozen_bytes = std::mem::take(&mut self.active_bytes);
        self.frozen = Some(Arc::clone(&frozen));
        Some(frozen)
    }

    /// Ends a checkpoint: the index has the frozen layer now. Returns the layer, for the
    /// caller to drop once it has released the overlay's lock: freeing a layer of a
    /// hundred thousand entries takes milliseconds, and every reader and writer waits for
    /// that lock.
    #[must_use = "drop the layer after releasing the overlay's lock"]
    pub(super) fn release_frozen(&mut self) -> Option<Arc<Layer>> {
        self.frozen_bytes = 0;
        self.frozen.take()
    }

    /// Bytes written since the last checkpoint started: what the next one will move.
    pub(super) fn active_bytes(&self) -> usize {
        self.active_bytes
    }

    /// Bytes held in both layers: what the overlay costs in memory, bounded by the
    /// back-pressure limit.
    pub(super) fn held_bytes(&self) -> usize {
        self.active_bytes + self.frozen_bytes
    }

    /// Every stored value in both layers (for the search of unused log segments).
    pub(super) fn values(&self) -> impl Iterator<Item = &[u8]> {
        let frozen = self.frozen.iter().flat_map(|layer| layer.values());
        self.active
            .values()
            .chain(frozen)
            .flatten()
            .map(Vec::as_slice)
    }
}

/// True when no key lies between the bounds (a cursor outside the prefix), which
/// `BTreeMap::range` would panic on.
fn is_empty_range((start, end): &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> bool {
    match (start, end) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// Merges two ordered runs of writes (`order` compares keys in the run's direction), the
/// first run winning on equal keys, up to `limit` entries.
fn merge<'a>(
    first: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    second: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>,
    limit: usize,
    order: impl Fn(&[u8], &[u8]) -> std::cmp::Ordering,
) -> Vec<Write> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut first = first.peekable();
    let mut second = second.peekable();
    let mut out = Vec::new();
    while out.len() < limit {
        let next = match (first.peek(), second.peek()) {
            (None, None) => break,
            (Some(_), None) => first.next(),
            (None, Some(_)) => second.next(),
            (Some((a, _)), Some((b, _))) => match order(a, b) {
                Less => first.next(),
                Greater => second.next(),
                Equal => {
                    second.next();
                    first.next()
                }
            },
        };
        if let Some((key, value)) = next {
            out.push((key.clone(), value.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(writes: &[(&str, Option<&str>)]) -> Vec<Write> {
        writes
            .iter()
            .map(|(key, value)| {
                let value = value.map(|value| value.as_bytes().to_vec());
                (key.as_bytes().to_vec(), value)
            })
            .collect()
    }

    fn keys(page: &[Write]) -> Vec<String> {
        page.iter()
            .map(|(k, v)| {
                let key = String::from_utf8_lossy(k);
                match v {
                    Some(v) => format!("{key}={}", String::from_utf8_lossy(v)),
                    None => format!("{key}-"),
                }
            })
            .collect()
    }

    #[test]
    fn the_active_layer_wins_over_the_frozen_one() {
        let mut overlay = Overlay::default();
        overlay.apply(batch(&[
            ("p/a", Some("1")),
            ("p/b", Some("1")),
            ("p/c", None),
        ]));
        assert!(overlay.freeze().is_some());
        overlay.apply(batch(&[
            ("p/b", None),
            ("p/c", Some("2")),
            ("p/d", Some("2")),
        ]));
        assert_eq!(overlay.get(b"p/a"), Lookup::Written(Some(b"1".to_vec())));
        assert_eq!(overlay.get(b"p/b"), Lookup::Written(None));
        assert_eq!(overlay.get(b"p/c"), Lookup::Written(Some(b"2".to_vec())));
        assert_eq!(overlay.get(b"p/e"), Lookup::Unknown);
        let forward = overlay.page(b"p/", None, Direction::Forward, 10);
        assert_eq!(keys(&forward), ["p/a=1", "p/b-", "p/c=2", "p/d=2"]);
        let reverse = overlay.page(b"p/", Some(b"p/d"), Direction::Reverse, 2);
        assert_eq!(keys(&reverse), ["p/c=2", "p/b-"]);
        let outside = overlay.page(b"p/", Some(b"q/"), Direction::Forward, 10);
        assert!(outside.is_empty(), "a cursor past the prefix finds nothing");
        assert!(overlay.release_frozen().is_some());
        assert_eq!(overlay.get(b"p/a"), Lookup::Unknown);
        assert!(overlay.freeze().is_some());
        assert!(overlay.freeze().is_none(), "nothing new to freeze");
    }

    #[test]
    fn the_layer_a_checkpoint_moves_counts_until_it_ends() {
        let mut overlay = Overlay::default();
        overlay.apply(batch(&[("p/a", Some("1")), ("p/b", Some("1"))]));
        let first = overlay.held_bytes();
        assert!(first > 0);
        assert!(overlay.freeze().is_some());
        assert_eq!(
            overlay.active_bytes(),
            0,
            "the next checkpoint has nothing yet"
        );
        assert_eq!(
            overlay.held_bytes(),
            first,
            "the frozen layer is still in memory"
        );
        overlay.apply(batch(&[("p/c", None)]));
        assert!(overlay.held_bytes() > first);
        let released = overlay.release_frozen();
        assert_eq!(released.map(|layer| layer.len()), Some(2));
        assert_eq!(overlay.held_bytes(), overlay.active_bytes());
        assert!(overlay.held_bytes() < first);
    }
}
