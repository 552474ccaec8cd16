//! The crash test (spec §8): the real `shsd` binary is killed with SIGKILL at random
//! moments while 16 clients send to it, and restarted on the same store, at least 20 times.
//! Afterwards every message that got a 202 must be listed and fetch byte-identical, nothing
//! half-stored may be visible, routing must have resumed, and acknowledgements (with their
//! confirms) must survive one more kill.
//!
//! What `kill -9` proves: the process dies between any two instructions, but the kernel's
//! page cache survives it, so this checks atomicity and recovery (sled's log replay, the
//! removal of interrupted uploads, resumed routing jobs), not the fdatasync that a power cut
//! needs. That part is checked by tracing the syscalls (see `src/store/sled.rs`).
//!
//! Every tx.id is derived from the seed, and every message's content from its tx.id alone,
//! so the test keeps no payloads: it recomputes what each fetched message must contain.
//! Knobs: `SHSD_CRASH_SEED` (kill delays and tx.ids), `SHSD_CRASH_CYCLES` (default 24).
//! On failure the store and the daemon's logs are kept under `CARGO_TARGET_TMPDIR`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use shsd::client::{ClientError, OutgoingPart, ShsClient};
use shsd::pki::{ExamplePki, PkiItem, PkiOptions};
use shsd::protocol::label::Label;
use shsd::protocol::management::{ManagementBody, ManagementDocument};
use shsd::protocol::mime::{Limits, split_message};
use shsd::protocol::urn::Address;
use tokio::sync::watch;

use crate::harness::{BYGGLOV, PORTAL, config_text, message_with_tx};

const SOCIALTJANST: &str = "urn:X-shs:2120000142.socialtjanst";
const MAILBOXES: [&str; 3] = [BYGGLOV, SOCIALTJANST, PORTAL];
const SENDERS: usize = 16;
const DEFAULT_CYCLES: u64 = 24;
const DEFAULT_SEED: u64 = 0x5348_5331_3230_0001;
/// The daemon's own filter: its port line and the store's notes, warnings from the rest.
const LOG_FILTER: &str = "warn,shsd::app=info,shsd::store=info";
const MAX_HITS: usize = 10_000;
const LIST_QUERY: &str = "filter=noack&maxhits=10000";
/// How long a restarted node may take to list every accepted message (resumed jobs).
const LISTED_WITHIN: Duration = Duration::from_secs(15);
const ACK_SAMPLE: usize = 40;
const RESEND_SAMPLE: usize = 16;
/// A hung daemon fails the test instead of hanging it (the client has no timeouts).
const WATCHDOG: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_accepted_message() {
    let run = tokio::time::timeout(WATCHDOG, kill_9_cycles()).await;
    run.expect("the crash test took longer than its watchdog");
}

