//! Three real `shsd serve` processes on one database, as behind a load balancer: senders
//! spread over all three, the business system fetching and acknowledging through any, and
//! one node killed with SIGKILL in the middle of the load. Afterwards every message that
//! got a 202 (or whose resend was answered as a duplicate) is delivered exactly once and
//! acknowledged with exactly one confirm, and no routing job is left: the jobs the dead
//! node held were taken over by the others when its lease ran out.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shsd::client::ShsClient;
use shsd::pki::ExamplePki;
use shsd::store::postgres::test_server::fresh_database;

use super::{address, assert_content, client, send_tx};
use crate::crash::daemon::{Daemon, node_folder};
use crate::harness::{BYGGLOV, config_on_postgres};

const NODES: usize = 3;
const SENDERS: usize = 6;
/// The job lease of the nodes: a dead node's jobs move on after this.
const LEASE_SECS: u64 = 3;
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(3);
const LOAD_AFTER_KILL: Duration = Duration::from_secs(3);
/// How long the survivors may take to deliver and the fetchers to acknowledge everything.
const DRAIN: Duration = Duration::from_secs(60);
const WATCHDOG: Duration = Duration::from_secs(240);

/// What the test's clients share.
#[derive(Default)]
struct Ledger {
    /// Accepted tx.ids (202, or a resend answered as a duplicate).
    accepted: Mutex<HashSet<String>>,
    /// Acknowledged tx.ids, each with how often a fetcher acknowledged it.
    acked: Mutex<HashMap<String, u32>>,
    /// Which nodes are alive (index → false once killed).
    dead: Mutex<HashSet<usize>>,
    stop_sending: AtomicBool,
    stop_fetching: AtomicBool,
    unexpected: Mutex<Vec<String>>,
}

impl Ledger {
    fn alive(&self, node: usize) -> bool {
        !self.dead.lock().unwrap().contains(&node)
    }

