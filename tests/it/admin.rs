//! The admin listener (spec §11): health, readiness and Prometheus metrics over plain HTTP
//! on loopback, and metrics that count exactly the traffic the node saw.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shsd::protocol::ErrorCode;

use crate::check::*;
use crate::harness::*;

/// Scrapes `/metrics`, checks that every line is `# HELP`, `# TYPE` or a sample, and
/// returns the samples by series (`name{labels}`).
async fn scrape(node: &Node) -> BTreeMap<String, f64> {
    let response = reqwest::get(format!("{}/metrics", node.admin_base))
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse_exposition(&response.text().await.expect("metrics body"))
}

/// The text exposition format 0.0.4, strictly: families declared by `# HELP` then
/// `# TYPE`, samples named `shsd_…` with well-formed labels and a number.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut family = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_metric_name(name) && name.starts_with("shsd_"), "{line}");
            assert!(!help.is_empty(), "{line}");
            family = name.to_owned();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(name, family, "TYPE follows its HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
        } else {
            let (series, value) = line.rsplit_once(' ').expect("name{labels} value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect("}")),
                None => (series, ""),
            };
            assert!(is_metric_name(name), "{line}");
            assert!(
                name.starts_with(&family),
                "{line} outside its family {family}"
            );
            for pair in labels.split(',').filter(|pair| !pair.is_empty()) {
                let (key, quoted) = pair.split_once('=').expect("label=\"value\"");
                assert!(is_metric_name(key), "{line}");
                assert!(
                    quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                    "{line}"
                );
            }
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "duplicate series {series}"
            );
        }
    }
    samples
}

/// Asserts the limit rejection counters: `counts` for the limits named there, 0 for every
/// other. Limits are counted before the refusal is answered, so no waiting is needed.
pub async fn assert_limit_rejections(node: &Node, counts: &[(&str, f64)]) {
    let samples = scrape(node).await;
    let mut seen = 0;
    for (series, value) in &samples {
        let Some(rest) = series.strip_prefix("shsd_limit_rejections_total{limit=\"") else {
            continue;
        };
        seen += 1;
        let limit = rest.trim_end_matches("\"}");
        let want = counts
            .iter()
            .find(|(name, _)| *name == limit)
            .map_or(0.0, |(_, count)| *count);
        assert_eq!(*value, want, "{series}");
    }
    assert_eq!(seen, 5, "every limit is rendered");
}

