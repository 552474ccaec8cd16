//! Peak memory of the streaming MIME reader against message size.
//!
//! Generates messages of 10 MiB, 100 MiB and 1 GiB on the fly (never held in memory), pushes
//! them through `MessageReader` in 64 KiB chunks and prints the process's peak resident set
//! (VmHWM) after each. Memory independent of message size means the three peaks are equal.
//!
//! Run: `cargo bench --bench mime_memory` (Linux; reads /proc/self/status).

use std::time::Instant;

use shsd::protocol::mime::{Event, Limits, MessageReader, MessageWriter, PartHeaders};

const LABEL: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<shs.label version="1.2" tx.id="t1" corr.id="c1" sequence-type="event"><from>urn:X-shs:5590000001</from><to>urn:X-shs:2120000142</to><product>urn:X-shs:00000000-0000-0000-0000-000000000000</product><datetime>2026-11-22T12:00:00</datetime><content content.id="x"><data datapartType="bin"/></content></shs.label>"#;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn run(size: u64) -> (u64, f64) {
    let writer = MessageWriter::new(b"=_memory_bench".to_vec());
    let label_headers = PartHeaders::from_fields(&[("Content-Type", "text/xml")]);
    let part_headers = PartHeaders::from_fields(&[("Content-Type", "application/octet-stream")]);
    let mut reader = MessageReader::new(
        Some("multipart/mixed; boundary=\"=_memory_bench\""),
        Limits::default(),
    )
    .unwrap();

    let mut head = writer.label_part(&label_headers, LABEL);
    head.extend(writer.part_head(&part_headers));
    let block: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 253) as u8).collect();
    let tail = writer.end();

    let mut pending: Vec<Vec<u8>> = vec![head];
    let mut remaining = size;
    let mut data = 0u64;
    let mut finished = false;
    let started = Instant::now();
    loop {
        match reader.next_event().unwrap() {
            Event::NeedMore => {
                if let Some(next) = pending.pop() {
                    reader.push(&next);
                } else if remaining > 0 {
                    let n = remaining.min(block.len() as u64) as usize;
                    remaining -= n as u64;
                    reader.push(&block[..n]);
                } else if !tail.is_empty() && !finished {
                    reader.push(&tail);
                    finished = true;
                } else {
                    reader.finish();
                }
            }
            Event::PartData(bytes) => data += bytes.len() as u64,
            Event::End => break,
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(data, size);
    (peak_rss_kib(), size as f64 / seconds / 1e6)
}

fn main() {
    // `cargo test --all-targets` runs benches once in test mode: keep that quick.
    let sizes: &[u64] = if std::env::args().any(|arg| arg == "--bench") {
        &[10 << 20, 100 << 20, 1 << 30]
    } else {
        &[1 << 20]
    };
    println!("idle peak RSS: {} KiB", peak_rss_kib());
    for &size in sizes {
        let (peak, mbps) = run(size);
        println!(
            "{:>5} MiB message: peak RSS {peak} KiB, {mbps:.0} MB/s",
            size >> 20
        );
    }
}
