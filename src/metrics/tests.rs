//! Unit tests: recording lands in the right series, and the exposition is well-formed.

use super::*;

fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[test]
fn recorded_values_show_in_their_series() {
    let metrics = Metrics::new();
    metrics.message_received(Received::Accepted, None);
    metrics.message_received(Received::Accepted, None);
    metrics.message_received(Received::Refused, Some(ErrorCode::IllegalSender));
    metrics.message_quarantined(ErrorCode::MissingDeliveryAddress);
    metrics.tls_handshake_failed(TlsFailure::Expired);
    metrics.limit_hit(Limit::PerIdentity);
    metrics.notice_generated(NoticeKind::Confirm);
    metrics.request_answered(EndpointLabel::List, 200, Duration::from_millis(3));
    metrics.request_answered(EndpointLabel::List, 404, Duration::from_secs(100));
    let open = metrics.connection_opened();
    let text = metrics.render(&StoreGauges::default());
    let get = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}"));
    assert_eq!(
        get(r#"shsd_messages_received_total{outcome="accepted"}"#),
        "2"
    );
    assert_eq!(
        get(r#"shsd_messages_received_total{outcome="refused"}"#),
        "1"
    );
    assert_eq!(
        get(r#"shsd_messages_refused_total{code="IllegalSender"}"#),
        "1"
    );
    assert_eq!(
        get(r#"shsd_messages_refused_total{code="OtherError"}"#),
        "0"
    );
    assert_eq!(
        get(r#"shsd_messages_quarantined_total{code="MissingDeliveryAddress"}"#),
        "1"
    );
    assert_eq!(
        get(r#"shsd_tls_handshake_failures_total{reason="expired"}"#),
        "1"
    );
    assert_eq!(
        get(r#"shsd_limit_rejections_total{limit="per_identity"}"#),
        "1"
    );
    assert_eq!(get(r#"shsd_notices_generated_total{kind="confirm"}"#), "1");
    assert_eq!(
        get(r#"shsd_http_requests_total{endpoint="list",status="2xx"}"#),
        "1"
    );
    assert_eq!(
        get(r#"shsd_http_requests_total{endpoint="list",status="4xx"}"#),
        "1"
    );
    let bucket = |le: &str| {
        get(&format!(
            r#"shsd_http_request_duration_seconds_bucket{{endpoint="list",le="{le}"}}"#
        ))
    };
    assert_eq!(bucket("0.0025"), "0");
    assert_eq!(bucket("0.005"), "1");
    assert_eq!(bucket("60"), "1", "100 s is above every finite bucket");
    assert_eq!(bucket("+Inf"), "2");
    assert_eq!(
        get(r#"shsd_http_request_duration_seconds_count{endpoint="list"}"#),
        "2"
    );
    assert_eq!(
        get(r#"shsd_http_request_duration_seconds_sum{endpoint="list"}"#),
        "100.003"
    );
    assert_eq!(get("shsd_open_connections"), "1");
    drop(open);
    assert_eq!(
        value(
            &metrics.render(&StoreGauges::default()),
            "shsd_open_connections"
        )
        .unwrap(),
        "0"
    );
}

#[test]
fn every_line_is_help_type_or_a_sample_of_a_declared_family() {
    let text = Metrics::new().render(&StoreGauges::default());
    let mut declared = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(name.starts_with("shsd_"), "{line}");
            declared.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(declared.last().map(String::as_str), Some(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
            let name = series.split('{').next().unwrap();
            let family = declared.last().unwrap();
            assert!(name.starts_with(family.as_str()), "{line} under {family}");
        }
    }
    // Exactly one HELP per family.
    let mut unique = declared.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), declared.len());
}

#[test]
fn status_classes_clamp_out_of_range_codes() {
    assert_eq!(STATUS_CLASSES[status_class(101)], "1xx");
    assert_eq!(STATUS_CLASSES[status_class(202)], "2xx");
    assert_eq!(STATUS_CLASSES[status_class(503)], "5xx");
    assert_eq!(STATUS_CLASSES[status_class(999)], "5xx");
    assert_eq!(STATUS_CLASSES[status_class(42)], "1xx");
}

#[test]
fn admin_housekeeping_and_store_gauges_are_rendered() {
    let metrics = Metrics::new();
    metrics.admin_action("requeue");
    metrics.admin_action("requeue");
    metrics.admin_action("no-such-action");
    metrics.housekept(Housekept::Expired);
    metrics.housekeeping_failed();
    let store = StoreGauges {
        mailbox_depths: vec![("2120000142".into(), 3), ("2120000142.bygg\"lov".into(), 1)],
        size_on_disk: Some(4096),
        pending_jobs: 2,
        push_retries_pending: 1,
        syncs: None,
        backlog: None,
    };
    let text = metrics.render(&store);
    let get = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}"));
    assert_eq!(get(r#"shsd_admin_actions_total{action="requeue"}"#), "2");
    assert_eq!(get(r#"shsd_admin_actions_total{action="delete"}"#), "0");
    assert_eq!(
        get(r#"shsd_housekeeping_messages_total{outcome="expired"}"#),
        "1"
    );
    assert_eq!(get("shsd_housekeeping_failures_total"), "1");
    assert_eq!(get(r#"shsd_mailbox_depth{mailbox="2120000142"}"#), "3");
    assert_eq!(
        get(r#"shsd_mailbox_depth{mailbox="2120000142.bygg\"lov"}"#),
        "1"
    );
    assert_eq!(get("shsd_store_size_bytes"), "4096");
    assert_eq!(get("shsd_routing_jobs_pending"), "2");
    assert_eq!(get("shsd_push_retries_pending"), "1");
}

#[test]
fn the_store_syncs_render_as_a_cumulative_histogram_with_their_writes() {
    let syncs = SyncRecorder::default();
    syncs.synced(Duration::from_micros(300), 4);
    syncs.synced(Duration::from_micros(900), 1);
    syncs.synced(Duration::from_millis(40), 60);
    syncs.synced(Duration::from_secs(30), 2);
    let store = StoreGauges {
        syncs: Some(syncs.snapshot()),
        backlog: Some(BacklogSnapshot {
            bytes: 12_345,
            limit_bytes: 64 << 20,
            checkpoints: 7,
            waits: 3,
        }),
        ..StoreGauges::default()
    };
    let text = Metrics::new().render(&store);
    let get = |series: &str| value(&text, series).unwrap_or_else(|| panic!("{series}"));
    let bucket = |le: &str| {
        get(&format!(
            r#"shsd_store_sync_duration_seconds_bucket{{le="{le}"}}"#
        ))
    };
    assert_eq!(bucket("0.0002"), "0");
    assert_eq!(bucket("0.0005"), "1");
    assert_eq!(bucket("0.001"), "2");
    assert_eq!(bucket("0.025"), "2");
    assert_eq!(bucket("0.05"), "3");
    assert_eq!(bucket("10"), "3", "30 s is above the last bound");
    assert_eq!(bucket("+Inf"), "4");
    assert_eq!(get("shsd_store_sync_duration_seconds_count"), "4");
    assert_eq!(get("shsd_store_sync_duration_seconds_sum"), "30.0412");
    assert_eq!(get("shsd_store_synced_writes_total"), "67");
    assert_eq!(get("shsd_store_index_backlog_bytes"), "12345");
    assert_eq!(get("shsd_store_index_backlog_limit_bytes"), "67108864");
    assert_eq!(get("shsd_store_checkpoints_total"), "7");
    assert_eq!(get("shsd_store_backlog_waits_total"), "3");
    assert!(text.contains("# TYPE shsd_store_index_backlog_bytes gauge"));
    assert!(text.contains("# TYPE shsd_store_checkpoints_total counter"));
    assert!(text.contains("# TYPE shsd_store_sync_duration_seconds histogram"));

    let without = Metrics::new().render(&StoreGauges::default());
    assert!(
        !without.contains("shsd_store_sync"),
        "a store without syncs shows none"
    );
    assert!(!without.contains("backlog"), "nor a backlog");
}
