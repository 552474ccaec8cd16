//! The one-large-message mode (`LOAD_HUGE=<bytes>`): instead of phases 2 and 3, one sender
//! sends a single message with a data part of that size, and the report gives the server's
//! resident memory at idle and at its peak during the upload (the target: peak at
//! most 64 MiB above idle, whatever the message size), the time to the 202, and the server's
//! CPU and bytes written. The client builds the body in its own memory first (it is not the
//! process measured).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient, build_message};
use shsd::protocol::label::SequenceType;

use crate::phases::{BYGGLOV, PORTAL, products};
use crate::proc::{Sample, Usage, reset_peak, rss_kib};

/// What the upload of the one message cost the server.
pub struct Huge {
    pub size: usize,
    pub idle_rss_kib: Option<u64>,
    pub took: Duration,
    pub outcome: Result<(), String>,
    pub usage: Usage,
}

/// Sends one message of `size` data bytes and measures the server around it.
pub async fn huge(
    size: usize,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    pid: u32,
) -> Result<Huge, String> {
    let client = ShsClient::new(url, Arc::clone(tls)).map_err(|err| err.to_string())?;
    let part = OutgoingPart {
        datapart_type: "pdf".to_owned(),
        content_type: "application/octet-stream".to_owned(),
        filename: Some("ritning.bin".to_owned()),
        bytes: (0..size).map(|i| (i % 251) as u8).collect(),
    };
    let product = products(1).remove(0);
    let (body, boundary, _) = build_message(
        PORTAL,
        Some(BYGGLOV),
        &product,
        SequenceType::Event,
        std::slice::from_ref(&part),
    );
    drop(part);
    // Let the server settle after start-up before reading its idle size.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib(pid);
    let peak_reset = reset_peak(pid);
    let before = Sample::take(pid);
    let started = Instant::now();
    let outcome = match client.send(Bytes::from(body), &boundary).await {
        Ok(receipt) if receipt.status.as_u16() == 202 => Ok(()),
        Ok(receipt) => Err(format!("answer {}", receipt.status)),
        Err(err) => Err(err.to_string()),
    };
    let took = started.elapsed();
    let usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    Ok(Huge {
        size,
        idle_rss_kib,
        took,
        outcome,
        usage,
    })
}

/// The mode's report lines, after the report header.
pub fn print(huge: &Huge) {
    let mib =
        |kib: Option<u64>| kib.map_or("?".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let above = match (huge.usage.peak_rss_kib, huge.idle_rss_kib) {
        (Some(peak), Some(idle)) => format!("{:.1} MiB", (peak as f64 - idle as f64) / 1024.0),
        _ => "?".to_owned(),
    };
    println!(
        "| one message | data bytes | time to 202 | MiB/s | server idle RSS | server peak RSS | peak above idle | server CPU | storage writes |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    println!(
        "| {} | {} | {:.1} s | {:.1} | {} | {}{} | {above} | {} | {} |",
        match &huge.outcome {
            Ok(()) => "202".to_owned(),
            Err(err) => format!("failed: {err}"),
        },
        huge.size,
        huge.took.as_secs_f64(),
        huge.size as f64 / 1048576.0 / huge.took.as_secs_f64().max(1e-9),
        mib(huge.idle_rss_kib),
        mib(huge.usage.peak_rss_kib),
        if huge.usage.peak_reset {
            ""
        } else {
            " (since start)"
        },
        huge.usage
            .server_cpu
            .map_or("?".to_owned(), |s| format!("{s:.1} s")),
        huge.usage.written.map_or("?".to_owned(), |b| format!(
            "{:.0} MiB",
            b as f64 / 1048576.0
        )),
    );
    println!();
}
