//! The handshake mode (`LOAD_HANDSHAKES=1`): instead of phases 2 and 3, `LOAD_SENDERS`
//! clients each open a fresh mutual-TLS connection (full handshake: session resumption is
//! off), make one small request on it (list the business system's mailbox with
//! `maxhits=0`) and close it, in a loop for `LOAD_SECONDS`. The report gives connections per
//! second and per second of server CPU — the target is at least 2 500 handshakes
//! per server core-second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shsd::client::ShsClient;
use shsd::protocol::urn::Address;
use tokio::time::timeout;

use crate::Params;
use crate::phases::BYGGLOV;
use crate::proc::{Sample, Usage, reset_peak};
use crate::stats::{count_error, merge_errors};

/// What the connecting clients recorded.
#[derive(Default)]
pub struct Handshakes {
    /// Connect + handshake + one request, per connection.
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, u64>,
    pub usage: Usage,
}

/// Opens, uses once and closes connections from `params.senders` clients for
/// `params.seconds`.
pub async fn handshakes(
    params: &Params,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    pid: u32,
) -> Result<Handshakes, String> {
    let mut config = (**tls).clone();
    config.resumption = rustls::client::Resumption::disabled();
    let tls = Arc::new(config);
    let mailbox: Address = BYGGLOV.parse().map_err(|_| "bad mailbox address")?;
    let peak_reset = reset_peak(pid);
    let before = Sample::take(pid);
    let end = Instant::now() + params.seconds;
    let mut tasks = Vec::new();
    for _ in 0..params.senders {
        let (url, tls, mailbox) = (url.to_owned(), Arc::clone(&tls), mailbox.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Handshakes::default();
            while Instant::now() < end {
                let started = Instant::now();
                let client = match ShsClient::new(&url, Arc::clone(&tls)) {
                    Ok(client) => client,
                    Err(err) => {
                        *out.errors.entry(err.to_string()).or_default() += 1;
                        break;
                    }
                };
                let listed = timeout(Duration::from_secs(30), client.list(&mailbox, "maxhits=0"));
                match listed.await {
                    Ok(Ok(_)) => out.latencies.push(started.elapsed()),
                    failed => {
                        count_error(
                            &mut out.errors,
                            "connect+list",
                            failed.map(|r| r.map(|_| ())),
                        );
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        }));
    }
    let mut result = Handshakes::default();
    for task in tasks {
        let part = task.await.map_err(|err| err.to_string())?;
        result.latencies.extend(part.latencies);
        merge_errors(&mut result.errors, part.errors);
    }
    result.usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    Ok(result)
}

/// The mode's report lines, after the report header.
pub fn print(params: &Params, result: &Handshakes) {
    let usage = &result.usage;
    let n = result.latencies.len() as f64;
    let rate = n / usage.wall.max(1e-9);
    let per_cpu = usage
        .server_cpu
        .map_or("?".to_owned(), |cpu| format!("{:.0}", n / cpu.max(1e-9)));
    println!("| mode | connections/s | per server CPU-second | server CPU | errors |");
    println!("|---|--:|--:|--:|--:|");
    println!(
        "| {} clients, new connection + full mTLS handshake + one list each | {rate:.0} | {per_cpu} | {} | {} |",
        params.senders,
        usage.server_cpu.map_or("?".to_owned(), |s| format!(
            "{s:.1} s ({:.2} cores)",
            s / usage.wall.max(1e-9)
        )),
        result.errors.values().sum::<u64>(),
    );
    println!();
    crate::report::latency_line("Connect + handshake + list", &result.latencies);
    for (kind, count) in &result.errors {
        println!("- Error ×{count}: {kind}");
    }
}
