//! Phases 2 and 3 (and 4 and 5), the client side of the load: concurrent [`ShsClient`]s (one keep-alive
//! connection each, as a portal or a business system holds) that send, then list, fetch
//! and acknowledge, recording latencies and error tallies per client and merging them.
//!
//! The work is split by product: sender `k` sends product `k mod fetchers` and fetcher `j`
//! lists only product `j` (`producttype=…`), so the fetchers' shares are disjoint without
//! coordination. Listing therefore always carries a product filter, which the store serves
//! from its per-product index; the report says so in its header.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient, build_message};
use shsd::protocol::label::SequenceType;
use shsd::protocol::urn::Address;
use tokio::time::timeout;

use crate::Params;
use crate::proc::{RssTrace, Sample, Usage, reset_peak};
use crate::stats::{count_error, count_in_second, error_kind, merge_counts, merge_errors};

pub const PORTAL: &str = "urn:X-shs:5590000001";
pub const BYGGLOV: &str = "urn:X-shs:2120000142.bygglov";
/// `maxhits` of every list request in phase 3.
pub const MAX_HITS: usize = 50;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One product type per fetcher: the unit of the work split.
pub fn products(fetchers: usize) -> Vec<String> {
    (0..fetchers)
        .map(|j| format!("urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-{j:012x}"))
        .collect()
}

// ---- Phase 2: intake -----------------------------------------------------------------

/// What all senders recorded; latencies and errors only inside the measured window.
#[derive(Default)]
pub struct Intake {
    pub latencies: Vec<Duration>,
    pub per_second: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
    pub errors_outside: u64,
    /// Accepted messages (warm-up and tail included) per product: what phase 3 expects.
    pub accepted_per_product: Vec<u64>,
    pub accepted_total: u64,
    pub window: Duration,
    pub usage: Usage,
}

/// What one sender recorded.
#[derive(Default)]
struct Sender {
    latencies: Vec<Duration>,
    per_second: Vec<u64>,
    errors: BTreeMap<String, u64>,
    errors_outside: u64,
    accepted: u64,
}

/// When senders send: from `start` (the warm-up), counted from `measured` until `end`.
#[derive(Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measured: Instant,
    pub end: Instant,
}

impl Window {
    /// A warm-up starting now, then the measured window.
    pub fn from_now(warmup: Duration, seconds: Duration) -> Window {
        let start = Instant::now();
        Window {
            start,
            measured: start + warmup,
            end: start + warmup + seconds,
        }
    }
}

/// Phases 2 and 4: [`send`] over the warm-up and the measured window, with the server's
/// usage during the window.
pub async fn intake(
    params: &Params,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
    pid: u32,
) -> Result<Intake, String> {
    let peak_reset = reset_peak(pid);
    let window = Window::from_now(params.warmup, params.seconds);
    let monitor = tokio::spawn(async move {
        tokio::time::sleep_until(window.measured.into()).await;
        let before = Sample::take(pid);
        tokio::time::sleep_until(window.end.into()).await;
        (before, Sample::take(pid))
    });
    let rss = RssTrace::start(pid, window.measured, window.end);
    let mut result = send(params, params.rate, window, url, tls, products).await?;
    let (before, after) = monitor.await.map_err(|err| err.to_string())?;
    result.usage = Usage::between(&before, &after, pid, peak_reset);
    result.usage.rss_trace_kib = rss.finish().await;
    Ok(result)
}

