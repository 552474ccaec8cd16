//! Admin actions over the JSON API (spec §11): requeue, release, resend and delete on real
//! traffic, each in the audit log with its actor; wrong states 409, unknown ids 404, and
//! cross-site browser requests refused.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::check::*;
use crate::harness::*;

/// POSTs an action and returns the status and JSON body.
async fn act(node: &Node, id: &str, action: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/messages/{id}/{action}", node.admin_base))
        .send()
        .await
        .expect("admin request");
    let status = response.status().as_u16();
    let body = serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    (status, body)
}

async fn get(node: &Node, path: &str) -> Value {
    let response = reqwest::get(format!("{}{path}", node.admin_base))
        .await
        .expect("admin request");
    assert_eq!(response.status(), 200, "{path}");
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("json")
}

/// The one message with `tx`, once it is in `state` (routing runs after the 202).
async fn message_in(node: &Node, tx: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = get(node, &format!("/api/messages?txid={tx}&state={state}")).await;
        if let Some(hit) = hits.as_array().and_then(|h| h.first()) {
            return hit.clone();
        }
        assert!(Instant::now() < deadline, "{tx} never became {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id_of(summary: &Value) -> String {
    summary["local_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn actions_change_messages_and_are_audited() {
    let node = Node::start().await;
    let portal = node.portal();
    let bygglov = node.bygglov();
    let remote = label_to(Some("urn:X-shs:5560000002"));
    let local = label_to(Some(BYGGLOV));
    for label in [&remote, &local] {
        assert_accepted(&post_label(&node, &portal, label).await, label);
    }
    let quarantined = id_of(&message_in(&node, &remote.tx_id, "QUARANTINED").await);
    let delivered = id_of(&message_in(&node, &local.tx_id, "RECEIVED").await);

    // A release needs a local `to`: refused with the reason, nothing changes.
    let (status, body) = act(&node, &quarantined, "release").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("local mailbox"),
        "{body}"
    );

    // A requeue routes again at once; with the same configuration it lands in quarantine
    // again, and the audit says what the administrator did.
    let (status, body) = act(&node, &quarantined, "requeue").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["audit"]["action"], "requeue");
    assert_eq!(body["audit"]["from"], "QUARANTINED");
    assert_eq!(body["audit"]["to"], "NEW");
    assert_eq!(body["message"]["state"], "QUARANTINED");
    let detail = get(&node, &format!("/api/messages/{quarantined}")).await;
    let states: Vec<&str> = detail["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["NEW", "QUARANTINED", "NEW", "QUARANTINED"]);

    // Resend puts an acknowledged message back in its mailbox.
    fetch(&node, &bygglov, "2120000142.bygglov", &local.tx_id).await;
    let ack = call(bygglov.post(node.url(&format!(
        "/shs/ds/2120000142.bygglov/{}?action=ack",
        local.tx_id
    ))))
    .await;
    assert_eq!(ack.status, 200, "{}", ack.text());
    let (status, body) = act(&node, &delivered, "resend").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["state"], "RECEIVED");
    let listed = call(bygglov.get(node.url("/shs/ds/2120000142.bygglov"))).await;
    assert!(listed.text().contains(&local.tx_id), "{}", listed.text());
    fetch(&node, &bygglov, "2120000142.bygglov", &local.tx_id).await;

    // Delete: gone from the API, 404 afterwards, and a second delete is 404 too.
    let (status, body) = act(&node, &quarantined, "delete").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message"].is_null());
    assert!(body["audit"]["to"].is_null());
    let response = reqwest::get(format!("{}/api/messages/{quarantined}", node.admin_base))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let (status, _) = act(&node, &quarantined, "delete").await;
    assert_eq!(status, 404);

    // The audit log, newest first, with the loopback actor.
    let audit = get(&node, "/api/audit").await;
    let entries: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap(), a["tx_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("delete", remote.tx_id.as_str()),
            ("resend", local.tx_id.as_str()),
            ("requeue", remote.tx_id.as_str()),
        ]
    );
    for entry in audit.as_array().unwrap() {
        assert!(
            entry["actor"]
                .as_str()
                .unwrap()
                .starts_with("loopback 127.0.0.1:"),
            "{entry}"
        );
    }
    let seq = audit[0]["seq"].as_u64().unwrap();
    let older = get(&node, &format!("/api/audit?before={seq}&limit=1")).await;
    assert_eq!(older.as_array().unwrap().len(), 1);
    assert_eq!(older[0]["action"], "resend");

    // The actions are counted.
    let metrics = reqwest::get(format!("{}/metrics", node.admin_base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (action, count) in [("requeue", 1), ("resend", 1), ("delete", 1), ("release", 0)] {
        let series = format!("shsd_admin_actions_total{{action=\"{action}\"}} {count}");
        assert!(metrics.contains(&series), "{series}\n{metrics}");
    }
    node.stop().await;
}

#[tokio::test]
async fn bad_action_requests_are_refused_precisely() {
    let node = Node::start().await;
    let label = label_to(Some(BYGGLOV));
    assert_accepted(&post_label(&node, &node.portal(), &label).await, &label);
    let id = id_of(&message_in(&node, &label.tx_id, "RECEIVED").await);

    let (status, body) = act(&node, &id, "requeue").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("RECEIVED"),
        "{body}"
    );
    let (status, body) = act(&node, &id, "explode").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameter"], "action");
    let (status, body) = act(&node, "not-a-uuid", "delete").await;
    assert_eq!(status, 400, "{body}");
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = act(&node, &unknown.to_string(), "delete").await;
    assert_eq!(status, 404);

    // Actions are POSTs, and a browser's cross-site POST is refused.
    let url = format!("{}/api/messages/{id}/delete", node.admin_base);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = reqwest::Client::new()
        .post(&url)
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // Nothing happened to the message, and nothing is in the audit log.
    let still = message_in(&node, &label.tx_id, "RECEIVED").await;
    assert_eq!(id_of(&still), id);
    assert_eq!(get(&node, "/api/audit").await, serde_json::json!([]));
    node.stop().await;
}
