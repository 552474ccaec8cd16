//! End-to-end load: the real `shsd` binary on 127.0.0.1:0 with a sled store in a temporary
//! folder, driven over mutual TLS by concurrent [`ShsClient`]s (one keep-alive connection
//! each, as a portal or a business system holds), measured against the machine's raw
//! single-writer fdatasync rate — the ceiling of every durable-intake number.
//!
//! Run: `cargo build --release && cargo bench --bench load` (Linux: reads /proc).
//!
//! The bench builds nothing: it starts `shsd` from beside its own executable
//! (`target/release/deps/load-…` → `target/release/shsd`). With a shared `CARGO_TARGET_DIR`
//! that file is whatever was built last, so build right before running.
//!
//! Phases: (1) raw disk: 4 KiB write + `sync_data` in a loop; (2) intake: `LOAD_SENDERS`
//! portal clients send messages to `urn:X-shs:2120000142.bygglov` for a warm-up, then for
//! the measured window; (3) fetch+ack: `LOAD_FETCHERS` business-system clients each list
//! (`maxhits=50`) one product of their own and fetch + acknowledge what they listed, until
//! the mailbox is empty or the time is up. Senders spread their messages over one product
//! per fetcher, so the fetchers' shares are disjoint without coordination.
//!
//! Parameters (environment; default, bound): `LOAD_SENDERS` (32, ≤ 256), `LOAD_FETCHERS`
//! (= senders, ≤ 256), `LOAD_SECONDS` (10, ≤ 60: the intake window and the fetch bound),
//! `LOAD_WARMUP` (1, ≤ 10), `LOAD_SIZE` (10240 bytes of data part, ≤ 1 MiB),
//! `LOAD_DISK_SECONDS` (3, ≤ 10), `LOAD_DIR` (where the temporary folder goes; default the
//! system's temp dir — the disk being measured).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) this is a smoke run of a few
//! seconds against the binary beside it (`target/debug/shsd`), or a skip line if there is
//! none.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{ClientError, OutgoingPart, ShsClient, build_message};
use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::label::SequenceType;
use shsd::protocol::urn::Address;
use tokio::time::timeout;

const PORTAL: &str = "urn:X-shs:5590000001";
const BYGGLOV: &str = "urn:X-shs:2120000142.bygglov";
const MAX_HITS: usize = 50;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let bench = std::env::args().skip(1).any(|arg| arg == "--bench");
    let binary = match server_binary() {
        Ok(binary) => binary,
        Err(reason) if !bench => {
            println!("load: smoke run skipped: {reason}");
            return ExitCode::SUCCESS;
        }
        Err(reason) => {
            eprintln!(
                "load: {reason}\nload: run `cargo build --release` first (same CARGO_TARGET_DIR)"
            );
            return ExitCode::FAILURE;
        }
    };
    let result = Params::new(bench).and_then(|params| run(&binary, &params));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("load: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// `shsd` beside this executable's `deps/` folder.
fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|err| format!("no executable path: {err}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected executable path {}", exe.display()))?;
    let binary = profile_dir.join("shsd");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("no shsd binary at {}", binary.display()))
    }
}

struct Params {
    smoke: bool,
    senders: usize,
    fetchers: usize,
    seconds: Duration,
    warmup: Duration,
    size: usize,
    disk: Duration,
    dir: Option<PathBuf>,
    notes: Vec<String>,
}

impl Params {
    fn new(bench: bool) -> Result<Params, String> {
        if !bench {
            return Ok(Params {
                smoke: true,
                senders: 2,
                fetchers: 2,
                seconds: Duration::from_millis(700),
                warmup: Duration::from_millis(200),
                size: 10 * 1024,
                disk: Duration::from_millis(300),
                dir: None,
                notes: Vec::new(),
            });
        }
        let mut notes = Vec::new();
        let senders = env_number("LOAD_SENDERS", 32.0, 1.0, 256.0, &mut notes)? as usize;
        let fetchers = env_number("LOAD_FETCHERS", senders as f64, 1.0, 256.0, &mut notes)?;
        let seconds = env_number("LOAD_SECONDS", 10.0, 0.1, 60.0, &mut notes)?;
        let warmup = env_number("LOAD_WARMUP", 1.0, 0.0, 10.0, &mut notes)?;
        let size = env_number("LOAD_SIZE", 10240.0, 1.0, 1048576.0, &mut notes)?;
        let disk = env_number("LOAD_DISK_SECONDS", 3.0, 0.1, 10.0, &mut notes)?;
        Ok(Params {
            smoke: false,
            senders,
            fetchers: fetchers as usize,
            seconds: Duration::from_secs_f64(seconds),
            warmup: Duration::from_secs_f64(warmup),
            size: size as usize,
            disk: Duration::from_secs_f64(disk),
            dir: std::env::var_os("LOAD_DIR").map(PathBuf::from),
            notes,
        })
    }

