//! Where a listed message's record is: the tx.id → local id pairs of recent mailbox
//! lists, so the fetch and the acknowledgement that follow a list find the record without
//! looking up the `t/` index. A tx.id is a client's random UUID, so its `t/` key sits on a
//! random page of the index, often one the cache does not hold (`BENCHMARKS.md`, issue 7).
//!
//! A hint is only a guess: the caller reads the record it names and checks that it has the
//! tx.id and mailbox asked for, and otherwise looks `t/` up as before. Two generations of
//! at most [`GENERATION`] pairs each bound the memory (estimated from the sizes of the
//! pairs and the maps at a few MiB; not measured on its own).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::record::LocalId;

/// Pairs per generation.
const GENERATION: usize = 8192;

/// Recently listed tx.ids and their records.
#[derive(Debug, Default)]
pub(super) struct TxHints {
    generations: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<String, LocalId>,
    previous: HashMap<String, LocalId>,
}

impl TxHints {
    /// Notes listed messages; the older generation goes once the current one is full.
    pub(super) fn remember<'a>(&self, listed: impl IntoIterator<Item = (&'a str, LocalId)>) {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (tx_id, local_id) in listed {
            if generations.current.len() >= GENERATION {
                generations.previous = std::mem::take(&mut generations.current);
            }
            generations.current.insert(tx_id.to_owned(), local_id);
        }
    }

    /// The record a recent list showed for `tx_id`, if any.
    pub(super) fn get(&self, tx_id: &str) -> Option<LocalId> {
        let generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        generations
            .current
            .get(tx_id)
            .or_else(|| generations.previous.get(tx_id))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> LocalId {
        LocalId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn listed_pairs_are_found_and_old_ones_go() {
        let hints = TxHints::default();
        assert_eq!(hints.get("a"), None);
        hints.remember([("a", id(1)), ("b", id(2))]);
        assert_eq!(hints.get("a"), Some(id(1)));
        hints.remember([("a", id(3))]);
        assert_eq!(hints.get("a"), Some(id(3)), "the latest list wins");
        let filler: Vec<String> = (0..2 * GENERATION).map(|n| format!("f{n}")).collect();
        hints.remember(filler.iter().map(|tx| (tx.as_str(), id(9))));
        assert_eq!(hints.get("b"), None, "two generations later it is gone");
        assert_eq!(hints.get(&filler[2 * GENERATION - 1]), Some(id(9)));
        let generations = hints.generations.lock().unwrap();
        assert!(generations.current.len() <= GENERATION);
        assert!(generations.previous.len() <= GENERATION);
    }
}