/// `params.senders` portal clients send during `window`: as fast as they are answered
/// (closed loop, `rate` `None`), or at `rate` messages per second in all (open loop: message
/// `n` is due at `n / rate` seconds after the start; a sender takes the next due message
/// when it is free, and its latency counts from when it was due). The server's usage is
/// left to the caller.
pub async fn send(
    params: &Params,
    rate: Option<f64>,
    window: Window,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
) -> Result<Intake, String> {
    let Window {
        start,
        measured: window_start,
        end: window_end,
    } = window;
    let part = OutgoingPart {
        datapart_type: "xml".to_owned(),
        content_type: "text/xml".to_owned(),
        filename: Some("bygglovsansökan.xml".to_owned()),
        bytes: filler(params.size),
    };
    let schedule = rate.map(|rate| Schedule {
        start,
        interval: Duration::from_secs_f64(1.0 / rate),
        next: Arc::new(AtomicU64::new(0)),
    });
    let mut tasks = Vec::new();
    for k in 0..params.senders {
        let client = ShsClient::new(url, Arc::clone(tls)).map_err(|err| err.to_string())?;
        let share = k % products.len();
        let product = products[share].clone();
        let part = part.clone();
        let schedule = schedule.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Sender::default();
            while Instant::now() < window_end {
                let due = match &schedule {
                    Some(schedule) => match schedule.take(window_end).await {
                        Some(due) => Some(due),
                        None => break,
                    },
                    None => None,
                };
                let (body, boundary, _) = build_message(
                    PORTAL,
                    Some(BYGGLOV),
                    &product,
                    SequenceType::Event,
                    std::slice::from_ref(&part),
                );
                let sent = due.unwrap_or_else(Instant::now);
                let result = timeout(REQUEST_TIMEOUT, client.send(Bytes::from(body), &boundary));
                let outcome = match result.await {
                    Ok(Ok(receipt)) if receipt.status.as_u16() == 202 && !receipt.duplicate => {
                        Ok(())
                    }
                    Ok(Ok(receipt)) => Err(format!(
                        "answer {} (duplicate: {})",
                        receipt.status, receipt.duplicate
                    )),
                    Ok(Err(err)) => Err(error_kind(&err)),
                    Err(_) => Err("timeout".to_owned()),
                };
                let done = Instant::now();
                let in_window = done >= window_start && done < window_end;
                match outcome {
                    Ok(()) => {
                        out.accepted += 1;
                        if in_window {
                            out.latencies.push(done - sent);
                            let second = (done - window_start).as_secs() as usize;
                            count_in_second(&mut out.per_second, second);
                        }
                    }
                    Err(kind) => {
                        if in_window {
                            *out.errors.entry(kind).or_default() += 1;
                        } else {
                            out.errors_outside += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (share, out)
        }));
    }
    let mut result = Intake {
        accepted_per_product: vec![0; products.len()],
        window: window_end - window_start,
        ..Intake::default()
    };
    for task in tasks {
        let (product, sender) = task.await.map_err(|err| err.to_string())?;
        result.accepted_per_product[product] += sender.accepted;
        result.accepted_total += sender.accepted;
        result.latencies.extend(sender.latencies);
        merge_counts(&mut result.per_second, &sender.per_second);
        merge_errors(&mut result.errors, sender.errors);
        result.errors_outside += sender.errors_outside;
    }
    Ok(result)
}

/// The open-loop schedule shared by the senders.
#[derive(Clone)]
struct Schedule {
    start: Instant,
    interval: Duration,
    /// The number of the next message to start.
    next: Arc<AtomicU64>,
}

impl Schedule {
    /// Takes the next message and waits until it is due; `None` if it is due only after
    /// `end`.
    async fn take(&self, end: Instant) -> Option<Instant> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.start + self.interval.mul_f64(n as f64);
        if due >= end {
            return None;
        }
        tokio::time::sleep_until(due.into()).await;
        Some(due)
    }
}

/// `size` bytes of XML-looking text.
fn filler(size: usize) -> Vec<u8> {
    let line = b"<rad>Exempla 1:23, nybyggnad av carport, 42 kvm.</rad>\n";
    line.iter().copied().cycle().take(size).collect()
}

// ---- Phase 3: fetch + ack ------------------------------------------------------------

/// What all fetchers recorded (or one fetcher, before merging).
#[derive(Default)]
pub struct Fetch {
    pub pairs: u64,
    /// The messages there were to fetch; `None` with intake alongside (until time-up).
    pub expected: Option<u64>,
    pub elapsed: Duration,
    pub list: Vec<Duration>,
    pub fetch: Vec<Duration>,
    pub ack: Vec<Duration>,
    /// Fetch + ack of one message, the unit of the phase's rate.
    pub pair: Vec<Duration>,
    pub errors: BTreeMap<String, u64>,
    pub empty_lists: u64,
    pub usage: Usage,
}

/// Phases 3 and 5: [`connect`], then [`fetch_until`] each client has its `expected` share
/// or `params.seconds` are up.
pub async fn fetch_ack(
    params: &Params,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
    expected: &[u64],
    pid: u32,
) -> Result<Fetch, String> {
    let clients = connect(url, tls, products).await?;
    fetch_until(
        params,
        clients,
        products,
        Some(expected),
        Instant::now(),
        pid,
    )
    .await
}