/// Scrapes until every series of `expected` has its value, or ten seconds passed; returns
/// the last scrape. Routing, the end of a fetch stream and the server's side of a failed
/// handshake may finish just after the client has its answer.
pub async fn wait_for_samples(
    node: &Node,
    expected: &BTreeMap<&str, f64>,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(node).await;
        let done = expected
            .iter()
            .all(|(series, value)| samples.get(*series) == Some(value));
        if done || Instant::now() > deadline {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_nothing_else_does() {
    let node = Node::start().await;
    assert!(node.admin_base.starts_with("http://127.0.0.1:"));
    let admin = reqwest::Client::new();
    let get = |path: &str| admin.get(format!("{}{path}", node.admin_base)).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let samples = scrape(&node).await;
    assert_eq!(samples["shsd_messages_delivered_total"], 0.0);

    for path in ["/metrics/", "/health", "/shs/rs", "/consoles"] {
        assert_eq!(get(path).await.unwrap().status(), 404, "{path}");
    }
    // The root is the way into the web console.
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", node.admin_base))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/console");
    let posted = admin
        .post(format!("{}/healthz", node.admin_base))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET");
    node.stop().await;
}

#[tokio::test]
async fn the_counters_count_exactly_the_traffic() {
    let node = Node::start().await;
    let portal = node.portal();
    let bygglov = node.bygglov();

    // Two accepted (one of them quarantined), one duplicate, one refused.
    let delivered = label_to(Some(BYGGLOV));
    assert_accepted(&post_label(&node, &portal, &delivered).await, &delivered);
    let again = post_label(&node, &portal, &delivered).await;
    assert_accepted(&again, &delivered);
    assert_eq!(again.header("x-shs-duplicatemsg"), "yes");
    let mut other_sender = label_to(Some(BYGGLOV));
    other_sender.from.as_mut().unwrap().value = KOMMUN.into();
    let refused = post_label(&node, &portal, &other_sender).await;
    assert_refused(&refused, 403, ErrorCode::IllegalSender);
    let undeliverable = label_to(Some("urn:X-shs:5560000002"));
    assert_accepted(
        &post_label(&node, &portal, &undeliverable).await,
        &undeliverable,
    );

    // One fetch and one ack of the delivered message.
    fetch(&node, &bygglov, "2120000142.bygglov", &delivered.tx_id).await;
    let ack = call(bygglov.post(node.url(&format!(
        "/shs/ds/2120000142.bygglov/{}?action=ack",
        delivered.tx_id
    ))))
    .await;
    assert_eq!(ack.status, 200, "{}", ack.text());

    // One handshake with an expired certificate.
    let expired = node.client(Some(&node.pki.expired));
    assert!(
        expired
            .get(node.url("/shs/ds/5590000001"))
            .send()
            .await
            .is_err()
    );

    let expected: BTreeMap<&str, f64> = [
        (r#"shsd_messages_received_total{outcome="accepted"}"#, 2.0),
        (r#"shsd_messages_received_total{outcome="duplicate"}"#, 1.0),
        (r#"shsd_messages_refused_total{code="IllegalSender"}"#, 1.0),
        (r#"shsd_messages_received_total{outcome="refused"}"#, 1.0),
        // The delivered message, the error to the portal, the confirm to the portal.
        ("shsd_messages_delivered_total", 3.0),
        (
            r#"shsd_messages_quarantined_total{code="MissingDeliveryAddress"}"#,
            1.0,
        ),
        ("shsd_messages_fetched_total", 1.0),
        ("shsd_messages_acknowledged_total", 1.0),
        (r#"shsd_notices_generated_total{kind="confirm"}"#, 1.0),
        (r#"shsd_notices_generated_total{kind="error"}"#, 1.0),
        (
            r#"shsd_tls_handshake_failures_total{reason="expired"}"#,
            1.0,
        ),
        (
            r#"shsd_http_requests_total{endpoint="send",status="2xx"}"#,
            3.0,
        ),
        (
            r#"shsd_http_requests_total{endpoint="send",status="4xx"}"#,
            1.0,
        ),
        (
            r#"shsd_http_requests_total{endpoint="fetch",status="2xx"}"#,
            1.0,
        ),
        (
            r#"shsd_http_requests_total{endpoint="ack",status="2xx"}"#,
            1.0,
        ),
        (
            r#"shsd_http_request_duration_seconds_count{endpoint="send"}"#,
            4.0,
        ),
        // The round housekeeping runs at start (nothing is due).
        ("shsd_housekeeping_rounds_total", 1.0),
        // Gauges: the portal holds the error and the confirm; bygglov's message is acked.
        (r#"shsd_mailbox_depth{mailbox="5590000001"}"#, 2.0),
        (r#"shsd_mailbox_depth{mailbox="2120000142.bygglov"}"#, 0.0),
        ("shsd_routing_jobs_pending", 0.0),
    ]
    .into_iter()
    .collect();
    let samples = wait_for_samples(&node, &expected).await;
    // The disk syncs depend on how writes shared them, not only on the traffic: there
    // were some, and they made the writes durable.
    let sample = |series: &str| samples.get(series).copied().unwrap_or(0.0);
    let syncs = sample("shsd_store_sync_duration_seconds_count");
    assert!(syncs >= 1.0, "{syncs} syncs rendered");
    assert!(sample("shsd_store_synced_writes_total") >= syncs);
    // So do the checkpoints into the index, which also run on a timer.
    let limit = sample("shsd_store_index_backlog_limit_bytes");
    assert!(limit > 0.0, "the backlog's limit is rendered");
    assert!(sample("shsd_store_index_backlog_bytes") <= limit);
    assert_eq!(
        sample("shsd_store_backlog_waits_total"),
        0.0,
        "nobody waited"
    );
    for (series, value) in &samples {
        if series.starts_with("shsd_store_sync") || series.starts_with("shsd_store_checkpoints") {
            continue;
        }
        let counted = series.contains("_total");
        match expected.get(series.as_str()) {
            Some(want) => assert_eq!(value, want, "{series}"),
            None if counted => assert_eq!(*value, 0.0, "{series} counted unexpected traffic"),
            None => {}
        }
    }
    for series in expected.keys() {
        assert!(samples.contains_key(*series), "{series} is not rendered");
    }
    node.stop().await;
}
