//! The log against a model: reads merge the overlay and the index exactly, and reopening
//! after a crash, a torn tail or a half-done checkpoint gives back every synced batch.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::store::memory::MemoryEngine;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A small deterministic generator (the failing seed is printed by the assertions).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn small() -> WalConfig {
    WalConfig {
        segment_bytes: 8 * 1024,
        checkpoint_bytes: 64 * 1024,
        checkpoint_interval: Duration::from_secs(3600),
        max_pending_bytes: 1024 * 1024,
        gc_interval: Duration::from_secs(3600),
    }
}

/// A batch of 1–4 writes over a key space of 3 prefixes × 40 keys.
fn random_batch(rng: &mut Rng, model: &mut Model) -> Batch {
    let mut batch = Batch::default();
    for _ in 0..=rng.below(4) {
        let key = format!(
            "{}/{:02}",
            ["a", "b", "c"][rng.below(3) as usize],
            rng.below(40)
        );
        let key = key.into_bytes();
        if rng.below(3) == 0 {
            model.remove(&key);
            batch.delete(key);
        } else {
            // Both forms: in place and, from 512 bytes, a pointer into the log.
            let value = vec![rng.below(256) as u8; rng.below(1500) as usize];
            model.insert(key.clone(), value.clone());
            batch.put(key, value);
        }
    }
    batch
}

fn model_scan(
    model: &Model,
    prefix: &[u8],
    after: Option<&[u8]>,
    direction: Direction,
    limit: usize,
) -> Vec<Entry> {
    let range = model.range(crate::store::kv::scan_bounds(prefix, after, direction));
    let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
    match direction {
        Direction::Forward => range.take(limit).map(clone).collect(),
        Direction::Reverse => range.rev().take(limit).map(clone).collect(),
    }
}

/// Every key of the model reads back, and random scans agree with the model's.
fn assert_reads(engine: &impl KvEngine, model: &Model, rng: &mut Rng, context: &str) {
    for (key, value) in model {
        assert_eq!(engine.get(key).unwrap().as_ref(), Some(value), "{context}");
    }
    for _ in 0..20 {
        let prefix = [&b"a/"[..], b"b/", b"c/"][rng.below(3) as usize];
        let direction = if rng.below(2) == 0 {
            Direction::Forward
        } else {
            Direction::Reverse
        };
        let after = format!("{}{:02}", String::from_utf8_lossy(prefix), rng.below(40));
        let after = (rng.below(2) == 0).then_some(after.as_bytes());
        let limit = 1 + rng.below(50) as usize;
        let scanned = engine.scan(prefix, after, direction, limit).unwrap();
        let expected = model_scan(model, prefix, after, direction, limit);
        assert_eq!(
            scanned, expected,
            "{context}: scan {prefix:?} after {after:?} {direction:?} limit {limit}"
        );
    }
}

#[test]
fn reads_merge_the_overlay_and_the_index_exactly() {
    for seed in 1..=20u64 {
        let dir = tempfile::tempdir().unwrap();
        let engine = WalEngine::open(dir.path(), MemoryEngine::new(), small()).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut model = Model::new();
        for step in 0..300 {
            engine.apply(random_batch(&mut rng, &mut model)).unwrap();
            if rng.below(25) == 0 {
                engine.checkpoint().unwrap();
            }
            if step % 30 == 0 {
                assert_reads(
                    &engine,
                    &model,
                    &mut rng,
                    &format!("seed {seed} step {step}"),
                );
            }
        }
        assert_reads(&engine, &model, &mut rng, &format!("seed {seed} end"));
    }
}

fn open_sled_at(path: &Path, config: WalConfig) -> WalEngine<SledEngine> {
    let index = SledEngine::open(&SledConfig::new(path)).unwrap();
    WalEngine::open(&path.join("wal"), index, config).unwrap()
}