    fn describe(&self) -> String {
        format!(
            "LOAD_SENDERS={} LOAD_FETCHERS={} LOAD_SECONDS={} LOAD_WARMUP={} LOAD_SIZE={} \
             LOAD_DISK_SECONDS={}",
            self.senders,
            self.fetchers,
            self.seconds.as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.size,
            self.disk.as_secs_f64()
        )
    }
}

/// A number from the environment: unparsable is an error, out of bounds is clamped.
fn env_number(
    name: &str,
    default: f64,
    min: f64,
    max: f64,
    notes: &mut Vec<String>,
) -> Result<f64, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    let value: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| format!("{name}={text:?} is not a number"))?;
    let clamped = value.clamp(min, max);
    if clamped != value {
        notes.push(format!(
            "{name}={text} is out of [{min}, {max}]: using {clamped}"
        ));
    }
    Ok(clamped)
}

fn run(binary: &Path, params: &Params) -> Result<(), String> {
    let started_at = chrono::Utc::now();
    let load_before = read_trimmed("/proc/loadavg");
    for note in &params.notes {
        eprintln!("load: {note}");
    }
    eprintln!("load: {} with {}", binary.display(), params.describe());
    let dir = match &params.dir {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .map_err(|err| format!("temporary folder: {err}"))?;

    eprintln!("load: phase 1, raw fdatasync in {}", dir.path().display());
    let disk = raw_disk(dir.path(), params.disk).map_err(|err| format!("raw disk: {err}"))?;

    let pki = ExamplePki::generate(PkiOptions::default()).map_err(|err| err.to_string())?;
    pki.write_to(&dir.path().join("certs"), false)
        .map_err(|err| err.to_string())?;
    let config = dir.path().join("shsd.toml");
    let identity_limit = params.senders.max(params.fetchers).max(64);
    std::fs::write(&config, config_text(identity_limit)).map_err(|err| err.to_string())?;
    let portal_tls = pki
        .client_config(Some(&pki.portal))
        .map_err(|e| e.to_string())?;
    let bygglov_tls = pki
        .client_config(Some(&pki.bygglov))
        .map_err(|e| e.to_string())?;

    let server = Server::start(binary, &config)?;
    let url = format!("https://127.0.0.1:{}", server.port);
    let pid = server.child.id();
    let runtime = tokio::runtime::Runtime::new().map_err(|err| err.to_string())?;
    let products: Vec<String> = (0..params.fetchers)
        .map(|j| format!("urn:X-shs:6b4a4e2c-0f8b-4c1d-9e5a-{j:012x}"))
        .collect();
    eprintln!("load: phase 2, intake on {url} (server pid {pid})");
    let intake = runtime.block_on(intake(params, &url, &portal_tls, &products, pid))?;
    eprintln!("load: phase 3, fetch+ack");
    let expected = intake.accepted_per_product.clone();
    let fetch = runtime.block_on(fetch_ack(
        params,
        &url,
        &bygglov_tls,
        &products,
        &expected,
        pid,
    ))?;
    drop(runtime);
    let stopped = server.stop();
    // Again, to show how much the shared disk moved during the run.
    let disk_after = raw_disk(dir.path(), params.disk).map_err(|err| format!("raw disk: {err}"))?;

    let report = Report {
        params,
        started_at,
        load_before,
        load_after: read_trimmed("/proc/loadavg"),
        binary,
        disk_dir: dir.path(),
        disk: &disk,
        disk_after: &disk_after,
        intake: &intake,
        fetch: &fetch,
        identity_limit,
    };
    report.print();
    let (stop_time, status, log) = stopped?;
    println!(
        "- Shutdown (SIGTERM → exit, drain + flush): {:.2} s, {status}.",
        stop_time.as_secs_f64()
    );
    if !log.is_empty() {
        println!(
            "- Server logged {} warning/error lines; first ones:",
            log.len()
        );
        for line in log.iter().take(5) {
            println!("  `{}`", line.chars().take(300).collect::<String>());
        }
    }
    if !status.success() {
        return Err(format!("shsd exited with {status}"));
    }
    if params.smoke && (intake.accepted_total == 0 || fetch.pairs == 0) {
        return Err("the smoke run moved no message".to_owned());
    }
    Ok(())
}

fn config_text(identity_limit: usize) -> String {
    format!(
        r#"# Written by benches/load.rs.
[node]
node_id = "load-node"
[listen]
address = "127.0.0.1:0"
[tls]
certificate = "certs/server.pem"
private_key = "certs/server-key.pem"
client_cas = ["certs/ca.pem"]
crls = ["certs/ca-crl.pem"]
[[organisations]]
number = "2120000142"
name = "Exempelkommun"
sub_addresses = ["bygglov", "socialtjanst"]
[[organisations]]
number = "5590000001"
name = "Exempelportalen AB"
[store]
engine = "sled"
path = "store"
[limits]
# All senders share the portal's identity; the default (64) would answer 503 above that.
max_requests_per_identity = {identity_limit}
[log]
format = "json"
# Warnings, plus the line naming the port.
filter = "warn,shsd::app=info"
"#
    )
}

// ---- Phase 1: raw disk ---------------------------------------------------------------

struct Disk {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

fn raw_disk(dir: &Path, duration: Duration) -> std::io::Result<Disk> {
    let path = dir.join("fdatasync-probe");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)?;
    let block = [0xA5u8; 4096];
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(Disk { latencies, elapsed })
}

// ---- Phase 2: intake -----------------------------------------------------------------

#[derive(Default)]
struct Intake {
    latencies: Vec<Duration>,
    per_second: Vec<u64>,
    errors: BTreeMap<String, u64>,
    errors_outside: u64,
    accepted_per_product: Vec<u64>,
    accepted_total: u64,
    window: Duration,
    usage: Usage,
}

#[derive(Default)]
struct Sender {
    latencies: Vec<Duration>,
    per_second: Vec<u64>,
    errors: BTreeMap<String, u64>,
    errors_outside: u64,
    accepted: u64,
}

async fn intake(
    params: &Params,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
    pid: u32,
) -> Result<Intake, String> {
    let peak_reset = reset_peak(pid);
    let start = Instant::now();
    let window_start = start + params.warmup;
    let window_end = window_start + params.seconds;
    let monitor = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        let before = Sample::take(pid);
        tokio::time::sleep_until(window_end.into()).await;
        (before, Sample::take(pid))
    });
    let part = OutgoingPart {
        datapart_type: "xml".to_owned(),
        content_type: "text/xml".to_owned(),
        filename: Some("bygglovsansökan.xml".to_owned()),
        bytes: filler(params.size),
    };
    let mut tasks = Vec::new();
    for k in 0..params.senders {
        let client = ShsClient::new(url, Arc::clone(tls)).map_err(|err| err.to_string())?;
        let share = k % products.len();
        let product = products[share].clone();
        let part = part.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Sender::default();
            while Instant::now() < window_end {
                let (body, boundary, _) = build_message(
                    PORTAL,
                    Some(BYGGLOV),
                    &product,
                    SequenceType::Event,
                    std::slice::from_ref(&part),
                );
                let sent = Instant::now();
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
                            if out.per_second.len() <= second {
                                out.per_second.resize(second + 1, 0);
                            }
                            out.per_second[second] += 1;
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
        window: params.seconds,
        ..Intake::default()
    };
    for task in tasks {
        let (product, sender) = task.await.map_err(|err| err.to_string())?;
        result.accepted_per_product[product] += sender.accepted;
        result.accepted_total += sender.accepted;
        result.latencies.extend(sender.latencies);
        merge_counts(&mut result.per_second, &sender.per_second);
        for (kind, n) in sender.errors {
            *result.errors.entry(kind).or_default() += n;
        }
        result.errors_outside += sender.errors_outside;
    }
    let (before, after) = monitor.await.map_err(|err| err.to_string())?;
    result.usage = Usage::between(&before, &after, pid, peak_reset);
    Ok(result)
}

