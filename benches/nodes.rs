//! Several nodes, one state: durable intake through one and through three `shsd`
//! processes sharing one PostgreSQL database (issue 8), in the same run, beside the
//! machine's raw single-writer fdatasync rate.
//!
//! Run: `cargo build --release && cargo bench --bench nodes` (Debian's `postgresql`
//! installed; the bench starts its own server with `fsync=on` in a temporary directory).
//!
//! For each node count, a fresh database, that many `shsd serve` processes (the release
//! binary beside this executable, as in the `load` bench), and `NODES_SENDERS` portal
//! clients on keep-alive mutual TLS, client `k` on node `k mod n` (a load balancer's
//! round robin), sending 10 KiB messages for a warm-up second and then the measured
//! window. Everything (the nodes, PostgreSQL, the clients) shares this machine's cores.
//!
//! Parameters (environment; default, bound): `NODES_SENDERS` (32, ≤ 256),
//! `NODES_SECONDS` (10, ≤ 60), `NODES_SIZE` (10240, ≤ 1 MiB), `NODES_COUNTS` ("1,3", each
//! ≤ 4). Without `--bench` (as `cargo test --all-targets` runs it): a smoke run of one
//! and two nodes for half a second each, or a skip line when there is no binary or no
//! PostgreSQL.

#[path = "common/mod.rs"]
mod common;
#[path = "load/disk.rs"]
mod disk;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{OutgoingPart, ShsClient, build_message};
use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::label::SequenceType;
use shsd::store::postgres::test_server::TestServer;

use common::Daemon;

const PORTAL: &str = "urn:X-shs:5590000001";
const BYGGLOV: &str = "urn:X-shs:2120000142.bygglov";
const PRODUCT: &str = "urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-000000000001";
const WARMUP: Duration = Duration::from_secs(1);

struct Params {
    smoke: bool,
    senders: usize,
    seconds: Duration,
    size: usize,
    counts: Vec<usize>,
}

fn main() -> ExitCode {
    let bench = std::env::args().skip(1).any(|arg| arg == "--bench");
    let binary = match common::binary_or_exit("nodes", bench) {
        Ok(binary) => binary,
        Err(exit) => return exit,
    };
    let params = match params(bench) {
        Ok(params) => params,
        Err(reason) => {
            eprintln!("nodes: {reason}");
            return ExitCode::FAILURE;
        }
    };
    let server = match TestServer::start_durable() {
        Ok(server) => server,
        Err(reason) if !bench => {
            println!("nodes: smoke run skipped: no PostgreSQL: {reason}");
            return ExitCode::SUCCESS;
        }
        Err(reason) => {
            eprintln!("nodes: cannot start PostgreSQL: {reason}");
            return ExitCode::FAILURE;
        }
    };
    match run(&binary, &params, &server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("nodes: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn params(bench: bool) -> Result<Params, String> {
    if !bench {
        return Ok(Params {
            smoke: true,
            senders: 4,
            seconds: Duration::from_millis(500),
            size: 10 * 1024,
            counts: vec![1, 2],
        });
    }
    let number = |name: &str, default: f64, max: f64| -> Result<f64, String> {
        match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| v.min(max))
                .ok_or_else(|| format!("{name}={text:?} is not a positive number")),
        }
    };
    let counts = match std::env::var("NODES_COUNTS") {
        Err(_) => vec![1, 3],
        Ok(text) => text
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=4).contains(n))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("NODES_COUNTS={text:?}: node counts 1 to 4, comma-separated"))?,
    };
    Ok(Params {
        smoke: false,
        senders: number("NODES_SENDERS", 32.0, 256.0)? as usize,
        seconds: Duration::from_secs_f64(number("NODES_SECONDS", 10.0, 60.0)?),
        size: number("NODES_SIZE", 10240.0, 1048576.0)? as usize,
        counts,
    })
}

/// One result row.
struct Row {
    nodes: usize,
    accepted: usize,
    rate: f64,
    latencies: Vec<Duration>,
    errors: usize,
}