#[test]
fn a_crash_keeps_every_synced_batch_and_no_partial_one() {
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
        // The model after each batch; `synced` is the index of the last synced state.
        let mut model = Model::new();
        let mut states = vec![model.clone()];
        let mut synced = 0;
        let mut ids = Vec::new();
        for round in 0..3 {
            let engine = open_sled_at(dir.path(), small());
            let context = format!("seed {seed} round {round}");
            let reopened: Model = engine
                .scan(b"", None, Direction::Forward, usize::MAX)
                .unwrap()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(b"w/"))
                .collect();
            // Unsynced batches may or may not have reached the file: any state from the
            // last synced one on is right, a state in between batches is not.
            let at = states[synced..]
                .iter()
                .position(|state| *state == reopened)
                .unwrap_or_else(|| panic!("{context}: reopened state is no batch boundary"));
            model = states[synced + at].clone();
            states.truncate(synced + at + 1);
            assert_reads(&engine, &model, &mut rng, &context);
            for _ in 0..200 {
                engine.apply(random_batch(&mut rng, &mut model)).unwrap();
                states.push(model.clone());
                match rng.below(20) {
                    0 => engine.sync().unwrap(),
                    1 => engine.checkpoint().unwrap(),
                    2 => ids.push(engine.next_id().unwrap()),
                    _ => {}
                }
            }
            engine.sync().unwrap();
            let last_synced = states.len() - 1;
            ids.push(engine.next_id().unwrap());
            // Unsynced batches after the last sync.
            for _ in 0..rng.below(10) {
                engine.apply(random_batch(&mut rng, &mut model)).unwrap();
                states.push(model.clone());
            }
            engine.abandon();
            synced = last_synced;
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted, ids,
            "seed {seed}: ids grow across crashes, never repeat"
        );
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    let segments = log::list_segments(dir).unwrap();
    log::path_of(dir, *segments.last().unwrap())
}

#[test]
fn a_torn_tail_is_cut_off_and_what_was_synced_stays() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_sled_at(dir.path(), WalConfig::default());
    let mut batch = Batch::default();
    batch.put(b"a/1".to_vec(), b"synced".to_vec());
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    engine.abandon();
    let segment = last_segment(&dir.path().join("wal"));
    // A record half written: a plausible header and a few body bytes.
    let mut tail = std::fs::read(&segment).unwrap();
    let whole = tail.clone();
    tail.extend_from_slice(&whole[..whole.len().min(20)]);
    std::fs::write(&segment, &tail).unwrap();

    let engine = open_sled_at(dir.path(), WalConfig::default());
    assert_eq!(engine.get(b"a/1").unwrap(), Some(b"synced".to_vec()));
    let mut batch = Batch::default();
    batch.put(b"a/2".to_vec(), b"after".to_vec());
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    engine.abandon();
    let engine = open_sled_at(dir.path(), WalConfig::default());
    assert_eq!(engine.get(b"a/1").unwrap(), Some(b"synced".to_vec()));
    assert_eq!(engine.get(b"a/2").unwrap(), Some(b"after".to_vec()));
}

#[test]
fn damage_before_the_tail_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_sled_at(dir.path(), small());
    for i in 0..200u32 {
        let mut batch = Batch::default();
        batch.put(format!("a/{i:03}").into_bytes(), vec![7; 200]);
        engine.apply(batch).unwrap();
    }
    engine.sync().unwrap();
    engine.abandon();
    let wal = dir.path().join("wal");
    let segments = log::list_segments(&wal).unwrap();
    assert!(segments.len() > 3, "small segments roll: {segments:?}");
    let first = log::path_of(&wal, segments[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();
    let index = SledEngine::open(&SledConfig::new(dir.path())).unwrap();
    match WalEngine::open(&wal, index, small()) {
        Err(EngineError::Corrupt(reason)) => {
            assert!(reason.contains("damaged record"), "{reason}")
        }
        Err(other) => panic!("not refused as corrupt: {other}"),
        Ok(_) => panic!("a damaged log was opened"),
    }
}

#[test]
fn segments_go_once_the_index_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        checkpoint_bytes: usize::MAX,
        ..small()
    };
    let engine = open_sled_at(dir.path(), config);
    for i in 0..500u32 {
        let mut batch = Batch::default();
        batch.put(format!("a/{i:03}").into_bytes(), vec![1; 100]);
        engine.apply(batch).unwrap();
    }
    engine.sync().unwrap();
    assert!(engine.segment_count() > 5, "{}", engine.segment_count());
    assert_eq!(engine.collect_garbage().unwrap(), 0, "not in the index yet");
    engine.checkpoint().unwrap();
    assert!(engine.collect_garbage().unwrap() > 5);
    assert_eq!(engine.segment_count(), 1);
    assert_eq!(
        log::list_segments(&dir.path().join("wal")).unwrap().len(),
        1
    );
    assert_eq!(engine.get(b"a/499").unwrap(), Some(vec![1; 100]));
}