async fn kill_9_cycles() {
    let started = Instant::now();
    let seed = env_number("SHSD_CRASH_SEED", DEFAULT_SEED);
    let cycles = env_number("SHSD_CRASH_CYCLES", DEFAULT_CYCLES).max(1);
    let mut rng = XorShift::new(seed);
    let (dir, pki) = node_folder();
    let shared = Arc::new(Shared::default());
    let (live, live_rx) = watch::channel(None);
    let senders: Vec<_> = (0..SENDERS)
        .map(|index| {
            let lane = Lane::of(index);
            let tls = pki.client_config(Some(lane.sender(&pki))).expect("tls");
            tokio::spawn(sender(
                index,
                seed,
                tls,
                live_rx.clone(),
                Arc::clone(&shared),
            ))
        })
        .collect();

    // The kill cycles: start, let the senders work for 50–400 ms, SIGKILL. Every fourth
    // cycle the daemon is also killed once while it starts (recovery, cleanup, resumed jobs).
    let mut generation = 0;
    let mut startup_kills = 0;
    let mut slowest_start = Duration::ZERO;
    for cycle in 0..cycles {
        if cycle % 4 == 3 {
            generation += 1;
            let early = Duration::from_millis(rng.below(slowest_start.as_millis() as u64 + 20));
            let mut child = Daemon::spawn(dir.path(), generation);
            tokio::time::sleep(early).await;
            sigkill(&mut child);
            startup_kills += 1;
        }
        generation += 1;
        let daemon = Daemon::start(dir.path(), generation).await;
        slowest_start = slowest_start.max(daemon.startup);
        live.send_replace(Some((generation, daemon.port)));
        tokio::time::sleep(Duration::from_millis(50 + rng.below(351))).await;
        shared.killed.store(generation, Ordering::SeqCst);
        live.send_replace(None);
        daemon.kill();
    }

    // The last start runs clean: the senders go on for a while, then stop on their own.
    generation += 1;
    let daemon = Daemon::start(dir.path(), generation).await;
    live.send_replace(Some((generation, daemon.port)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    shared.stop.store(true, Ordering::SeqCst);
    live.send_replace(None);
    for task in senders {
        task.await.expect("sender task");
    }
    let ledger = shared.ledger.lock().unwrap().clone();
    let mut findings = std::mem::take(&mut *shared.unexpected.lock().unwrap());

    let url = format!("https://127.0.0.1:{}", daemon.port);
    let readers = Readers::new(&pki, &url);
    let deadline = daemon.listening_at + LISTED_WITHIN;
    let verify = |mailbox| verify_mailbox(readers.of(mailbox), mailbox, &ledger, deadline);
    let (bygglov, socialtjanst, portal) =
        tokio::join!(verify(BYGGLOV), verify(SOCIALTJANST), verify(PORTAL));
    let reports = [bygglov, socialtjanst, portal];
    let mut verified = 0;
    let mut visible_unknown = 0;
    let mut listed_after = Duration::ZERO;
    let mut visible = HashSet::new();
    for report in reports {
        verified += report.verified;
        visible_unknown += report.visible_unknown;
        listed_after = listed_after.max(report.listed_after);
        visible.extend(report.listed);
        findings.extend(report.findings);
    }

    // The in-flight messages that are not visible: sent again, a stored one is a
    // duplicate, and a stored one must be listed (else its routing job was lost).
    let (stored_hidden, more) = resend_unknown(&pki, &readers, &url, &ledger, &visible).await;
    findings.extend(more);

    // Acknowledge a sample of the portal's messages: each stores a confirm for the portal.
    let mut acked: Vec<(&String, &Sent)> = ledger
        .iter()
        .filter(|(_, sent)| sent.outcome == Outcome::Accepted && sent.lane.from() == PORTAL)
        .collect();
    acked.sort_by_key(|(tx_id, _)| tx_id.as_str());
    let step = (acked.len() / ACK_SAMPLE).max(1);
    let acked: Vec<_> = acked.into_iter().step_by(step).take(ACK_SAMPLE).collect();
    for (tx_id, sent) in &acked {
        let mailbox = address(sent.lane.to());
        if let Err(err) = readers.of(sent.lane.to()).ack(&mailbox, tx_id).await {
            findings.push(format!("ack of {tx_id} in {}: {err}", sent.lane.to()));
        }
    }
    let acked_ids: HashSet<&str> = acked.iter().map(|(tx_id, _)| tx_id.as_str()).collect();
    findings.extend(check_confirms(&readers, &acked_ids, false).await);

    // One more SIGKILL right after the last ack answered: acks and confirms are durable.
    daemon.kill();
    generation += 1;
    let daemon = Daemon::start(dir.path(), generation).await;
    let url = format!("https://127.0.0.1:{}", daemon.port);
    let readers = Readers::new(&pki, &url);
    findings.extend(check_after_ack_kill(&readers, &ledger, &acked_ids).await);
    findings.extend(check_confirms(&readers, &acked_ids, true).await);
    findings.extend(check_resend(&pki, &url, &ledger).await);
    daemon.kill();

    let count = |outcome| ledger.values().filter(|s| s.outcome == outcome).count();
    let logs = read_logs(&dir.path().join("logs"));
    println!(
        "crash summary: seed={seed:#x} cycles={cycles} startup-kills={startup_kills} sent={} \
         accepted={} in-flight-unknown={} (visible after restart: {visible_unknown}, \
         stored but hidden: {stored_hidden}) verified={verified} acked={} \
         interrupted-uploads-removed={} slowest-start={slowest_start:?} \
         all-listed-after={listed_after:?} log-warnings={} elapsed={:?}",
        ledger.len(),
        count(Outcome::Accepted),
        count(Outcome::Unknown),
        acked.len(),
        logs.removed_uploads,
        logs.warnings.len(),
        started.elapsed(),
    );
    for line in logs.warnings.iter().take(10) {
        println!("  daemon log: {line}");
    }
    if !findings.is_empty() {
        let kept = dir.keep();
        for finding in findings.iter().take(40) {
            println!("FINDING: {finding}");
        }
        panic!(
            "{} findings (seed {seed:#x}); store and logs kept in {}",
            findings.len(),
            kept.display()
        );
    }
    assert!(
        count(Outcome::Accepted) > 100,
        "too few messages to mean anything"
    );
}

/// The half of §8 that no kill can show. sled's `apply_batch` rolls its io buffer, so every
/// batch reaches the page cache at once, and the page cache survives SIGKILL: the test
/// above passes even if shsd never syncs (checked by making `accept` skip its wait). What
/// a power cut needs is a disk sync of the store between taking a message and answering.
/// So the daemon is traced, and for each of several sequential sends (202) and acks (200)
/// the group committer's thread must fdatasync (or fsync) `store/db`, the call beginning and
/// returning within that request.
/// Needs `strace` (scripts/test installs it) and ptrace of a child; `SHSD_SKIP_STRACE=1`
/// skips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_202_and_ack_waits_for_a_disk_sync() {
    if std::env::var_os("SHSD_SKIP_STRACE").is_some() {
        println!("skipped: SHSD_SKIP_STRACE is set");
        return;
    }
    let run = tokio::time::timeout(WATCHDOG, traced_requests()).await;
    run.expect("the strace test took longer than its watchdog");
}

async fn traced_requests() {
    const REQUESTS: u64 = 8;
    let (dir, pki) = node_folder();
    let traced = Traced::start(dir.path()).await;
    let pid = traced.pid;
    // A thread names itself once it runs, which may be after the port line.
    let since = Instant::now();
    let sync_thread = loop {
        if let Some(tid) = thread_named(pid, "shsd-store-sync") {
            break tid;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "no shsd-store-sync thread"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let url = format!("https://127.0.0.1:{}", traced.port);
    let readers = Readers::new(&pki, &url);
    let portal = pki.client_config(Some(&pki.portal)).expect("tls");
    let portal = ShsClient::new(&url, portal).expect("client");
    let mut windows = Vec::new();
    let tx_ids: Vec<_> = (0..REQUESTS).map(|seq| tx_id(0x57ace, 0, seq)).collect();
    for tx_id in &tx_ids {
        let (body, boundary, _) = message_with_tx(PORTAL, BYGGLOV, tx_id, &parts_for(tx_id));
        let start = unix_now();
        let receipt = portal.send(Bytes::from(body), &boundary).await;
        assert!(matches!(&receipt, Ok(r) if r.status == 202), "{receipt:?}");
        windows.push((format!("send {tx_id}"), start, unix_now()));
    }
    for tx_id in &tx_ids {
        let start = unix_now();
        readers
            .bygglov
            .ack(&address(BYGGLOV), tx_id)
            .await
            .expect("ack");
        windows.push((format!("ack {tx_id}"), start, unix_now()));
    }
    let trace = traced.finish().await;

    let (syncs, others) = store_syncs(&trace, sync_thread);
    println!(
        "strace: {} syncs of store/db by shsd-store-sync for {REQUESTS} sends and {REQUESTS} \
         acks (sequential); {others} by other threads (start-up, sled's periodic flusher)",
        syncs.len()
    );
    for (request, start, end) in &windows {
        assert!(
            syncs.iter().any(|(t0, t1)| start <= t0 && t1 <= end),
            "no sync of the store began and ended while answering {request} \
             ({start:.6}–{end:.6}); syncs: {syncs:?}"
        );
    }
}

/// The successful fsync/fdatasync calls on `store/db` in an `strace -f -ttt -T -y` trace:
/// those of thread `tid` as (entry, return) times, and how many other threads made.
/// A call interrupted by another thread's is split in two lines, `fdatasync(11</…/db>
/// <unfinished ...>` and `<... fdatasync resumed>) = 0 <0.000410>`.
fn store_syncs(trace: &str, tid: u32) -> (Vec<(f64, f64)>, usize) {
    let mut syncs = Vec::new();
    let mut others = 0;
    let mut unfinished = HashMap::new();
    for line in trace.lines() {
        let mut fields = line.splitn(2, char::is_whitespace);
        let (Some(thread), Some(rest)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((time, call)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let (Ok(thread), Ok(time)) = (thread.parse::<u32>(), time.parse::<f64>()) else {
            continue;
        };
        let is_sync = call.starts_with("fdatasync(") || call.starts_with("fsync(");
        let entry = if is_sync && call.contains("/store/db>") {
            if call.ends_with("<unfinished ...>") {
                unfinished.insert(thread, time);
                continue;
            }
            time
        } else if call.starts_with("<... fdatasync resumed>")
            || call.starts_with("<... fsync resumed>")
        {
            match unfinished.remove(&thread) {
                Some(entry) => entry,
                None => continue,
            }
        } else {
            continue;
        };
        let duration = call
            .rsplit_once('<')
            .and_then(|(_, d)| d.strip_suffix('>')?.parse::<f64>().ok());
        match duration {
            Some(duration) if call.contains(") = 0 ") && thread == tid => {
                syncs.push((entry, entry + duration));
            }
            Some(_) => others += 1,
            None => {}
        }
    }
    (syncs, others)
}

/// A temporary node folder (under `CARGO_TARGET_TMPDIR`): the daemon binary pinned as
/// `shsd`, a fresh PKI in `certs/`, the test configuration with a sled store in `store/`,
/// and `logs/` for the daemon's stderr.
fn node_folder() -> (tempfile::TempDir, ExamplePki) {
    let dir = tempfile::Builder::new()
        .prefix("shsd-crash-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir");
    pin_binary(&dir.path().join("shsd"));
    let pki = ExamplePki::generate(PkiOptions::default()).expect("pki");
    pki.write_to(&dir.path().join("certs"), false)
        .expect("write pki");
    std::fs::write(dir.path().join("shsd.toml"), config_text("")).expect("config");
    std::fs::create_dir(dir.path().join("logs")).expect("logs folder");
    (dir, pki)
}

/// Hard-links (or copies) the `shsd` that cargo built to `pinned`, so that the whole test
/// runs one binary. `target/debug/shsd` is shared by every checkout that uses the same
/// target folder, and their builds replace it (even `deps/shsd-<hash>`, whose hash does not
/// depend on the checkout's path): a test running another checkout's daemon proves
/// nothing. So when the binary has debug info, which names the folder it was built in, it
/// must name this checkout.
fn pin_binary(pinned: &Path) {
    let built = Path::new(env!("CARGO_BIN_EXE_shsd"));
    if std::fs::hard_link(built, pinned).is_err() {
        std::fs::copy(built, pinned).expect("copy shsd");
    }
    let bytes = std::fs::read(pinned).expect("read shsd");
    if memchr::memmem::find(&bytes, b".debug_info\0").is_some() {
        let checkout = env!("CARGO_MANIFEST_DIR");
        assert!(
            memchr::memmem::find(&bytes, checkout.as_bytes()).is_some(),
            "{} was built from another checkout sharing the target folder, not from \
             {checkout}; cargo may take it as fresh: force a rebuild (touch src/lib.rs) or \
             use a target folder of your own",
            built.display()
        );
    }
}

/// The id of the thread of process `pid` named `name`.
fn thread_named(pid: u32, name: &str) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })?
        .file_name()
        .to_str()?
        .parse()
        .ok()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// `shsd serve` run by `strace -f -ttt -T -y -e trace=fsync,fdatasync -o strace.txt`: strace
/// is its parent, which ptrace allows also where attaching to a sibling (`-p`) is not
/// (Yama `ptrace_scope` 1, Ubuntu's default).
struct Traced {
    strace: Child,
    /// shsd's pid (strace's child): not ours to `wait` for, so stopped with `kill`.
    pid: u32,
    port: u16,
    output: PathBuf,
}

impl Traced {
    async fn start(dir: &Path) -> Traced {
        let output = dir.join("strace.txt");
        let log = log_path(dir, 1);
        let mut strace = Command::new("strace")
            .args([
                "-f",
                "-ttt",
                "-T",
                "-y",
                "-e",
                "trace=fsync,fdatasync",
                "-o",
            ])
            .arg(&output)
            .arg("--")
            .arg(dir.join("shsd"))
            .arg("serve")
            .arg("--config")
            .arg(dir.join("shsd.toml"))
            .env("RUST_LOG", LOG_FILTER)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run strace: {err} (scripts/test installs it; SHSD_SKIP_STRACE=1 skips)"
                )
            });
        let port = wait_for_port(&mut strace, &log, "shsd under strace").await;
        let pid = child_of(strace.id()).unwrap_or_else(|| {
            sigkill(&mut strace);
            panic!("strace runs no shsd");
        });
        Traced {
            strace,
            pid,
            port,
            output,
        }
    }

    /// Kills shsd, waits for strace to end with it and returns the trace.
    async fn finish(mut self) -> String {
        kill_by_pid(self.pid);
        let since = Instant::now();
        while self.strace.try_wait().expect("try_wait").is_none() {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "strace did not end"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::fs::read_to_string(&self.output).expect("strace output")
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        if self.strace.try_wait().ok().flatten().is_none() {
            kill_by_pid(self.pid);
            sigkill(&mut self.strace);
        }
    }
}

/// SIGKILL to a process that is not our child, by the shell's `kill` (no libc here).
fn kill_by_pid(pid: u32) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL {pid}"))
        .status();
}