    fn note(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_survive_a_kill_9() {
    tokio::time::timeout(WATCHDOG, three_nodes())
        .await
        .expect("the three-node test took longer than its watchdog");
}

async fn three_nodes() {
    let database = fresh_database().await;
    let (dir, pki) = node_folder();
    std::fs::write(
        dir.path().join("shsd.toml"),
        config_on_postgres(&database.conninfo, LEASE_SECS, ""),
    )
    .expect("config");
    let pki = Arc::new(pki);
    let mut daemons = Vec::new();
    for index in 0..NODES {
        daemons.push(Some(Daemon::start(dir.path(), index as u64).await));
    }
    let bases: Vec<String> = daemons
        .iter()
        .map(|d| format!("https://localhost:{}", d.as_ref().map_or(0, |d| d.port)))
        .collect();
    let ledger = Arc::new(Ledger::default());

    let senders: Vec<_> = (0..SENDERS)
        .map(|index| {
            tokio::spawn(sender(
                index,
                Arc::clone(&pki),
                bases.clone(),
                Arc::clone(&ledger),
            ))
        })
        .collect();
    let fetchers: Vec<_> = (0..NODES)
        .map(|index| {
            tokio::spawn(fetcher(
                index,
                Arc::clone(&pki),
                bases.clone(),
                Arc::clone(&ledger),
            ))
        })
        .collect();

    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    let victim = 1;
    ledger.dead.lock().unwrap().insert(victim);
    let accepted_at_kill = ledger.accepted.lock().unwrap().len();
    if let Some(daemon) = daemons[victim].take() {
        daemon.kill();
    }
    tokio::time::sleep(LOAD_AFTER_KILL).await;
    ledger.stop_sending.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("sender");
    }
    let accepted = ledger.accepted.lock().unwrap().clone();
    assert!(accepted_at_kill > 0, "nothing accepted before the kill");
    assert!(
        accepted.len() > accepted_at_kill,
        "nothing accepted after the kill"
    );

    // Drain: the fetchers go on until everything accepted is acknowledged.
    let deadline = Instant::now() + DRAIN;
    loop {
        let acked: HashSet<String> = ledger.acked.lock().unwrap().keys().cloned().collect();
        let missing: Vec<&String> = accepted.difference(&acked).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted messages never reached the business system, e.g. {:?}",
            missing.len(),
            accepted.len(),
            missing.iter().take(3).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ledger.stop_fetching.store(true, Ordering::SeqCst);
    for fetcher in fetchers {
        fetcher.await.expect("fetcher");
    }
    let unexpected = ledger.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    let acked = ledger.acked.lock().unwrap().clone();
    let never_sent: Vec<_> = acked.keys().filter(|tx| !accepted.contains(*tx)).collect();
    // A send cut off by the kill and never resent would be allowed here; the senders
    // resend every cut-off message, so there is none.
    assert!(
        never_sent.is_empty(),
        "acknowledged but never accepted: {never_sent:?}"
    );

    // The database's view: one record per accepted message in bygglov's mailbox, each
    // acknowledged, with one confirm to the portal; no routing job left.
    let exactly = settled_state(&database.conninfo, &accepted).await;
    eprintln!(
        "three nodes: {} accepted ({} before the kill), {} acknowledged, {} fetched twice",
        accepted.len(),
        accepted_at_kill,
        acked.len(),
        acked.values().filter(|n| **n > 1).count(),
    );
    assert_eq!(exactly, accepted.len());
    drop(daemons);
}

/// Sends to node `index % 3`; when that node is dead (or the exchange breaks off), resends
/// the same tx.id to the next live node until it is answered.
async fn sender(index: usize, pki: Arc<ExamplePki>, bases: Vec<String>, ledger: Arc<Ledger>) {
    let clients: Vec<ShsClient> = bases
        .iter()
        .map(|base| client(&pki, &pki.portal, base))
        .collect();
    let mut node = index % NODES;
    while !ledger.stop_sending.load(Ordering::SeqCst) {
        let tx_id = uuid::Uuid::new_v4().to_string();
        let mut tries = 0;
        loop {
            if !ledger.alive(node) {
                node = (node + 1) % NODES;
            }
            tries += 1;
            match send_tx(&clients[node], &tx_id).await {
                Ok(receipt) if receipt.status == 202 => {
                    ledger.accepted.lock().unwrap().insert(tx_id);
                    break;
                }
                Ok(receipt) => {
                    ledger.note(format!("odd receipt for {tx_id}: {receipt:?}"));
                    break;
                }
                Err(err) if ledger.alive(node) || tries > 20 => {
                    ledger.note(format!("send of {tx_id} to node {node}: {err}"));
                    break;
                }
                // The node died under this send: resend elsewhere.
                Err(_) => node = (node + 1) % NODES,
            }
        }
    }
}

/// The business system on node `index` (the next live one once it is dead): lists,
/// fetches, checks and acknowledges whatever is there.
async fn fetcher(index: usize, pki: Arc<ExamplePki>, bases: Vec<String>, ledger: Arc<Ledger>) {
    let clients: Vec<ShsClient> = bases
        .iter()
        .map(|base| client(&pki, &pki.bygglov, base))
        .collect();
    let mailbox = address(BYGGLOV);
    let mut node = index;
    while !ledger.stop_fetching.load(Ordering::SeqCst) {
        if !ledger.alive(node) {
            node = (node + 1) % NODES;
            continue;
        }
        let client = &clients[node];
        let list = match client.list(&mailbox, "maxhits=20").await {
            Ok(list) => list,
            Err(err) => {
                if ledger.alive(node) {
                    ledger.note(format!("list on node {node}: {err}"));
                }
                continue;
            }
        };
        if list.messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for message in list.messages {
            let tx_id = message.tx_id;
            let done = async {
                let fetched = client.fetch(&mailbox, &tx_id).await?;
                assert_content(&fetched, &tx_id);
                client.ack(&mailbox, &tx_id).await
            };
            match done.await {
                Ok(()) => *ledger.acked.lock().unwrap().entry(tx_id).or_default() += 1,
                // Another fetcher acknowledged it between the list and the fetch.
                Err(shsd::client::ClientError::Refused { status, .. }) if status == 404 => {}
                Err(err) if !ledger.alive(node) => {
                    let _ = err;
                    break;
                }
                Err(err) => ledger.note(format!("fetch/ack of {tx_id} on node {node}: {err}")),
            }
        }
    }
}

/// Checks the database after the run; returns how many accepted messages are there
/// exactly once, acknowledged, with exactly one confirm.
async fn settled_state(conninfo: &str, accepted: &HashSet<String>) -> usize {
    let (db, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    let jobs: i64 = db
        .query_one("SELECT count(*) FROM routing_jobs", &[])
        .await
        .expect("jobs")
        .get(0);
    assert_eq!(jobs, 0, "routing jobs left over");
    let stuck: i64 = db
        .query_one("SELECT count(*) FROM messages WHERE state = 'NEW'", &[])
        .await
        .expect("new")
        .get(0);
    assert_eq!(stuck, 0, "messages still waiting for routing");
    let rows = db
        .query(
            "SELECT m.tx_id, m.mailbox, m.state,
                    (SELECT count(*) FROM messages c
                      WHERE c.corr_id = m.tx_id AND c.tx_id <> m.tx_id)
               FROM messages m WHERE m.sender = '5590000001'",
            &[],
        )
        .await
        .expect("messages");
    let mut exactly = 0;
    for row in rows {
        let (tx_id, mailbox, state, confirms): (String, Option<String>, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !accepted.contains(&tx_id) {
            continue;
        }
        assert_eq!(mailbox.as_deref(), Some(BYGGLOV), "{tx_id}");
        assert_eq!(state, "ACKNOWLEDGED", "{tx_id}");
        assert_eq!(confirms, 1, "confirms of {tx_id}");
        exactly += 1;
    }
    exactly
}
