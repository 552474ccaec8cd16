//! Two nodes in this process on one database, as behind a load balancer: a message sent
//! to one is listed, fetched and acknowledged on the other, its confirm comes back through
//! either, and a resend to the other node is a duplicate.

use std::sync::Arc;

use shsd::pki::{ExamplePki, PkiOptions};
use shsd::protocol::management::ManagementDocument;
use shsd::store::postgres::test_server::fresh_database;

use super::{address, assert_content, client, send_tx};
use crate::harness::{BYGGLOV, Node, PORTAL, config_on_postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_to_one_node_is_fetched_and_acknowledged_on_the_other() {
    let database = fresh_database().await;
    let pki = Arc::new(ExamplePki::generate(PkiOptions::default()).expect("pki"));
    let text = config_on_postgres(&database.conninfo, 5, "");
    let a = Node::start_from(Arc::clone(&pki), text.clone()).await;
    let b = Node::start_from(Arc::clone(&pki), text).await;

    let tx_id = uuid::Uuid::new_v4().to_string();
    let receipt = send_tx(&client(&pki, &pki.portal, &a.base), &tx_id)
        .await
        .expect("sent to A");
    assert_eq!((receipt.status.as_u16(), receipt.duplicate), (202, false));

    // The same tx.id through B: the database knows it.
    let again = send_tx(&client(&pki, &pki.portal, &b.base), &tx_id)
        .await
        .expect("resent to B");
    assert!(
        again.duplicate,
        "a resend through the other node is a duplicate"
    );
    assert_eq!(again.local_id, receipt.local_id);

    let bygglov = client(&pki, &pki.bygglov, &b.base);
    let mailbox = address(BYGGLOV);
    let listed = bygglov.list(&mailbox, "").await.expect("list on B");
    let listed: Vec<_> = listed.messages.iter().map(|m| m.tx_id.as_str()).collect();
    assert_eq!(listed, vec![tx_id.as_str()]);
    let fetched = bygglov.fetch(&mailbox, &tx_id).await.expect("fetch on B");
    assert_content(&fetched, &tx_id);
    bygglov.ack(&mailbox, &tx_id).await.expect("ack on B");
    let listed = client(&pki, &pki.bygglov, &a.base)
        .list(&mailbox, "")
        .await
        .expect("list on A");
    assert!(listed.messages.is_empty(), "acknowledged on B, gone on A");

    // The confirm to the portal, listed through either node.
    let portal_box = address(PORTAL);
    for base in [&a.base, &b.base] {
        let portal = client(&pki, &pki.portal, base);
        // The confirm is routed by a job, shortly after the ack.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let list = loop {
            // noack: also once fetched through the other node.
            let list = portal
                .list(&portal_box, "filter=noack")
                .await
                .expect("portal list");
            if !list.messages.is_empty() || std::time::Instant::now() > deadline {
                break list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert_eq!(list.messages.len(), 1, "one confirm, seen from {base}");
        let confirm = portal
            .fetch(&portal_box, &list.messages[0].tx_id)
            .await
            .expect("fetch confirm");
        let split = shsd::protocol::mime::split_message(
            &confirm,
            Some("message/rfc822"),
            shsd::protocol::mime::Limits::default(),
        )
        .expect("confirm parses");
        let document = ManagementDocument::parse(&split.parts[0].1).expect("management");
        // The message's corr.id is its tx.id (`message_with_tx`).
        assert_eq!(document.corr_id, tx_id);
        assert_eq!(document.error_code(), None, "a confirm, not an error");
    }
    a.stop().await;
    b.stop().await;
}