fn run(binary: &Path, params: &Params, server: &TestServer) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let probe = Duration::from_millis(if params.smoke { 100 } else { 3000 });
    let raw = disk::raw_disk(dir.path(), probe)
        .map_err(|err| format!("raw fdatasync: {err}"))?
        .rate();
    let pki = ExamplePki::generate(PkiOptions::default()).map_err(|err| err.to_string())?;
    pki.write_to(&dir.path().join("certs"), false)
        .map_err(|err| err.to_string())?;
    let tls = pki
        .client_config(Some(&pki.portal))
        .map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let mut rows = Vec::new();
    for &nodes in &params.counts {
        let database = format!("nodes_{nodes}");
        let conninfo = runtime.block_on(server.create_database(&database))?;
        let config = dir.path().join(format!("{database}.toml"));
        std::fs::write(&config, config_text(&conninfo, params.senders))
            .map_err(|err| err.to_string())?;
        let mut daemons = Vec::new();
        for index in 0..nodes {
            let log = dir.path().join(format!("{database}-{index}.log"));
            daemons.push(Daemon::start(binary, &config, &log)?);
        }
        let ports: Vec<u16> = daemons.iter().map(|daemon| daemon.port).collect();
        eprintln!("nodes: {nodes} node(s) on ports {ports:?}");
        let row = runtime.block_on(intake(params, nodes, &ports, &tls));
        drop(daemons);
        rows.push(row?);
    }
    println!("## Several nodes on one PostgreSQL (`cargo bench --bench nodes`)");
    println!();
    println!(
        "{} — load average before: {} NODES_SENDERS={} NODES_SECONDS={} NODES_SIZE={}; \
         PostgreSQL with fsync=on on the same disk",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        params.senders,
        params.seconds.as_secs_f64(),
        params.size
    );
    println!();
    println!("raw single-writer fdatasync (4 KiB): {raw:.0}/s");
    println!();
    println!("| nodes | accepted/s | × raw fdatasync | p50 ms | p99 ms | max ms | errors |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    for row in &rows {
        let mut latencies = row.latencies.clone();
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {} |",
            row.nodes,
            row.rate,
            if raw > 0.0 { row.rate / raw } else { 0.0 },
            at(0.5),
            at(0.99),
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            row.errors
        );
    }
    if params.smoke && rows.iter().any(|row| row.accepted == 0) {
        return Err("the smoke run moved no message".to_owned());
    }
    Ok(())
}

/// The senders: client `k` on node `k mod n`, warm-up, then the measured window.
async fn intake(
    params: &Params,
    nodes: usize,
    ports: &[u16],
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Row, String> {
    let part = OutgoingPart {
        datapart_type: "xml".to_owned(),
        content_type: "text/xml".to_owned(),
        filename: Some("ansökan.xml".to_owned()),
        bytes: vec![b'x'; params.size],
    };
    let window_start = Instant::now() + if params.smoke { Duration::ZERO } else { WARMUP };
    let window_end = window_start + params.seconds;
    let mut tasks = Vec::new();
    for k in 0..params.senders {
        let url = format!("https://127.0.0.1:{}", ports[k % nodes]);
        let client = ShsClient::new(&url, Arc::clone(tls)).map_err(|err| err.to_string())?;
        let part = part.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < window_end {
                let (body, boundary, _) = build_message(
                    PORTAL,
                    Some(BYGGLOV),
                    PRODUCT,
                    SequenceType::Event,
                    std::slice::from_ref(&part),
                );
                let sent = Instant::now();
                let result = client.send(Bytes::from(body), &boundary).await;
                let done = Instant::now();
                let in_window = done >= window_start && done < window_end;
                match result {
                    Ok(receipt) if receipt.status.as_u16() == 202 => {
                        if in_window {
                            latencies.push(done - sent);
                        }
                    }
                    _ => {
                        errors += usize::from(in_window);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut row = Row {
        nodes,
        accepted: 0,
        rate: 0.0,
        latencies: Vec::new(),
        errors: 0,
    };
    for task in tasks {
        let (latencies, errors) = task.await.map_err(|err| err.to_string())?;
        row.latencies.extend(latencies);
        row.errors += errors;
    }
    row.accepted = row.latencies.len();
    row.rate = row.accepted as f64 / params.seconds.as_secs_f64();
    Ok(row)
}

/// The nodes' configuration: the example organisations on the database `conninfo`.
fn config_text(conninfo: &str, senders: usize) -> String {
    let head = common::config_head("nodes.rs", "bench-node");
    format!(
        r#"{head}[[organisations]]
number = "2120000142"
sub_addresses = ["bygglov"]
[[organisations]]
number = "5590000001"
[store]
engine = "postgres"
[store.postgres]
conninfo = "{conninfo}"
pool_size = 32
[limits]
max_requests_per_identity = {limit}
"#,
        limit = senders.max(64)
    )
}