#[test]
fn replay_over_a_half_done_checkpoint_ends_with_the_logged_values() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_sled_at(dir.path(), WalConfig::default());
    for (key, value) in [("a/1", "one"), ("a/2", "two"), ("a/1", "three")] {
        let mut batch = Batch::default();
        batch.put(key.as_bytes().to_vec(), value.as_bytes().to_vec());
        engine.apply(batch).unwrap();
    }
    let mut batch = Batch::default();
    batch.delete(b"a/2".to_vec());
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    engine.abandon();
    // A checkpoint that got part of the way: the index has some keys already, in states
    // from the middle of the log.
    {
        let index = SledEngine::open(&SledConfig::new(dir.path())).unwrap();
        let mut partial = Batch::default();
        partial.put(b"a/1".to_vec(), b"one".to_vec());
        partial.put(b"a/2".to_vec(), b"two".to_vec());
        index.apply(partial).unwrap();
        index.sync().unwrap();
    }
    let engine = open_sled_at(dir.path(), WalConfig::default());
    assert_eq!(engine.get(b"a/1").unwrap(), Some(b"three".to_vec()));
    assert_eq!(engine.get(b"a/2").unwrap(), None);
}

#[test]
fn a_store_from_before_the_log_keeps_its_data_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let old_ids: Vec<u64> = {
        let index = SledEngine::open(&SledConfig::new(dir.path())).unwrap();
        let mut batch = Batch::default();
        batch.put(b"m/1".to_vec(), b"record".to_vec());
        batch.put(b"x/1".to_vec(), b"entry".to_vec());
        index.apply(batch).unwrap();
        let ids = (0..3).map(|_| index.next_id().unwrap()).collect();
        index.sync().unwrap();
        ids
    };
    let engine = open_sled_at(dir.path(), WalConfig::default());
    assert_eq!(engine.get(b"m/1").unwrap(), Some(b"record".to_vec()));
    let entries = engine.scan(b"x/", None, Direction::Forward, 10).unwrap();
    assert_eq!(entries, vec![(b"x/1".to_vec(), b"entry".to_vec())]);
    let new_id = engine.next_id().unwrap();
    assert!(
        old_ids.iter().all(|&old| old < new_id),
        "{old_ids:?} < {new_id}"
    );
}

#[test]
fn writers_wait_for_room_and_all_their_writes_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        checkpoint_bytes: 16 * 1024,
        max_pending_bytes: 64 * 1024,
        ..small()
    };
    let engine = Arc::new(WalEngine::open(dir.path(), MemoryEngine::new(), config).unwrap());
    let writers: Vec<_> = (0..4u32)
        .map(|writer| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                for i in 0..500u32 {
                    let mut batch = Batch::default();
                    batch.put(format!("a/{writer}/{i:03}").into_bytes(), vec![3; 512]);
                    engine.apply(batch).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let all = engine
        .scan(b"a/", None, Direction::Forward, 10_000)
        .unwrap();
    assert_eq!(all.len(), 2000);
}

#[test]
fn the_backlog_counts_what_the_index_lacks_and_the_writers_that_waited() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        checkpoint_bytes: usize::MAX,
        max_pending_bytes: 4 * 1024,
        ..small()
    };
    let engine = WalEngine::open(dir.path(), MemoryEngine::new(), config).unwrap();
    let start = engine.backlog().unwrap();
    assert_eq!(
        (start.bytes, start.limit_bytes, start.waits),
        (0, 4 * 1024, 0)
    );
    let put = |i: u32| {
        let mut batch = Batch::default();
        batch.put(format!("a/{i:03}").into_bytes(), vec![1; 100]);
        engine.apply(batch).unwrap();
    };
    put(0);
    let one = engine.backlog().unwrap();
    assert!(one.bytes > 100, "{one:?}");
    // Past the limit the next writer waits for a checkpoint (the only way one starts
    // here: by size never, by time only after an hour).
    let mut i = 1;
    while engine.backlog().unwrap().waits == 0 {
        put(i);
        i += 1;
        assert!(i < 1000, "no writer waited");
    }
    assert!(engine.backlog().unwrap().checkpoints > start.checkpoints);
    engine.checkpoint().unwrap();
    let end = engine.backlog().unwrap();
    assert_eq!(end.bytes, 0, "{end:?}");
    assert_eq!(
        engine
            .scan(b"a/", None, Direction::Forward, 2000)
            .unwrap()
            .len(),
        i as usize
    );
}

