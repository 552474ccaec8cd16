//! A fixed-size Bloom filter over byte strings that readers test without a lock: "maybe"
//! or "certainly not". The store keeps a few over its index keys, so that look-ups whose
//! answer is almost always "none" (a new tx.id, a corr.id with no other message) can be
//! skipped; a look-up of a random key is a random page of the index, often one its cache
//! does not hold.

use std::hash::{DefaultHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits set per value.
const PROBES: usize = 3;

/// The filter.
pub(super) struct Bloom {
    words: Box<[AtomicU64]>,
    /// `bits - 1`; the size is a power of two.
    mask: u64,
}

impl Bloom {
    /// A filter of `2^log2_bits` bits: `2^log2_bits / 8` bytes.
    pub(super) fn with_bits(log2_bits: u32) -> Bloom {
        let bits = 1_u64 << log2_bits;
        Bloom {
            words: (0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
        }
    }

    /// Adds `value`; true if all its bits were set already (it may have been added before).
    /// Two inserts of one new value that race may both return false.
    pub(super) fn insert(&self, value: &[u8]) -> bool {
        let mut all_set = true;
        for bit in self.probes(value) {
            let (word, flag) = locate(bit);
            all_set &= self.words[word].fetch_or(flag, Ordering::Release) & flag != 0;
        }
        all_set
    }

    /// False only if `value` was never inserted.
    pub(super) fn may_contain(&self, value: &[u8]) -> bool {
        self.probes(value).into_iter().all(|bit| {
            let (word, flag) = locate(bit);
            self.words[word].load(Ordering::Acquire) & flag != 0
        })
    }

    /// The bits of a value: double hashing of one 64-bit hash (Kirsch and Mitzenmacher).
    fn probes(&self, value: &[u8]) -> [u64; PROBES] {
        let mut hasher = DefaultHasher::new();
        hasher.write(value);
        let hash = hasher.finish();
        let (first, step) = (hash, (hash >> 32) | 1);
        std::array::from_fn(|n| first.wrapping_add(step.wrapping_mul(n as u64)) & self.mask)
    }
}

/// The word and the flag within it of a bit.
fn locate(bit: u64) -> (usize, u64) {
    ((bit / 64) as usize, 1 << (bit % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_values_are_always_found_and_others_mostly_not() {
        let bloom = Bloom::with_bits(20);
        assert!(!bloom.may_contain(b"a"));
        assert!(!bloom.insert(b"a"), "new");
        assert!(bloom.insert(b"a"), "again");
        for n in 0..50_000 {
            bloom.insert(format!("in-{n}").as_bytes());
        }
        assert!((0..50_000).all(|n| bloom.may_contain(format!("in-{n}").as_bytes())));
        let false_positives = (0..50_000)
            .filter(|n| bloom.may_contain(format!("out-{n}").as_bytes()))
            .count();
        // Expected (1 - e^(-3·50 000 / 2^20))^3 ≈ 0.24 %: about 120 of 50 000.
        assert!(
            (25..500).contains(&false_positives),
            "{false_positives} false positives"
        );
    }
}
