//! Engine-specific tests of [`super::PgStore`] (the shared behaviour is the conformance
//! suite's): migrations, and two stores on one database acting as two nodes.

use std::sync::Arc;

use super::test_server::fresh_database;
use super::{PgStore, schema};
use crate::store::{Acceptance, Route, Store, StoreError};

async fn versions(config: &super::PgConfig) -> Vec<i32> {
    let (client, connection) = tokio_postgres::connect(&config.conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
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

    let (client, connection) = tokio_postgres::connect(&config.conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
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