/// The (first) child process of `parent`, from `/proc/<pid>/stat` (parent pid: the second
/// field after the parenthesised command name).
fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid.parse::<u32>().ok()? == parent).then_some(pid)
        })
}

// ---------------------------------------------------------------------------------------
// The senders.

/// Who sends to whom; sender task `i` is lane `i % 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    PortalToBygglov,
    PortalToSocialtjanst,
    BygglovToPortal,
    SocialtjanstToPortal,
}

impl Lane {
    fn of(index: usize) -> Lane {
        [
            Lane::PortalToBygglov,
            Lane::PortalToSocialtjanst,
            Lane::BygglovToPortal,
            Lane::SocialtjanstToPortal,
        ][index % 4]
    }

    fn from(self) -> &'static str {
        match self {
            Lane::PortalToBygglov | Lane::PortalToSocialtjanst => PORTAL,
            Lane::BygglovToPortal => BYGGLOV,
            Lane::SocialtjanstToPortal => SOCIALTJANST,
        }
    }

    fn to(self) -> &'static str {
        match self {
            Lane::PortalToBygglov => BYGGLOV,
            Lane::PortalToSocialtjanst => SOCIALTJANST,
            Lane::BygglovToPortal | Lane::SocialtjanstToPortal => PORTAL,
        }
    }

    fn sender(self, pki: &ExamplePki) -> &PkiItem {
        reader_identity(pki, self.from())
    }
}

