//! Which corr.ids more than one indexed message may share: two Bloom filters over the
//! `c/` index, built at open and moved by every committed batch.
//!
//! The confirm an ack makes is correlated by a look-up of its corr.id (spec §4.4). In
//! almost every conversation the acknowledged message is the only indexed one with that
//! corr.id, and the look-up, a random page of the index, found nothing else: 5 % of
//! fetch+ack's CPU in the profile (`BENCHMARKS.md`, issue 7). A corr.id noted once sets
//! its bits in `seen`; one noted while all its bits in `seen` were set also sets them in
//! `again`. So a corr.id whose bits are not all set in `again` was noted at most once: no
//! false negatives, only false positives (a look-up that finds nothing, as before).
//!
//! Removals never clear bits: the filters only fill, until the next open rebuilds them
//! from the index. 2 × 512 KiB hold a million indexed messages with about 0.1 % of
//! unshared corr.ids still looked up (three bits each, from the standard formulas).

use std::sync::{Mutex, PoisonError};

use super::bloom::Bloom;

/// Bits per filter: 2^22, 512 KiB.
const LOG2_BITS: u32 = 22;

/// The two filters.
pub(super) struct SharedCorrIds {
    seen: Bloom,
    again: Bloom,
    /// Serialises notes: two notes of one new corr.id racing could both find a bit unset
    /// in `seen`, and neither would set `again`.
    noting: Mutex<()>,
}

impl Default for SharedCorrIds {
    fn default() -> Self {
        SharedCorrIds {
            seen: Bloom::with_bits(LOG2_BITS),
            again: Bloom::with_bits(LOG2_BITS),
            noting: Mutex::new(()),
        }
    }
}

impl SharedCorrIds {
    /// Notes a message indexed under `corr_id`. Call before the index write is applied,
    /// so that whoever sees the key also sees the bits.
    pub(super) fn note(&self, corr_id: &[u8]) {
        let _noting = self.noting.lock().unwrap_or_else(PoisonError::into_inner);
        if self.seen.insert(corr_id) {
            self.again.insert(corr_id);
        }
    }

    /// False only if at most one message was ever noted under `corr_id` since open.
    pub(super) fn may_be_shared(&self, corr_id: &[u8]) -> bool {
        self.again.may_contain(corr_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corr_id_noted_once_is_not_shared_and_twice_is() {
        let filter = SharedCorrIds::default();
        assert!(!filter.may_be_shared(b"c-1"), "never noted");
        filter.note(b"c-1");
        assert!(!filter.may_be_shared(b"c-1"), "noted once");
        filter.note(b"c-2");
        assert!(!filter.may_be_shared(b"c-1"));
        filter.note(b"c-1");
        assert!(filter.may_be_shared(b"c-1"), "noted twice");
        assert!(!filter.may_be_shared(b"c-2"));
    }

    #[test]
    fn no_shared_corr_id_is_missed_among_many() {
        let filter = SharedCorrIds::default();
        for n in 0..200_000 {
            filter.note(format!("once-{n}").as_bytes());
        }
        for n in 0..2_000 {
            filter.note(format!("twice-{n}").as_bytes());
            filter.note(format!("twice-{n}").as_bytes());
        }
        assert!((0..2_000).all(|n| filter.may_be_shared(format!("twice-{n}").as_bytes())));
        let false_positives = (0..200_000)
            .filter(|n| filter.may_be_shared(format!("once-{n}").as_bytes()))
            .count();
        // Expected well under one here; a filter that ignored `seen` would report them all.
        assert!(false_positives < 200, "{false_positives} false positives");
    }

    #[test]
    fn notes_racing_on_one_corr_id_still_mark_it_shared() {
        for round in 0..50 {
            let filter = SharedCorrIds::default();
            let corr_id = format!("race-{round}");
            std::thread::scope(|scope| {
                scope.spawn(|| filter.note(corr_id.as_bytes()));
                scope.spawn(|| filter.note(corr_id.as_bytes()));
            });
            assert!(filter.may_be_shared(corr_id.as_bytes()));
        }
    }
}
