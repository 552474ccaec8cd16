//! Criterion benches for the protocol library: label parse/write and MIME split.
//!
//! Run: `cargo bench --bench protocol`. Numbers go in BENCHMARKS.md with the machine.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shsd::protocol::label::Label;
use shsd::protocol::mime::{Event, Limits, MessageReader, MessageWriter, PartHeaders};

const LABEL: &[u8] = br#"<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE shs.label SYSTEM "shs-label-1.2.dtd">
<shs.label version="1.2" tx.id="4c9fd3e8-b4c4-49aa-926a-52a68864a7b8" corr.id="5a01ff87-e641-486e-8521-8e82d1ee1052" transfer-type="asynch" message-type="simple" document-type="simple" sequence-type="request" status="production">
    <originator name="Anna Andersson">urn:X-shs:5590000001</originator>
    <from commonName="Exempelportalen AB">urn:X-shs:5590000001</from>
    <to commonName="Exempelkommun">urn:X-shs:2120000142.bygglov</to>
    <product commonName="Bygglovsansokan">urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-0c7f3b2a1d00</product>
    <meta name="arende">BN 2026-1234</meta>
    <meta name="kanal">e-tjanst</meta>
    <subject>Ansokan om bygglov</subject>
    <datetime>2026-11-22T12:00:00</datetime>
    <content content.id="82b9c7e7-59ab-4d5d-b430-d5101c8b690b">
        <data datapartType="xml" filename="ansokan.xml" no-of-bytes="10240"/>
    </content>
    <history node.id="portal" tx.id="4c9fd3e8-b4c4-49aa-926a-52a68864a7b8" content.id="82b9c7e7-59ab-4d5d-b430-d5101c8b690b" local.id="ad0bc04c-a56c-4117-bec5-19f0d4437fdf" to="urn:X-shs:2120000142.bygglov">
        <datetime>2026-11-22T12:00:01</datetime>
        <comment>Received</comment>
    </history>
</shs.label>
"#;

/// A whole message with one binary data part of `size` bytes.
fn message(size: usize) -> (Vec<u8>, String) {
    let boundary = b"----=_shsd_bench_boundary".to_vec();
    let writer = MessageWriter::new(boundary.clone());
    let label_headers =
        PartHeaders::from_fields(&[("Content-Type", "text/xml; charset=ISO-8859-1")]);
    let part_headers = PartHeaders::from_fields(&[
        ("Content-Type", "application/octet-stream"),
        ("Content-Transfer-Encoding", "binary"),
        ("Content-Disposition", "attachment; filename=ansokan.bin"),
    ]);
    let mut body = writer.label_part(&label_headers, LABEL);
    body.extend(writer.part_head(&part_headers));
    body.extend((0..size).map(|i| (i * 7 % 251) as u8));
    body.extend(writer.end());
    let content_type = format!(
        "multipart/mixed; boundary=\"{}\"",
        String::from_utf8_lossy(&boundary)
    );
    (body, content_type)
}

/// Streams `body` through the reader in 64 KiB chunks and returns the data byte count.
fn split_streaming(body: &[u8], content_type: &str) -> usize {
    let mut reader = MessageReader::new(Some(content_type), Limits::default()).unwrap();
    let mut chunks = body.chunks(64 * 1024);
    let mut total = 0;
    loop {
        match reader.next_event().unwrap() {
            Event::NeedMore => match chunks.next() {
                Some(chunk) => reader.push(chunk),
                None => reader.finish(),
            },
            Event::PartData(bytes) => total += bytes.len(),
            Event::End => return total,
            _ => {}
        }
    }
}

fn label(c: &mut Criterion) {
    let parsed = Label::parse(LABEL).unwrap();
    let mut group = c.benchmark_group("label");
    group.throughput(Throughput::Bytes(LABEL.len() as u64));
    group.bench_function("parse", |b| b.iter(|| Label::parse(LABEL).unwrap()));
    group.bench_function("write", |b| b.iter(|| parsed.to_xml()));
    group.finish();
}

fn mime_split(c: &mut Criterion) {
    let mut group = c.benchmark_group("mime_split");
    for (name, size, samples) in [("10KiB", 10 * 1024, 100), ("100MiB", 100 * 1024 * 1024, 10)] {
        let (body, content_type) = message(size);
        group.sample_size(samples);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| split_streaming(body, &content_type))
        });
    }
    group.finish();
}

criterion_group!(benches, label, mime_split);
criterion_main!(benches);