/// What became of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Sent, no answer yet.
    InFlight,
    /// 202: must survive everything.
    Accepted,
    /// The exchange broke off (a kill): may or may not be stored, but whole if it is.
    Unknown,
    /// Any other answer (never expected).
    Refused,
}

#[derive(Debug, Clone)]
struct Sent {
    lane: Lane,
    outcome: Outcome,
    local_id: String,
}

#[derive(Default)]
struct Shared {
    ledger: Mutex<HashMap<String, Sent>>,
    stop: AtomicBool,
    /// The latest daemon generation that is being killed: errors up to it are expected.
    killed: AtomicU64,
    unexpected: Mutex<Vec<String>>,
}

impl Shared {
    fn settle(&self, tx_id: &str, outcome: Outcome, local_id: String) {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sent) = ledger.get_mut(tx_id) {
            sent.outcome = outcome;
            sent.local_id = local_id;
        }
    }

    fn note(&self, what: String) {
        self.unexpected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(what);
    }
}

/// One sender: sends message after message to whichever daemon is live (`(generation,
/// port)`), on one kept-alive connection, and records each tx.id's outcome.
async fn sender(
    index: usize,
    seed: u64,
    tls: Arc<rustls::ClientConfig>,
    mut live: watch::Receiver<Option<(u64, u16)>>,
    shared: Arc<Shared>,
) {
    let lane = Lane::of(index);
    let mut seq = 0u64;
    'daemons: loop {
        let (generation, port) = loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if let Some(current) = *live.borrow_and_update() {
                break current;
            }
            if live.changed().await.is_err() {
                return;
            }
        };
        let url = format!("https://127.0.0.1:{port}");
        let client = ShsClient::new(&url, Arc::clone(&tls)).expect("client");
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if live.has_changed().unwrap_or(true) {
                continue 'daemons;
            }
            seq += 1;
            let tx_id = tx_id(seed, index, seq);
            let parts = parts_for(&tx_id);
            let (body, boundary, _) = message_with_tx(lane.from(), lane.to(), &tx_id, &parts);
            shared.ledger.lock().unwrap().insert(
                tx_id.clone(),
                Sent {
                    lane,
                    outcome: Outcome::InFlight,
                    local_id: String::new(),
                },
            );
            let result = client.send(Bytes::from(body), &boundary).await;
            let broken = match result {
                Ok(receipt)
                    if receipt.status == 202 && receipt.tx_id == tx_id && !receipt.duplicate =>
                {
                    shared.settle(&tx_id, Outcome::Accepted, receipt.local_id);
                    false
                }
                Ok(receipt) => {
                    shared.note(format!("odd receipt for {tx_id}: {receipt:?}"));
                    shared.settle(&tx_id, Outcome::Refused, String::new());
                    true
                }
                Err(err @ ClientError::Refused { .. }) => {
                    shared.note(format!("send of {tx_id} refused: {err}"));
                    shared.settle(&tx_id, Outcome::Refused, String::new());
                    true
                }
                Err(err) => {
                    if shared.killed.load(Ordering::SeqCst) < generation {
                        shared.note(format!(
                            "send of {tx_id} failed while daemon {generation} was alive: {err}"
                        ));
                    }
                    shared.settle(&tx_id, Outcome::Unknown, String::new());
                    true
                }
            };
            if broken {
                // Wait for the next daemon (or the stop).
                if live.changed().await.is_err() {
                    return;
                }
                continue 'daemons;
            }
        }
    }
}