/// `size` bytes of XML-looking text.
fn filler(size: usize) -> Vec<u8> {
    let line = b"<rad>Exempla 1:23, nybyggnad av carport, 42 kvm.</rad>\n";
    line.iter().copied().cycle().take(size).collect()
}

fn merge_counts(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (total, n) in into.iter_mut().zip(from) {
        *total += n;
    }
}

fn error_kind(err: &ClientError) -> String {
    let text = match err {
        ClientError::Refused { status, code, .. } => format!("{} {code}", status.as_u16()),
        other => other.to_string(),
    };
    text.chars().take(100).collect()
}

// ---- Phase 3: fetch + ack ------------------------------------------------------------

#[derive(Default)]
struct Fetch {
    pairs: u64,
    expected: u64,
    elapsed: Duration,
    list: Vec<Duration>,
    fetch: Vec<Duration>,
    ack: Vec<Duration>,
    pair: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    empty_lists: u64,
    usage: Usage,
}

async fn fetch_ack(
    params: &Params,
    url: &str,
    tls: &Arc<rustls::ClientConfig>,
    products: &[String],
    expected: &[u64],
    pid: u32,
) -> Result<Fetch, String> {
    let mailbox: Address = BYGGLOV.parse().map_err(|_| "bad mailbox address")?;
    // Connect every client first, so that no TLS handshake is measured (as in intake).
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
    let peak_reset = reset_peak(pid);
    let before = Sample::take(pid);
    let start = Instant::now();
    let deadline = start + params.seconds;
    let mut tasks = Vec::new();
    for ((client, product), &expected) in clients.into_iter().zip(products).zip(expected) {
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
        expected: expected.iter().sum(),
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
        for (kind, n) in part.errors {
            *result.errors.entry(kind).or_default() += n;
        }
    }
    result.usage = Usage::between(&before, &Sample::take(pid), pid, peak_reset);
    Ok(result)
}