/// One business-system client per product, each connected (by an empty list), so that no
/// TLS handshake is measured (as in intake).
pub async fn connect(
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
) -> Result<Vec<ShsClient>, String> {
    let mailbox = mailbox()?;
    let mut connecting = Vec::new();
    for _ in products {
        let client = ShsClient::new(url, Arc::clone(tls)).map_err(|err| err.to_string())?;
        let mailbox = mailbox.clone();
        connecting.push(tokio::spawn(async move {
            let listed = timeout(REQUEST_TIMEOUT, client.list(&mailbox, "maxhits=0")).await;
            (client, listed)
        }));
    }
    let mut clients = Vec::new();
    for task in connecting {
        match task.await.map_err(|err| err.to_string())? {
            (client, Ok(Ok(_))) => clients.push(client),
            (_, Ok(Err(err))) => return Err(format!("a fetch client cannot list: {err}")),
            (_, Err(_)) => return Err("a fetch client timed out connecting".to_owned()),
        }
    }
    Ok(clients)
}

/// Client `j` of `clients` lists product `j`, fetches and acknowledges what it listed,
/// from `start` until it has its share of `expected` (without `expected`: until time-up)
/// or `params.seconds` after `start`; with the server's usage over that time.
pub async fn fetch_until(
    params: &Params,
    clients: Vec<ShsClient>,
    products: &[String],
    expected: Option<&[u64]>,
    start: Instant,
    pid: u32,
) -> Result<Fetch, String> {
    let mailbox = mailbox()?;
    let shares: Vec<u64> = match expected {
        Some(expected) => expected.to_vec(),
        None => vec![u64::MAX; products.len()],
    };
    let peak_reset = reset_peak(pid);
    let before = Sample::take(pid);
    let deadline = start + params.seconds;
    let rss = RssTrace::start(pid, start, deadline);
    let mut tasks = Vec::new();
    for ((client, product), &expected) in clients.into_iter().zip(products).zip(&shares) {
        let query = format!("producttype={product}&maxhits={MAX_HITS}");
        let (mailbox, min_size) = (mailbox.clone(), params.size);
        tasks.push(tokio::spawn(async move {
            let mut out = Fetch::default();
            // After a failed ack the message is FETCHED and listed only with filter=noack.
            let mut noack = false;
            while out.pairs < expected && Instant::now() < deadline {
                let t = Instant::now();
                let query = if noack {
                    format!("{query}&filter=noack")
                } else {
                    query.clone()
                };
                let list = match timeout(REQUEST_TIMEOUT, client.list(&mailbox, &query)).await {
                    Ok(Ok(list)) => list,
                    failed => {
                        count_error(&mut out.errors, "list", failed.map(|r| r.map(|_| ())));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                out.list.push(t.elapsed());
                if list.messages.is_empty() {
                    out.empty_lists += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                for message in &list.messages {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let t0 = Instant::now();
                    match timeout(REQUEST_TIMEOUT, client.fetch(&mailbox, &message.tx_id)).await {
                        Ok(Ok(body)) if body.len() >= min_size => {}
                        Ok(Ok(body)) => {
                            let kind = format!("fetch: short body ({} bytes)", body.len());
                            *out.errors.entry(kind).or_default() += 1;
                            continue;
                        }
                        failed => {
                            count_error(&mut out.errors, "fetch", failed.map(|r| r.map(|_| ())));
                            continue;
                        }
                    }
                    let t1 = Instant::now();
                    match timeout(REQUEST_TIMEOUT, client.ack(&mailbox, &message.tx_id)).await {
                        Ok(Ok(())) => {}
                        failed => {
                            count_error(&mut out.errors, "ack", failed);
                            noack = true;
                            continue;
                        }
                    }
                    let t2 = Instant::now();
                    out.fetch.push(t1 - t0);
                    out.ack.push(t2 - t1);
                    out.pair.push(t2 - t0);
                    out.pairs += 1;
                }
            }
            out.elapsed = start.elapsed();
            out
        }));
    }
    let mut result = Fetch {
        expected: expected.map(|expected| expected.iter().sum()),
        ..Fetch::default()
    };
    for task in tasks {
        let part = task.await.map_err(|err| err.to_string())?;
        result.pairs += part.pairs;
        result.elapsed = result.elapsed.max(part.elapsed);
        result.list.extend(part.list);
        result.fetch.extend(part.fetch);
        result.ack.extend(part.ack);
        result.pair.extend(part.pair);
        result.empty_lists += part.empty_lists;
        merge_errors(&mut result.errors, part.errors);
    }
    result.usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    result.usage.rss_trace_kib = rss.finish().await;
    Ok(result)
}

/// The business system's mailbox, which every fetch client lists.
fn mailbox() -> Result<Address, String> {
    BYGGLOV
        .parse()
        .map_err(|_| "bad mailbox address".to_owned())
}