/// A unique tx.id per (seed, sender, sequence number): a UUID, as in practice.
fn tx_id(seed: u64, sender: usize, seq: u64) -> String {
    uuid::Uuid::from_u64_pair(seed, ((sender as u64) << 40) | seq).to_string()
}

/// The data parts of message `tx_id`, from the tx.id alone: 1–3 parts of a few bytes up to
/// 384 KiB, a third of them over one store chunk (32 KiB), some exact chunk multiples.
fn parts_for(tx_id: &str) -> Vec<OutgoingPart> {
    const KIB: u64 = 1024;
    let mut rng = XorShift::new(fnv1a(tx_id.as_bytes()));
    let count = match rng.below(100) {
        0..80 => 1,
        80..95 => 2,
        _ => 3,
    };
    (0..count)
        .map(|_| {
            let len = match rng.below(100) {
                0..5 => 32 * KIB * (1 + rng.below(3)),
                5..40 => 1 + rng.below(256),
                40..70 => 257 + rng.below(32 * KIB - 257),
                70..90 => 32 * KIB + 1 + rng.below(96 * KIB),
                _ => 128 * KIB + rng.below(256 * KIB),
            } as usize;
            let mut bytes = Vec::with_capacity(len + 8);
            while bytes.len() < len {
                bytes.extend_from_slice(&rng.next().to_le_bytes());
            }
            bytes.truncate(len);
            OutgoingPart {
                datapart_type: "bin".into(),
                content_type: "application/octet-stream".into(),
                filename: None,
                bytes,
            }
        })
        .collect()
}

/// Marsaglia's xorshift64: deterministic, good enough for sizes, bytes and delays.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => {
            let text = text.trim();
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .unwrap_or_else(|err| panic!("{name}={text}: {err}"))
        }
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------
// The daemon.

/// A running `shsd serve`; SIGKILLed when dropped.
struct Daemon {
    child: Child,
    port: u16,
    listening_at: Instant,
    startup: Duration,
}

impl Daemon {
    /// Starts the binary on the folder's configuration, its stderr to `logs/shsd-<gen>.log`.
    fn spawn(dir: &Path, generation: u64) -> Child {
        let log = File::create(log_path(dir, generation)).expect("log file");
        Command::new(dir.join("shsd"))
            .arg("serve")
            .arg("--config")
            .arg(dir.join("shsd.toml"))
            .env("RUST_LOG", LOG_FILTER)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn shsd")
    }

    /// Starts the binary and waits for its `listening on 127.0.0.1:PORT (shs)` line.
    async fn start(dir: &Path, generation: u64) -> Daemon {
        let mut child = Daemon::spawn(dir, generation);
        let spawned = Instant::now();
        let what = format!("shsd (generation {generation})");
        let port = wait_for_port(&mut child, &log_path(dir, generation), &what).await;
        Daemon {
            child,
            port,
            listening_at: Instant::now(),
            startup: spawned.elapsed(),
        }
    }