#[test]
fn large_values_are_read_through_the_log_until_their_segment_is_unused() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        checkpoint_bytes: usize::MAX,
        ..small()
    };
    let engine = open_sled_at(dir.path(), config.clone());
    let big = |i: u32| vec![(i % 251) as u8; 3000 + i as usize];
    let mut batch = Batch::default();
    batch.put(b"keep".to_vec(), big(0));
    engine.apply(batch).unwrap();
    // Still in the write buffer, then in the file, then through the index.
    assert_eq!(engine.get(b"keep").unwrap(), Some(big(0)));
    for i in 1..40u32 {
        let mut batch = Batch::default();
        batch.put(format!("drop/{i:02}").into_bytes(), big(i));
        engine.apply(batch).unwrap();
    }
    engine.sync().unwrap();
    assert_eq!(engine.get(b"keep").unwrap(), Some(big(0)));
    let overlay_bytes = read(&engine.shared.overlay).active_bytes();
    assert!(
        overlay_bytes < 40 * 200,
        "the overlay holds pointers: {overlay_bytes}"
    );
    engine.checkpoint().unwrap();
    let index_value = engine.index().get(b"drop/07").unwrap().unwrap();
    assert!(index_value.len() < 64, "the index holds a pointer");
    let segments = engine.segment_count();
    assert!(segments > 5, "{segments}");
    // Every segment is still needed.
    assert_eq!(engine.collect_garbage().unwrap(), 0);
    let mut batch = Batch::default();
    for i in 1..40u32 {
        batch.delete(format!("drop/{i:02}").into_bytes());
    }
    engine.apply(batch).unwrap();
    engine.checkpoint().unwrap();
    let removed = engine.collect_garbage().unwrap();
    assert!(removed > 3, "removed {removed} of {segments}");
    assert_eq!(
        engine.get(b"keep").unwrap(),
        Some(big(0)),
        "its segment stays"
    );
    assert_eq!(engine.get(b"drop/07").unwrap(), None);
    engine.abandon();
    let engine = open_sled_at(dir.path(), config);
    assert_eq!(engine.get(b"keep").unwrap(), Some(big(0)));
}

#[test]
fn a_damaged_value_in_the_log_is_an_error_not_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_sled_at(dir.path(), WalConfig::default());
    let mut batch = Batch::default();
    batch.put(b"big".to_vec(), vec![5; 4000]);
    engine.apply(batch).unwrap();
    engine.sync().unwrap();
    engine.checkpoint().unwrap();
    engine.abandon();
    // Reopened, the log goes on in a new segment: the first is then read only for values.
    open_sled_at(dir.path(), WalConfig::default()).abandon();
    let wal = dir.path().join("wal");
    let segment = log::path_of(&wal, log::list_segments(&wal).unwrap()[0]);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 1;
    std::fs::write(&segment, &bytes).unwrap();
    let engine = open_sled_at(dir.path(), WalConfig::default());
    match engine.get(b"big") {
        Err(EngineError::Corrupt(reason)) => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("damaged value read as {other:?}"),
    }
}

#[test]
fn collecting_garbage_beside_writers_and_checkpoints_keeps_every_live_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig {
        checkpoint_bytes: 4 * 1024,
        ..small()
    };
    let engine = Arc::new(WalEngine::open(dir.path(), MemoryEngine::new(), config).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut removed = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                removed += engine.collect_garbage().unwrap();
                engine.checkpoint().unwrap();
            }
            removed
        })
    };
    let mut rng = Rng(0x5eed);
    let mut model = Model::new();
    for step in 0..3000u32 {
        let key = format!("a/{:02}", rng.below(30)).into_bytes();
        let mut batch = Batch::default();
        if rng.below(4) == 0 {
            model.remove(&key);
            batch.delete(key);
        } else {
            let value = vec![(step % 251) as u8; 600 + rng.below(900) as usize];
            model.insert(key.clone(), value.clone());
            batch.put(key, value);
        }
        engine.apply(batch).unwrap();
        if step % 100 == 0 {
            for (key, value) in &model {
                assert_eq!(
                    engine.get(key).unwrap().as_ref(),
                    Some(value),
                    "step {step}"
                );
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let removed = collector.join().unwrap();
    assert!(removed > 10, "segments were removed meanwhile: {removed}");
    for (key, value) in &model {
        assert_eq!(engine.get(key).unwrap().as_ref(), Some(value));
    }
}

#[test]
fn readers_know_without_the_lock_what_is_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    // One byte per segment: every append after the first rolls.
    let mut appender = log::Appender::start(dir.path(), 1, Vec::new(), 0).unwrap();
    let position = appender.position();
    let (first, ()) = appender
        .append(|out| out.extend_from_slice(&[7; 100]))
        .unwrap();
    assert!(
        !position.has(first.segment, first.body_offset, 100),
        "still buffered"
    );
    appender.write_out().unwrap();
    assert!(position.has(first.segment, first.body_offset, 100));
    assert!(
        !position.has(first.segment, first.body_offset, 101),
        "past the end"
    );
    let (second, ()) = appender
        .append(|out| out.extend_from_slice(&[8; 10]))
        .unwrap();
    assert!(second.segment > first.segment, "rolled");
    assert!(
        position.has(first.segment, first.body_offset, 100),
        "older segments are whole"
    );
    assert!(!position.has(second.segment, second.body_offset, 10));
}
