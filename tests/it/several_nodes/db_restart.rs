//! The database goes away under load and comes back: while it is away intake answers 503
//! `OtherError` (and nothing else), afterwards intake resumes without a restart of shsd,
//! and every message that got a 202, before or after, is delivered whole.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shsd::client::ClientError;
use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::ErrorCode;
use shsd::store::postgres::test_server::TestServer;

use super::{address, assert_content, client, send_tx};
use crate::harness::{BYGGLOV, Node, config_on_postgres};

const SENDERS: usize = 4;
const BEFORE: u8 = 0;
const AWAY: u8 = 1;
const BACK: u8 = 2;

/// What the senders saw, by phase.
#[derive(Default)]
struct Seen {
    accepted: Mutex<Vec<(u8, String)>>,
    unavailable: Mutex<Vec<u8>>,
    unexpected: Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_loses_nothing_and_intake_resumes() {
    let server = tokio::task::spawn_blocking(TestServer::start)
        .await
        .expect("join")
        .expect("a PostgreSQL server of this test's own");
    let server = Arc::new(server);
    let conninfo = server.create_database("restart").await.expect("database");
    let pki = Arc::new(ExamplePki::generate(PkiOptions::default()).expect("pki"));
    let node = Node::start_from(Arc::clone(&pki), config_on_postgres(&conninfo, 5, "")).await;

    let phase = Arc::new(AtomicU8::new(BEFORE));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let sender = client(&pki, &pki.portal, &node.base);
            let (phase, stop, seen) = (Arc::clone(&phase), Arc::clone(&stop), Arc::clone(&seen));
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let tx_id = uuid::Uuid::new_v4().to_string();
                    let result = send_tx(&sender, &tx_id).await;
                    let at = phase.load(Ordering::SeqCst);
                    match result {
                        Ok(receipt) if receipt.status == 202 && !receipt.duplicate => {
                            seen.accepted.lock().unwrap().push((at, tx_id));
                        }
                        Err(ClientError::Refused { status, code, .. })
                            if status == 503 && code == ErrorCode::OtherError =>
                        {
                            seen.unavailable.lock().unwrap().push(at);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        other => seen.unexpected.lock().unwrap().push(format!("{other:?}")),
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    phase.store(AWAY, Ordering::SeqCst);
    let stopped = Arc::clone(&server);
    tokio::task::spawn_blocking(move || stopped.kill())
        .await
        .expect("join")
        .expect("stop the database");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The load balancer's health check sees it too.
    let readyz = format!("{}/readyz", node.admin_base);
    let probe = reqwest::get(&readyz).await.expect("readyz while away");
    assert_eq!(probe.status(), 503, "readyz while the database is away");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Arc::clone(&server);
    tokio::task::spawn_blocking(move || started.start_again())
        .await
        .expect("join")
        .expect("start the database again");
    phase.store(BACK, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probe = reqwest::get(&readyz).await.expect("readyz when back");
    assert_eq!(probe.status(), 200, "readyz once the database is back");
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("sender");
    }

    let accepted = seen.accepted.lock().unwrap().clone();
    let unavailable = seen.unavailable.lock().unwrap().clone();
    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    let count = |phase| accepted.iter().filter(|(at, _)| *at == phase).count();
    assert!(count(BEFORE) > 0, "nothing accepted before the restart");
    assert!(
        unavailable.contains(&AWAY),
        "no 503 while the database was away"
    );
    assert!(count(BACK) > 0, "intake did not resume after the restart");

    // Every 202, before or after, is delivered (jobs cut off by the restart resume).
    let bygglov = client(&pki, &pki.bygglov, &node.base);
    let mailbox = address(BYGGLOV);
    let wanted: HashSet<&str> = accepted.iter().map(|(_, tx)| tx.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let list = bygglov
            .list(&mailbox, "maxhits=10000")
            .await
            .expect("list after the restart");
        let listed: HashSet<String> = list.messages.into_iter().map(|m| m.tx_id).collect();
        let missing = wanted.iter().filter(|tx| !listed.contains(**tx)).count();
        if missing == 0 {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted messages not delivered",
            wanted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for tx_id in &wanted {
        let fetched = bygglov.fetch(&mailbox, tx_id).await.expect("fetch");
        assert_content(&fetched, tx_id);
    }
    eprintln!(
        "database restart: {} accepted before, {} after, {} refused with 503 while away, \
         {} listed",
        count(BEFORE),
        count(BACK),
        unavailable.len(),
        listed.len()
    );
    node.stop().await;
}