    fn kill(self) {
        drop(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        sigkill(&mut self.child);
    }
}

/// SIGKILL (what `Child::kill` sends on Unix), then reap.
fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `log` has the `listening on … (shs)` line; panics with the log if `child`
/// ends first or takes longer than a minute.
async fn wait_for_port(child: &mut Child, log: &Path, what: &str) -> u16 {
    let spawned = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = listening_port(&text) {
            return port;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited with {status} before listening:\n{text}");
        }
        if spawned.elapsed() > Duration::from_secs(60) {
            sigkill(child);
            panic!("{what} did not log its port in 60 s:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join("logs").join(format!("shsd-{generation:03}.log"))
}

/// The port of the `listening on <address> (shs)` line, colour codes or not.
fn listening_port(log: &str) -> Option<u16> {
    log.lines().find_map(|line| {
        let line = strip_ansi(line);
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        let address = rest[..rest.find(" (shs)")?].trim();
        address
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    })
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the daemon logs say, over all generations.
struct LogNotes {
    /// WARN and ERROR lines, deduplicated.
    warnings: Vec<String>,
    /// Interrupted uploads removed at start (`removed interrupted payload uploads count=N`).
    removed_uploads: u64,
}

fn read_logs(dir: &Path) -> LogNotes {
    let mut seen = HashSet::new();
    let mut removed_uploads = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for line in text.lines().map(strip_ansi) {
            if line.contains("removed interrupted payload uploads") {
                removed_uploads += line
                    .split_once("count=")
                    .and_then(|(_, n)| n.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                // Drop the timestamp so that repeats collapse.
                let key = line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest);
                if seen.insert(key.to_owned()) {
                    let name = file.file_name().unwrap_or_default().to_string_lossy();
                    out.push(format!("{name}: {line}"));
                }
            }
        }
    }
    LogNotes {
        warnings: out,
        removed_uploads,
    }
}

// ---------------------------------------------------------------------------------------
// Verification.

/// One client per mailbox owner.
struct Readers {
    bygglov: ShsClient,
    socialtjanst: ShsClient,
    portal: ShsClient,
}

impl Readers {
    fn new(pki: &ExamplePki, url: &str) -> Readers {
        let client = |mailbox| {
            let tls = pki
                .client_config(Some(reader_identity(pki, mailbox)))
                .expect("tls");
            ShsClient::new(url, tls).expect("client")
        };
        Readers {
            bygglov: client(BYGGLOV),
            socialtjanst: client(SOCIALTJANST),
            portal: client(PORTAL),
        }
    }

    fn of(&self, mailbox: &str) -> &ShsClient {
        match mailbox {
            BYGGLOV => &self.bygglov,
            SOCIALTJANST => &self.socialtjanst,
            _ => &self.portal,
        }
    }
}

fn reader_identity<'a>(pki: &'a ExamplePki, mailbox: &str) -> &'a PkiItem {
    match mailbox {
        BYGGLOV => &pki.bygglov,
        SOCIALTJANST => &pki.socialtjanst,
        _ => &pki.portal,
    }
}

fn address(text: &str) -> Address {
    text.parse().expect("address")
}

struct MailboxReport {
    listed: HashSet<String>,
    verified: usize,
    visible_unknown: usize,
    listed_after: Duration,
    findings: Vec<String>,
}

/// Lists `mailbox` until every accepted message for it is there (or `deadline`), then
/// fetches every listed message and compares it with what was sent.
async fn verify_mailbox(
    client: &ShsClient,
    mailbox: &str,
    ledger: &HashMap<String, Sent>,
    deadline: Instant,
) -> MailboxReport {
    let mut report = MailboxReport {
        listed: HashSet::new(),
        verified: 0,
        visible_unknown: 0,
        listed_after: Duration::ZERO,
        findings: Vec::new(),
    };
    let address = address(mailbox);
    let accepted: HashSet<&str> = ledger
        .iter()
        .filter(|(_, s)| s.lane.to() == mailbox && s.outcome == Outcome::Accepted)
        .map(|(tx_id, _)| tx_id.as_str())
        .collect();
    let since = Instant::now();
    let list = loop {
        let list = match client.list(&address, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => {
                report.findings.push(format!("list {mailbox}: {err}"));
                return report;
            }
        };
        let listed: HashSet<&str> = list.messages.iter().map(|m| m.tx_id.as_str()).collect();
        if accepted.is_subset(&listed) || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    report.listed_after = since.elapsed();
    if list.messages.len() >= MAX_HITS {
        report.findings.push(format!("{mailbox}: list hit maxhits"));
    }
    let mut listed = HashSet::new();
    for message in &list.messages {
        report.listed.insert(message.tx_id.clone());
        if !listed.insert(message.tx_id.as_str()) {
            report
                .findings
                .push(format!("{mailbox}: {} listed twice", message.tx_id));
        }
    }
    for tx_id in accepted.difference(&listed) {
        let why = match client.fetch(&address, tx_id).await {
            Ok(_) => "fetchable but not listed (routing job not resumed?)".to_owned(),
            Err(err) => format!("LOST: {err}"),
        };
        report
            .findings
            .push(format!("{mailbox}: accepted {tx_id} missing: {why}"));
    }
    for message in &list.messages {
        let tx_id = message.tx_id.as_str();
        let Some(sent) = ledger.get(tx_id).filter(|s| s.lane.to() == mailbox) else {
            report.findings.push(format!(
                "{mailbox}: {tx_id} listed but never sent here (product {:?})",
                message.product
            ));
            continue;
        };
        if sent.outcome != Outcome::Accepted {
            report.visible_unknown += 1;
        }
        let expected = parts_for(tx_id);
        let size: u64 = expected.iter().map(|p| p.bytes.len() as u64).sum();
        if message.size != Some(size) {
            report.findings.push(format!(
                "{mailbox}: {tx_id} ({:?}) listed with size {:?}, sent {size}",
                sent.outcome, message.size
            ));
        }
        match client.fetch(&address, tx_id).await {
            Ok(body) => match check_fetched(tx_id, &body, &expected) {
                Ok(()) => report.verified += 1,
                Err(why) => report.findings.push(format!(
                    "{mailbox}: {tx_id} ({:?}) fetched wrong: {why}",
                    sent.outcome
                )),
            },
            Err(err) => report.findings.push(format!(
                "{mailbox}: {tx_id} ({:?}) listed but fetch failed: {err}",
                sent.outcome
            )),
        }
    }
    report
}

/// Sends every in-flight message that is not visible again, lane by lane. A duplicate
/// answer means it was stored at the kill: then it must be listed by now. Returns how many
/// were stored but hidden (expected: none), and the findings.
async fn resend_unknown(
    pki: &ExamplePki,
    readers: &Readers,
    url: &str,
    ledger: &HashMap<String, Sent>,
    visible: &HashSet<String>,
) -> (usize, Vec<String>) {
    let resend_lane = |lane: Lane| async move {
        let tls = pki.client_config(Some(lane.sender(pki))).expect("tls");
        let client = ShsClient::new(url, tls).expect("client");
        let mut stored = Vec::new();
        let mut findings = Vec::new();
        for (tx_id, sent) in ledger {
            if sent.lane != lane || sent.outcome == Outcome::Accepted || visible.contains(tx_id) {
                continue;
            }
            let (body, boundary, _) =
                message_with_tx(lane.from(), lane.to(), tx_id, &parts_for(tx_id));
            match client.send(Bytes::from(body), &boundary).await {
                Ok(receipt) if receipt.status == 202 && receipt.duplicate => {
                    stored.push(tx_id.as_str());
                }
                Ok(receipt) if receipt.status == 202 => {}
                other => findings.push(format!("resend of in-flight {tx_id}: {other:?}")),
            }
        }
        (lane, stored, findings)
    };
    let lanes = tokio::join!(
        resend_lane(Lane::PortalToBygglov),
        resend_lane(Lane::PortalToSocialtjanst),
        resend_lane(Lane::BygglovToPortal),
        resend_lane(Lane::SocialtjanstToPortal),
    );
    let mut hidden = 0;
    let mut findings = Vec::new();
    for (lane, stored, more) in [lanes.0, lanes.1, lanes.2, lanes.3] {
        findings.extend(more);
        if stored.is_empty() {
            continue;
        }
        hidden += stored.len();
        let list = readers
            .of(lane.to())
            .list(&address(lane.to()), LIST_QUERY)
            .await;
        let listed: HashSet<String> = match list {
            Ok(list) => list.messages.into_iter().map(|m| m.tx_id).collect(),
            Err(err) => {
                findings.push(format!("list {} after resend: {err}", lane.to()));
                continue;
            }
        };
        for tx_id in stored {
            let state = if listed.contains(tx_id) {
                "listed only now"
            } else {
                "still not listed"
            };
            findings.push(format!(
                "in-flight {tx_id} was stored but not listed after restart ({state})"
            ));
        }
    }
    (hidden, findings)
}

/// The fetched message is complete: a label that parses with its tx.id and one history
/// entry, and data parts byte-identical to the ones sent.
fn check_fetched(tx_id: &str, body: &[u8], expected: &[OutgoingPart]) -> Result<(), String> {
    let split = split_message(body, Some("message/rfc822"), Limits::default())
        .map_err(|err| format!("MIME: {err}"))?;
    let label = Label::parse(&split.label).map_err(|err| format!("label: {err}"))?;
    if label.tx_id != tx_id || label.corr_id != tx_id {
        return Err(format!("label names tx.id {}", label.tx_id));
    }
    if label.history.len() != 1 {
        return Err(format!("{} history entries", label.history.len()));
    }
    if split.parts.len() != expected.len() {
        return Err(format!(
            "{} data parts, sent {}",
            split.parts.len(),
            expected.len()
        ));
    }
    for (index, ((_, got), want)) in split.parts.iter().zip(expected).enumerate() {
        if *got != want.bytes {
            let first = got.iter().zip(&want.bytes).position(|(a, b)| a != b);
            return Err(format!(
                "part {index}: {} bytes, sent {}; first difference at {first:?}",
                got.len(),
                want.bytes.len()
            ));
        }
    }
    Ok(())
}

/// Every acknowledged message has exactly one confirm in the portal's mailbox; `fetch`
/// also fetches each and checks its management document.
async fn check_confirms(readers: &Readers, acked: &HashSet<&str>, fetch: bool) -> Vec<String> {
    let mut findings = Vec::new();
    let portal = address(PORTAL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = match readers.portal.list(&portal, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => return vec![format!("list portal for confirms: {err}")],
        };
        let mut confirms: HashMap<&str, Vec<&str>> = HashMap::new();
        for message in &list.messages {
            if message
                .product
                .as_deref()
                .is_some_and(|p| p.contains("confirm"))
            {
                let corr_id = message.corr_id.as_deref().unwrap_or_default();
                confirms.entry(corr_id).or_default().push(&message.tx_id);
            }
        }
        let missing: Vec<_> = acked
            .iter()
            .filter(|t| !confirms.contains_key(*t))
            .collect();
        if !missing.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for tx_id in missing {
            findings.push(format!("no confirm for acknowledged {tx_id}"));
        }
        for (corr_id, tx_ids) in &confirms {
            if !acked.contains(corr_id) {
                findings.push(format!(
                    "confirm for {corr_id}, which was never acknowledged"
                ));
            } else if tx_ids.len() != 1 {
                findings.push(format!("{} confirms for {corr_id}", tx_ids.len()));
            }
            if !fetch {
                continue;
            }
            for tx_id in tx_ids {
                let confirm = match readers.portal.fetch(&portal, tx_id).await {
                    Ok(body) => body,
                    Err(err) => {
                        findings.push(format!("confirm {tx_id}: fetch failed: {err}"));
                        continue;
                    }
                };
                let document = split_message(&confirm, Some("message/rfc822"), Limits::default())
                    .ok()
                    .and_then(|split| split.parts.into_iter().next())
                    .and_then(|(_, bytes)| ManagementDocument::parse(&bytes).ok());
                match document {
                    Some(doc)
                        if doc.corr_id == *corr_id
                            && matches!(doc.body, ManagementBody::Confirmation { .. }) => {}
                    other => findings.push(format!("confirm {tx_id} for {corr_id}: {other:?}")),
                }
            }
        }
        return findings;
    }
}

/// After the kill that followed the acks: acknowledged messages stay acknowledged (not
/// listed, not fetchable), all other accepted ones are still listed.
async fn check_after_ack_kill(
    readers: &Readers,
    ledger: &HashMap<String, Sent>,
    acked: &HashSet<&str>,
) -> Vec<String> {
    let mut findings = Vec::new();
    for mailbox in MAILBOXES {
        let address = address(mailbox);
        let client = readers.of(mailbox);
        let list = match client.list(&address, LIST_QUERY).await {
            Ok(list) => list,
            Err(err) => {
                findings.push(format!("list {mailbox} after ack kill: {err}"));
                continue;
            }
        };
        let listed: HashSet<&str> = list.messages.iter().map(|m| m.tx_id.as_str()).collect();
        for (tx_id, sent) in ledger {
            if sent.lane.to() != mailbox || sent.outcome != Outcome::Accepted {
                continue;
            }
            let tx_id = tx_id.as_str();
            match (acked.contains(tx_id), listed.contains(tx_id)) {
                (true, true) => findings.push(format!("acknowledged {tx_id} listed again")),
                (false, false) => findings.push(format!("{tx_id} gone after the ack kill")),
                _ => {}
            }
            if acked.contains(tx_id) {
                match client.fetch(&address, tx_id).await {
                    Err(ClientError::Refused { status, .. }) if status == 404 => {}
                    other => findings.push(format!(
                        "fetch of acknowledged {tx_id}: {:?}",
                        other.map(|b| b.len())
                    )),
                }
            }
        }
    }
    findings
}

/// Accepted messages sent again (same tx.id, same content) are duplicates of the
/// original: the tx.id index survived the kills with the record.
async fn check_resend(pki: &ExamplePki, url: &str, ledger: &HashMap<String, Sent>) -> Vec<String> {
    let mut findings = Vec::new();
    let mut accepted: Vec<_> = ledger
        .iter()
        .filter(|(_, s)| s.outcome == Outcome::Accepted)
        .collect();
    accepted.sort_by_key(|(tx_id, _)| tx_id.as_str());
    let step = (accepted.len() / RESEND_SAMPLE).max(1);
    for (tx_id, sent) in accepted.into_iter().step_by(step).take(RESEND_SAMPLE) {
        let tls = pki.client_config(Some(sent.lane.sender(pki))).expect("tls");
        let client = ShsClient::new(url, tls).expect("client");
        let (body, boundary, _) =
            message_with_tx(sent.lane.from(), sent.lane.to(), tx_id, &parts_for(tx_id));
        match client.send(Bytes::from(body), &boundary).await {
            Ok(receipt) if receipt.duplicate && receipt.local_id == sent.local_id => {}
            other => findings.push(format!("resend of accepted {tx_id}: {other:?}")),
        }
    }
    findings
}
