//! A small time-to-live cache of directory answers, so that routing a burst of messages
//! does not ask the LDAP server the same question for each one. Answers that say "not
//! found" are cached too; errors never are. Bounded: when full, expired answers go first,
//! then everything.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Answers by key, each kept for `ttl`.
pub(super) struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping answers for `ttl` (zero: nothing is kept) and at most `capacity` of
    /// them.
    pub fn new(ttl: Duration, capacity: usize) -> TtlCache<K, V> {
        TtlCache {
            ttl,
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The answer for `key` if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    /// Keeps `value` as the answer for `key`.
    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    /// Forgets every answer (reload).
    pub fn clear(&self) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_live_for_the_ttl_and_clear_empties() {
        let cache = TtlCache::new(Duration::from_millis(80), 10);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        assert_eq!(cache.get(&"b"), None);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.get(&"a"), None);
        cache.insert("a", 2);
        cache.clear();
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn zero_ttl_keeps_nothing_and_capacity_is_bounded() {
        let off = TtlCache::new(Duration::ZERO, 10);
        off.insert(1, 1);
        assert_eq!(off.get(&1), None);

        let small = TtlCache::new(Duration::from_secs(60), 2);
        small.insert(1, 1);
        small.insert(2, 2);
        small.insert(3, 3);
        assert_eq!(small.get(&3), Some(3));
        assert!(small.map.lock().unwrap().len() <= 2);
    }
}
