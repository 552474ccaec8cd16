//! The one-large-message mode (`LOAD_HUGE=<bytes>`): instead of phases 2 and 3, one sender
//! sends a single message with a data part of that size, and the report gives the server's
//! resident memory at idle and at its peak during the upload (the target: peak at
//! most 64 MiB above idle, whatever the message size), the time to the 202, and the server's
//! CPU and bytes written. Then the business system fetches it, the bytes are compared with
//! what was sent, and the server's peak memory during the fetch is reported as well. The
//! clients hold the message in their own memory (they are not the process measured).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient, build_message};
use shsd::protocol::label::SequenceType;
use shsd::protocol::urn::Address;

use crate::phases::{BYGGLOV, PORTAL, products};
use crate::proc::{Sample, Usage, reset_peak, rss_kib};

/// What the upload of the one message cost the server.
pub struct Huge {
    pub size: usize,
    pub idle_rss_kib: Option<u64>,
    pub took: Duration,
    pub outcome: Result<(), String>,
    pub usage: Usage,
    /// The fetch: how long, whether the data part came back byte for byte, the server.
    pub fetch_took: Duration,
    pub fetched: Result<(), String>,
    pub fetch_usage: Usage,
}

/// Data byte `i` of the large part.
fn data_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Sends one message of `size` data bytes and measures the server around it.
pub async fn huge(
    size: usize,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    reader_tls: &Arc<rustls::ClientConfig>,
    pid: u32,
) -> Result<Huge, String> {
    let client = ShsClient::new(url, Arc::clone(tls)).map_err(|err| err.to_string())?;
    let part = OutgoingPart {
        datapart_type: "pdf".to_owned(),
        content_type: "application/octet-stream".to_owned(),
        filename: Some("ritning.bin".to_owned()),
        bytes: (0..size).map(data_byte).collect(),
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
    let (outcome, tx_id) = match client.send(Bytes::from(body), &boundary).await {
        Ok(receipt) if receipt.status.as_u16() == 202 => (Ok(()), receipt.tx_id),
        Ok(receipt) => (Err(format!("answer {}", receipt.status)), String::new()),
        Err(err) => (Err(err.to_string()), String::new()),
    };
    let took = started.elapsed();
    let usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    drop(client);

    let reader = ShsClient::new(url, Arc::clone(reader_tls)).map_err(|err| err.to_string())?;
    let mailbox: Address = BYGGLOV.parse().map_err(|err| format!("{err:?}"))?;
    let peak_reset = reset_peak(pid);
    let before = Sample::take(pid);
    let started = Instant::now();
    let fetched = match &outcome {
        Ok(()) => match reader.fetch(&mailbox, &tx_id).await {
            Ok(message) => same_data(&message, size),
            Err(err) => Err(err.to_string()),
        },
        Err(_) => Err("not sent".to_owned()),
    };
    let fetch_took = started.elapsed();
    let fetch_usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    Ok(Huge {
        size,
        idle_rss_kib,
        took,
        outcome,
        usage,
        fetch_took,
        fetched,
        fetch_usage,
    })
}

/// Checks that the fetched message holds the data part as sent: its first bytes found,
/// then every byte compared.
fn same_data(message: &[u8], size: usize) -> Result<(), String> {
    let head: Vec<u8> = (0..size.min(4096)).map(data_byte).collect();
    let start =
        memchr::memmem::find(message, &head).ok_or("the data part is not in the message")?;
    let data = message
        .get(start..start + size)
        .ok_or("the data part is cut short")?;
    match data
        .iter()
        .enumerate()
        .find(|&(i, &byte)| byte != data_byte(i))
    {
        None => Ok(()),
        Some((i, _)) => Err(format!("data byte {i} differs")),
    }
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
    let above_fetch = match (huge.fetch_usage.peak_rss_kib, huge.idle_rss_kib) {
        (Some(peak), Some(idle)) => format!("{:.1} MiB", (peak as f64 - idle as f64) / 1024.0),
        _ => "?".to_owned(),
    };
    println!();
    println!(
        "Fetched back in {:.1} s ({:.1} MiB/s): {}; server peak RSS during the fetch {} ({above_fetch} above idle), server CPU {}.",
        huge.fetch_took.as_secs_f64(),
        huge.size as f64 / 1048576.0 / huge.fetch_took.as_secs_f64().max(1e-9),
        match &huge.fetched {
            Ok(()) => "the data part byte for byte as sent".to_owned(),
            Err(err) => format!("FAILED: {err}"),
        },
        mib(huge.fetch_usage.peak_rss_kib),
        huge.fetch_usage
            .server_cpu
            .map_or("?".to_owned(), |s| format!("{s:.1} s")),
    );
    println!();
}
