//! The read-only admin JSON API (spec §11): search, detail with the state history, the
//! quarantine list, and JSON errors for bad parameters and unknown ids.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::*;
use crate::harness::*;

/// GETs an admin path and returns the status and the JSON body, checking the type.
async fn get(node: &Node, path_and_query: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{}{path_and_query}", node.admin_base))
        .await
        .expect("admin request");
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{path_and_query}"
    );
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).expect("json body");
    (status, body)
}

/// The summaries of a search, asserting 200.
async fn search(node: &Node, query: &str) -> Vec<Value> {
    let (status, body) = get(node, &format!("/api/messages?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    body.as_array().expect("a list").clone()
}

fn txids(summaries: &[Value]) -> Vec<&str> {
    let mut ids: Vec<&str> = summaries
        .iter()
        .map(|s| s["tx_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

fn sorted(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids
}

/// Polls a search until it has `count` hits (routing runs after the 202).
async fn wait_for(node: &Node, query: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = search(node, query).await;
        if hits.len() >= count || Instant::now() > deadline {
            return hits;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn search_detail_and_quarantine_after_traffic() {
    let node = Node::start().await;
    let portal = node.portal();
    let bygglov = node.bygglov();

    let mut delivered = label_to(Some(BYGGLOV));
    delivered.corr_id = "corr-delivered".into();
    let mut acked = label_to(Some(BYGGLOV));
    acked.corr_id = "corr-acked".into();
    // Not a local organisation and no directory address: quarantined.
    let mut quarantined = label_to(Some("urn:X-shs:5560000002"));
    quarantined.corr_id = "corr-quarantined".into();
    for label in [&delivered, &acked, &quarantined] {
        assert_accepted(&post_label(&node, &portal, label).await, label);
    }
    wait_for(&node, &format!("txid={}&state=RECEIVED", acked.tx_id), 1).await;
    fetch(&node, &bygglov, "2120000142.bygglov", &acked.tx_id).await;
    let ack = call(bygglov.post(node.url(&format!(
        "/shs/ds/2120000142.bygglov/{}?action=ack",
        acked.tx_id
    ))))
    .await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    wait_for(
        &node,
        &format!("txid={}&state=RECEIVED", delivered.tx_id),
        1,
    )
    .await;
    // The error to the portal (from 5560000002) and the confirm (from 2120000142) too.
    let all = wait_for(&node, "", 5).await;
    assert_eq!(all.len(), 5, "{all:?}");
    let notice = |corr: &str| {
        let found: Vec<&Value> = all
            .iter()
            .filter(|s| s["corr_id"] == corr && s["product"] != PRODUCT)
            .collect();
        assert_eq!(found.len(), 1, "one notice for {corr}: {all:?}");
        found[0]["tx_id"].as_str().unwrap().to_owned()
    };
    let confirm = notice("corr-acked");
    let error = notice("corr-quarantined");
    let (d, a, q) = (
        delivered.tx_id.as_str(),
        acked.tx_id.as_str(),
        quarantined.tx_id.as_str(),
    );

    let by_tx = search(&node, &format!("txid={d}")).await;
    assert_eq!(txids(&by_tx), [d]);
    assert_eq!(by_tx[0]["state"], "RECEIVED");
    assert_eq!(by_tx[0]["mailbox"], "2120000142.bygglov");
    assert_eq!(by_tx[0]["sender"], "5590000001");
    assert!(by_tx[0]["error"].is_null());
    assert_eq!(
        txids(&search(&node, "txid=no-such-tx").await),
        Vec::<&str>::new()
    );
    assert_eq!(txids(&search(&node, "corrid=corr-delivered").await), [d]);
    assert_eq!(
        txids(&search(&node, "corrid=corr-acked").await),
        sorted(vec![a, &confirm])
    );
    // An organisation matches as sender or as the owner of the mailbox.
    assert_eq!(
        txids(&search(&node, "org=2120000142").await),
        sorted(vec![d, a, &confirm])
    );
    assert_eq!(
        txids(&search(&node, "org=urn:X-shs:5560000002").await),
        [error.as_str()]
    );
    assert_eq!(
        txids(&search(&node, &format!("product={PRODUCT}")).await),
        sorted(vec![d, a, q])
    );
    assert_eq!(txids(&search(&node, "state=quarantined").await), [q]);
    assert_eq!(txids(&search(&node, "state=ACKNOWLEDGED").await), [a]);
    assert_eq!(
        txids(&search(&node, "state=RECEIVED&org=2120000142").await),
        sorted(vec![d, &confirm])
    );
    assert_eq!(search(&node, "limit=2").await.len(), 2);
    assert!(search(&node, "since=2999-01-01T00:00:00Z").await.is_empty());
    assert_eq!(search(&node, "until=2999-01-01T00:00:00Z").await.len(), 5);

    // Detail of the acknowledged message: the whole state history, in order.
    let acked_id = search(&node, &format!("txid={a}")).await[0]["local_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, detail) = get(&node, &format!("/api/messages/{acked_id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["tx_id"], a);
    assert_eq!(detail["state"], "ACKNOWLEDGED");
    let history = detail["state_history"].as_array().unwrap();
    let states: Vec<&str> = history
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["NEW", "RECEIVED", "FETCHED", "ACKNOWLEDGED"]);
    let times: Vec<&str> = history.iter().map(|h| h["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // One data part, the whole payload.
    assert_eq!(detail["part_sizes"], serde_json::json!([detail["size"]]));
    assert!(detail["label"].as_str().unwrap().contains(a));
    assert!(detail["signer"].is_null());

    // The quarantined one: its error, and it alone in the quarantine list.
    let (status, quarantine) = get(&node, "/api/quarantine").await;
    assert_eq!(status, 200);
    let quarantine = quarantine.as_array().unwrap();
    assert_eq!(txids(quarantine), [q]);
    let error_info = &quarantine[0]["error"];
    assert_eq!(error_info["code"], "MissingDeliveryAddress");
    let q_id = quarantine[0]["local_id"].as_str().unwrap();
    let (_, detail) = get(&node, &format!("/api/messages/{q_id}")).await;
    assert_eq!(detail["error"]["code"], "MissingDeliveryAddress");
    let states: Vec<&str> = detail["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["NEW", "QUARANTINED"]);
    node.stop().await;
}

#[tokio::test]
async fn bad_parameters_are_400_and_unknown_ids_404() {
    let node = Node::start().await;
    for (query, parameter) in [
        ("org=12345", "org"),
        ("product=not-a-product", "product"),
        ("state=LOST", "state"),
        ("since=yesterday", "since"),
        ("until=2024-13-01T00:00:00Z", "until"),
        ("limit=-1", "limit"),
        ("txid=%zz", "query"),
        ("tx.id=1", "tx.id"),
    ] {
        let (status, body) = get(&node, &format!("/api/messages?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(parameter),
            "{body}"
        );
    }
    let (status, body) = get(&node, "/api/quarantine?state=NEW").await;
    assert_eq!((status, &body["parameter"]), (400, &Value::from("state")));
    let (status, body) = get(&node, "/api/messages/not-a-uuid").await;
    assert_eq!(
        (status, &body["parameter"]),
        (400, &Value::from("local_id"))
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = get(&node, &format!("/api/messages/{unknown}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(&unknown.to_string())
    );
    node.stop().await;
}
