//! Engine-specific tests of [`super::PgStore`] (the shared behaviour is the conformance
//! suite's): migrations, and two stores on one database acting as two nodes.

use std::sync::Arc;

use super::test_server::fresh_database;
use super::{PgConfig, PgStore, schema};
use crate::store::{Acceptance, Route, Store, StoreError};

/// A plain connection to the test database, beside the store's pool.
async fn connect(conninfo: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn versions(config: &super::PgConfig) -> Vec<i32> {
    let client = connect(&config.conninfo).await;
    client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let config = fresh_database().await;
    let all: Vec<i32> = (1..=schema::SCHEMA_VERSION).collect();
    // Two nodes starting at once: both open, each migration applied once.
    let (a, b) = tokio::join!(PgStore::open(&config), PgStore::open(&config));
    a.unwrap();
    b.unwrap();
    assert_eq!(versions(&config).await, all);
    PgStore::open(&config).await.unwrap();
    assert_eq!(versions(&config).await, all);

    let client = connect(&config.conninfo).await;
    client
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(schema::SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    assert!(matches!(
        PgStore::open(&config).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_are_detected_across_nodes() {
    use crate::store::conformance::{SENDER, new_message, summary, upload};
    let config = fresh_database().await;
    let nodes: Vec<Arc<dyn Store>> = vec![
        Arc::new(PgStore::open(&config).await.unwrap()),
        Arc::new(PgStore::open(&config).await.unwrap()),
    ];
    let mut tasks = Vec::new();
    for index in 0..12 {
        let node = Arc::clone(&nodes[index % 2]);
        tasks.push(tokio::spawn(async move {
            let payload = upload(&*node, &[b"same"]).await;
            node.accept(new_message(
                summary("tx-nodes"),
                SENDER,
                payload,
                Route::Job,
            ))
            .await
            .unwrap()
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Acceptance::Accepted { .. } => accepted += 1,
            Acceptance::Duplicate(_) => {}
            Acceptance::TxIdTakenByOtherSender => panic!("same sender"),
        }
    }
    assert_eq!(accepted, 1);
    for node in &nodes {
        assert_eq!(node.pending_jobs(None, 10).await.unwrap().len(), 1);
    }
}

/// Two nodes on one fresh database, each with `lease` for the jobs it takes.
async fn two_nodes(lease: std::time::Duration) -> (PgStore, PgStore) {
    let mut config = fresh_database().await;
    config.job_lease = lease;
    config.node = super::node_name("a");
    let a = PgStore::open(&config).await.unwrap();
    config.node = super::node_name("b");
    let b = PgStore::open(&config).await.unwrap();
    (a, b)
}

/// Accepts a message with a routing job on `node`.
async fn accept_job(node: &PgStore, tx_id: &str) -> crate::store::JobId {
    use crate::store::conformance::{SENDER, new_message, summary, upload};
    let payload = upload(node, &[b"job"]).await;
    match node
        .accept(new_message(summary(tx_id), SENDER, payload, Route::Job))
        .await
        .unwrap()
    {
        Acceptance::Accepted { job: Some(job), .. } => job,
        other => panic!("not accepted with a job: {other:?}"),
    }
}

fn ids(jobs: &[crate::store::RoutingJob]) -> Vec<crate::store::JobId> {
    jobs.iter().map(|job| job.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_job_is_its_nodes_until_the_lease_runs_out() {
    let lease = std::time::Duration::from_secs(2);
    let (a, b) = two_nodes(lease).await;
    let job = accept_job(&a, "tx-lease").await;
    assert!(b.claim_jobs(None, 10).await.unwrap().is_empty());
    // B learns when to look again: about when A's lease ends.
    let due = b.next_job_due().await.unwrap().expect("a job to wait for");
    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(wait <= lease, "{wait:?}");
    // A may take its own job again at once (a retry after a failed run).
    assert_eq!(ids(&a.claim_jobs(None, 10).await.unwrap()), vec![job]);
    // A died: after the lease, B takes the job, and then A cannot.
    tokio::time::sleep(lease + std::time::Duration::from_millis(200)).await;
    assert_eq!(ids(&b.claim_jobs(None, 10).await.unwrap()), vec![job]);
    assert!(a.claim_jobs(None, 10).await.unwrap().is_empty());
    assert!(matches!(
        b.complete_job(job, crate::store::JobOutcome::Sent)
            .await
            .unwrap(),
        crate::store::JobCompletion::Applied { .. }
    ));
    assert!(b.claim_jobs(None, 10).await.unwrap().is_empty());
    assert_eq!(b.next_job_due().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_claiming_at_once_take_each_job_once() {
    let (a, b) = two_nodes(std::time::Duration::from_millis(1)).await;
    let mut jobs = Vec::new();
    for index in 0..40 {
        jobs.push(accept_job(&a, &format!("tx-claim-{index}")).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // Long leases from now on, so that what one node claims stays its own.
    let (a, b) = {
        let mut a = a;
        let mut b = b;
        a.owner = super::claims::JobOwner::new(a.owner.node().to_owned(), LONG);
        b.owner = super::claims::JobOwner::new(b.owner.node().to_owned(), LONG);
        (a, b)
    };
    let claims = (0..8).map(|round| {
        let node = if round % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { node.claim_jobs(None, 7).await.unwrap() })
    });
    let mut by_node = [Vec::new(), Vec::new()];
    for (round, claim) in claims.enumerate() {
        by_node[round % 2].extend(ids(&claim.await.unwrap()));
    }
    by_node[0].extend(ids(&a.claim_jobs(None, 100).await.unwrap()));
    by_node[1].extend(ids(&b.claim_jobs(None, 100).await.unwrap()));
    // Whatever one node took, the other did not (a node may take its own job again).
    for job in &by_node[0] {
        assert!(!by_node[1].contains(job), "{job} claimed by both nodes");
    }
    let mut claimed = [by_node[0].clone(), by_node[1].clone()].concat();
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed, jobs, "every job taken by exactly one node");
    assert!(!by_node[1].is_empty(), "the second node took some");
}

const LONG: std::time::Duration = std::time::Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_job_goes_to_whichever_node_is_free_when_due() {
    let (a, b) = two_nodes(LONG).await;
    let job = accept_job(&a, "tx-defer").await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(500);
    a.defer_job(
        job,
        crate::store::Retry {
            attempts: 1,
            not_before: Some(at),
            last_error: Some("503".into()),
        },
    )
    .await
    .unwrap();
    assert!(b.claim_jobs(None, 10).await.unwrap().is_empty());
    let due = b.next_job_due().await.unwrap().unwrap();
    assert!((due - at).num_milliseconds().abs() < 5, "{due} vs {at}");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let taken = b.claim_jobs(None, 10).await.unwrap();
    assert_eq!(ids(&taken), vec![job]);
    assert_eq!(taken[0].retry.attempts, 1);
    assert!(a.claim_jobs(None, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duty_has_one_holder_until_its_lease_runs_out() {
    let (a, b) = two_nodes(LONG).await;
    let ttl = std::time::Duration::from_secs(1);
    assert!(a.hold_duty("housekeeping", ttl).await.unwrap());
    assert!(!b.hold_duty("housekeeping", ttl).await.unwrap());
    assert!(a.hold_duty("housekeeping", ttl).await.unwrap(), "renewed");
    assert!(
        b.hold_duty("other", ttl).await.unwrap(),
        "duties are separate"
    );
    tokio::time::sleep(ttl + std::time::Duration::from_millis(200)).await;
    assert!(
        b.hold_duty("housekeeping", ttl).await.unwrap(),
        "taken over"
    );
    assert!(!a.hold_duty("housekeeping", ttl).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_abandoned_long_ago_are_removed_while_running() {
    let config = fresh_database().await;
    let store = PgStore::open(&config).await.unwrap();
    let mut old = store.begin_payload().await.unwrap();
    old.start_part(b"content-type: text/xml\r\n".to_vec())
        .await
        .unwrap();
    old.write(b"<half/>").await.unwrap();
    let old_id = old.id();
    let fresh = store.begin_payload().await.unwrap();
    // The node that began `old` died two hours ago.
    let client = connect(&config.conninfo).await;
    client
        .execute(
            "UPDATE payloads SET started = now() - interval '2 hours' WHERE payload_id = $1",
            &[&old_id.0],
        )
        .await
        .unwrap();
    assert_eq!(store.remove_abandoned_uploads().await.unwrap(), 1);
    assert_eq!(store.remove_abandoned_uploads().await.unwrap(), 0);
    let left: Vec<uuid::Uuid> = client
        .query("SELECT payload_id FROM payloads", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, vec![fresh.id().0]);
    drop(old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_database_is_used_and_its_certificate_checked() {
    use super::test_server::TestServer;
    let pki = crate::pki::ExamplePki::generate(crate::pki::PkiOptions::default()).unwrap();
    let files = tempfile::tempdir().unwrap();
    pki.write_to(files.path(), false).unwrap();
    let (certificate, key) = (
        files.path().join("server.pem"),
        files.path().join("server-key.pem"),
    );
    let server =
        tokio::task::spawn_blocking(move || TestServer::start_with_tls(&certificate, &key))
            .await
            .unwrap()
            .expect("a PostgreSQL server with TLS");
    let conninfo = server.create_database("tls").await.unwrap();
    let trusting = |roots: &std::path::Path| {
        crate::tls::client::client_config(&crate::tls::client::ClientTlsFiles {
            roots: vec![roots.to_owned()],
            cert_chain: None,
            key: None,
        })
        .unwrap()
    };

    // The example CA signed the server's certificate (localhost, 127.0.0.1): TLS, required.
    let mut config = PgConfig::new(format!("{conninfo} sslmode=require"));
    config.tls = Some(trusting(&files.path().join("ca.pem")));
    let store = PgStore::open(&config).await.expect("open over TLS");
    let client = store.client().await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the connection is encrypted");

    // A server certificate from a CA the node does not trust is refused.
    let other = crate::pki::ExamplePki::generate(crate::pki::PkiOptions::default()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    other.write_to(other_dir.path(), false).unwrap();
    config.tls = Some(trusting(&other_dir.path().join("ca.pem")));
    match PgStore::open(&config).await {
        Err(StoreError::Unavailable(reason)) => assert!(reason.contains("database"), "{reason}"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("an untrusted database server was accepted"),
    }
    // sslmode=require without TLS configured cannot connect (no silent plain text).
    config.tls = None;
    assert!(PgStore::open(&config).await.is_err());
}