type Timed<T> = Result<Result<T, ClientError>, tokio::time::error::Elapsed>;

fn count_error(errors: &mut BTreeMap<String, u64>, what: &str, failed: Timed<()>) {
    let kind = match failed {
        Ok(Ok(())) => return,
        Ok(Err(err)) => error_kind(&err),
        Err(_) => "timeout".to_owned(),
    };
    *errors.entry(format!("{what}: {kind}")).or_default() += 1;
}

// ---- The server process --------------------------------------------------------------

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `shsd serve` and waits for the line naming its port.
    fn start(binary: &Path, config: &Path) -> Result<Server, String> {
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = port_tx.as_ref().and_then(|_| listening_port(&line)) {
                    let _ = port_tx.take().map(|tx| tx.send(port));
                    continue;
                }
                if line.contains(r#""level":"INFO""#) {
                    continue;
                }
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() < 1000 {
                    log.push(line);
                }
            }
        });
        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => Ok(Server { child, port, log }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let log = log
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .join("\n");
                Err(format!(
                    "shsd did not report its port ({status}); its stderr:\n{log}"
                ))
            }
        }
    }

    /// SIGTERM, then waits for the drain and flush; returns the time taken, the exit status
    /// and what the server logged.
    fn stop(mut self) -> Result<(Duration, std::process::ExitStatus, Vec<String>), String> {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        if !signalled.is_ok_and(|status| status.success()) {
            return Err(format!("could not send SIGTERM to {pid}"));
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let log = std::mem::take(
                        &mut *self.log.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    return Ok((started.elapsed(), status, log));
                }
                Ok(None) if started.elapsed() < STOP_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => return Err("shsd did not stop within 60 s of SIGTERM".to_owned()),
                Err(err) => return Err(format!("waiting for shsd: {err}")),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Does nothing once the child has been waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of a `listening on <address> (shs)` line (JSON or plain).
fn listening_port(line: &str) -> Option<u16> {
    let message = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|value| value["fields"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| line.to_owned());
    let rest = message.split("listening on ").nth(1)?;
    let address = rest.split_whitespace().next()?;
    address
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.port())
}

// ---- /proc -----------------------------------------------------------------------------

/// CPU seconds of the server and of this process, and the server's bytes written.
#[derive(Default, Clone, Copy)]
struct Sample {
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
    written: Option<u64>,
    syscall_written: Option<u64>,
    at: Option<Instant>,
}

impl Sample {
    fn take(pid: u32) -> Sample {
        let proc = format!("/proc/{pid}");
        Sample {
            server_cpu: cpu_seconds(&proc),
            own_cpu: cpu_seconds("/proc/self"),
            written: field_of(&format!("{proc}/io"), "write_bytes:"),
            syscall_written: field_of(&format!("{proc}/io"), "wchar:"),
            at: Some(Instant::now()),
        }
    }
}

/// What the server (and this process) used during a phase.
#[derive(Default)]
struct Usage {
    server_cpu: Option<f64>,
    own_cpu: Option<f64>,
    written: Option<u64>,
    syscall_written: Option<u64>,
    wall: f64,
    peak_rss_kib: Option<u64>,
    peak_reset: bool,
}

impl Usage {
    fn between(before: &Sample, after: &Sample, pid: u32, peak_reset: bool) -> Usage {
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        Usage {
            server_cpu: diff(before.server_cpu, after.server_cpu),
            own_cpu: diff(before.own_cpu, after.own_cpu),
            written: after.written.zip(before.written).map(|(b, a)| b - a),
            syscall_written: after
                .syscall_written
                .zip(before.syscall_written)
                .map(|(b, a)| b - a),
            wall: match (before.at, after.at) {
                (Some(a), Some(b)) => (b - a).as_secs_f64(),
                _ => 0.0,
            },
            peak_rss_kib: field_of(&format!("/proc/{pid}/status"), "VmHWM:"),
            peak_reset,
        }
    }
}

/// utime + stime of `/proc/<pid>/stat`, in seconds.
fn cpu_seconds(proc: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("{proc}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The first number after `key` in a `key: value [kB]` file.
fn field_of(path: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resets the server's peak RSS (VmHWM) so that it covers one phase.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default()
}

// ---- The report ------------------------------------------------------------------------

struct Report<'a> {
    params: &'a Params,
    started_at: chrono::DateTime<chrono::Utc>,
    load_before: String,
    load_after: String,
    binary: &'a Path,
    disk_dir: &'a Path,
    disk: &'a Disk,
    disk_after: &'a Disk,
    intake: &'a Intake,
    fetch: &'a Fetch,
    identity_limit: usize,
}

impl Report<'_> {
    fn print(&self) {
        let (p, disk, intake, fetch) = (self.params, self.disk, self.intake, self.fetch);
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let built = std::fs::metadata(self.binary)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%H:%M UTC")
                    .to_string()
            })
            .unwrap_or_default();
        let kind = if p.smoke {
            " (smoke run: not a measurement)"
        } else {
            ""
        };
        println!();
        println!(
            "### shsd end-to-end load, {}{kind}",
            self.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        println!();
        println!("`{} cargo bench --bench load`", p.describe());
        println!();
        println!(
            "Machine: {model}, {cpus} CPUs (nproc), Linux {}; load average {} before, {} after. \
             Binary {} (built {built}); store and probe in {}. sled store, \
             max_requests_per_identity {}. The clients run on the same machine.",
            read_trimmed("/proc/sys/kernel/osrelease"),
            first_three(&self.load_before),
            first_three(&self.load_after),
            self.binary.display(),
            self.disk_dir.display(),
            self.identity_limit,
        );
        println!();
        println!(
            "| phase | ops/s | p50 ms | p90 ms | p99 ms | max ms | ops | errors | server CPU | server peak RSS |"
        );
        println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        let disk_rate = disk.latencies.len() as f64 / disk.elapsed.as_secs_f64();
        row(
            "raw fdatasync, 4 KiB append, 1 writer",
            Some(disk_rate),
            &disk.latencies,
            0,
            None,
        );
        let after = self.disk_after;
        row(
            "raw fdatasync again, after the run",
            Some(after.latencies.len() as f64 / after.elapsed.as_secs_f64()),
            &after.latencies,
            0,
            None,
        );
        let intake_rate = intake.latencies.len() as f64 / intake.window.as_secs_f64();
        let intake_errors = intake.errors.values().sum();
        row(
            &format!(
                "intake {} B, {} senders ({:.2}× fdatasync/s)",
                p.size,
                p.senders,
                intake_rate / disk_rate
            ),
            Some(intake_rate),
            &intake.latencies,
            intake_errors,
            Some(&intake.usage),
        );
        let fetch_rate = fetch.pairs as f64 / fetch.elapsed.as_secs_f64().max(1e-9);
        let fetch_errors = fetch.errors.values().sum();
        row(
            &format!("fetch+ack pairs, {} clients", p.fetchers),
            Some(fetch_rate),
            &fetch.pair,
            fetch_errors,
            Some(&fetch.usage),
        );
        row(
            &format!("  list (maxhits={MAX_HITS}, one product)"),
            None,
            &fetch.list,
            0,
            None,
        );
        row("  fetch", None, &fetch.fetch, 0, None);
        row(
            "  ack (durable, makes a confirm)",
            None,
            &fetch.ack,
            0,
            None,
        );
        println!();
        let seconds: Vec<String> = intake.per_second.iter().map(u64::to_string).collect();
        println!("- Intake per second of the window: {}.", seconds.join(" "));
        println!(
            "- Intake accepted {} messages in all (warm-up and tail included), {} errors outside the window.",
            intake.accepted_total, intake.errors_outside
        );
        usage_line(
            "Intake window",
            &intake.usage,
            intake.latencies.len() as u64,
        );
        println!(
            "- Fetch+ack: {} of {} messages in {:.2} s{}; {} empty lists.",
            fetch.pairs,
            fetch.expected,
            fetch.elapsed.as_secs_f64(),
            if fetch.pairs == fetch.expected {
                ", mailbox emptied"
            } else {
                ", time up"
            },
            fetch.empty_lists
        );
        usage_line("Fetch+ack", &fetch.usage, fetch.pairs);
        for (kind, n) in intake.errors.iter().chain(&fetch.errors) {
            println!("- Error ×{n}: {kind}");
        }
    }
}

fn row(name: &str, rate: Option<f64>, latencies: &[Duration], errors: u64, usage: Option<&Usage>) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| -> String {
        if sorted.is_empty() {
            return "–".to_owned();
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        ms(sorted[rank - 1])
    };
    let (cpu, rss) = match usage {
        Some(u) => (
            u.server_cpu.map_or("–".to_owned(), |s| {
                format!("{s:.1} s ({:.2} cores)", s / u.wall.max(1e-9))
            }),
            u.peak_rss_kib.map_or("–".to_owned(), |k| {
                format!(
                    "{:.0} MiB{}",
                    k as f64 / 1024.0,
                    if u.peak_reset { "" } else { " (since start)" }
                )
            }),
        ),
        None => ("–".to_owned(), "–".to_owned()),
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {errors} | {cpu} | {rss} |",
        rate.map_or("–".to_owned(), |r| format!("{r:.0}")),
        pick(0.50),
        pick(0.90),
        pick(0.99),
        pick(1.0),
        latencies.len(),
    )
}

fn usage_line(phase: &str, usage: &Usage, ops: u64) {
    let cpu = |s: Option<f64>| s.map_or("?".to_owned(), |s| format!("{s:.1} s"));
    let amount = |bytes: Option<u64>| {
        bytes.map_or("?".to_owned(), |bytes| {
            format!(
                "{:.0} MiB ({:.0} KiB per op)",
                bytes as f64 / 1048576.0,
                bytes as f64 / 1024.0 / ops.max(1) as f64
            )
        })
    };
    println!(
        "- {phase}: {:.2} s wall; server CPU {}, bench process (the clients) CPU {}; server \
         write() calls {}, storage writes {}.",
        usage.wall,
        cpu(usage.server_cpu),
        cpu(usage.own_cpu),
        amount(usage.syscall_written),
        amount(usage.written),
    );
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

fn first_three(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
