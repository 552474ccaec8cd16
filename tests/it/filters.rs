//! Every list filter of spec §3.3 over HTTP: producttype (lists, prefix optional, path
//! product), filter=noack, maxhits (default, cap, invalid), status, corrid, contentid,
//! originator (with the fallback to from), endrecipient, sequencetype, since, metaname and
//! metavalue, and sortattribute/sortorder/arrivalorder. Invalid values: 400 OtherError
//! naming the parameter.

use std::time::Duration;

use shsd::protocol::ErrorCode;
use shsd::protocol::label::{EndRecipient, Label, Meta, Originator, SequenceType, Status};
use tokio::task::JoinSet;

use crate::check::*;
use crate::harness::*;

const MAILBOX: &str = "2120000142.bygglov";

/// Sends each label from the portal to bygglov, in order, asserting 202.
async fn send_all(node: &Node, labels: &[&Label]) {
    let portal = node.portal();
    for label in labels {
        assert_accepted(&post_label(node, &portal, label).await, label);
    }
}

/// The tx.ids listed in bygglov's mailbox for `query`.
async fn listed(node: &Node, query: &str) -> Vec<String> {
    let list = list(node, &node.bygglov(), &format!("{MAILBOX}{query}")).await;
    tx_ids(&list).into_iter().map(str::to_owned).collect()
}

fn ids(labels: &[&Label]) -> Vec<String> {
    labels.iter().map(|l| l.tx_id.clone()).collect()
}

/// Asserts that `query` is refused with 400 OtherError and an errorinfo naming `parameter`.
async fn assert_bad_parameter(node: &Node, query: &str, parameter: &str) {
    let path = format!("/shs/ds/{MAILBOX}{query}");
    let reply = call(node.bygglov().get(node.url(&path))).await;
    assert_refused(&reply, 400, ErrorCode::OtherError);
    let info = error_info(&reply);
    assert!(info.contains(parameter), "{query}: {info:?}");
}

fn with_product(product: &str) -> Label {
    let mut label = label_to(Some(BYGGLOV));
    product.clone_into(&mut label.product.value);
    label
}

#[tokio::test]
async fn producttype_takes_a_comma_list_with_or_without_prefix_and_the_path_product_wins() {
    let node = Node::start().await;
    let (p1, p2, p3) = (
        with_product(PRODUCT),
        with_product(PRODUCT_2),
        with_product(PRODUCT_3),
    );
    send_all(&node, &[&p1, &p2, &p3]).await;
    let bare = |product: &str| product.trim_start_matches("urn:X-shs:").to_owned();

    assert_eq!(listed(&node, "").await, ids(&[&p1, &p2, &p3]));
    assert_eq!(
        listed(&node, &format!("?producttype={}", bare(PRODUCT))).await,
        ids(&[&p1])
    );
    let two = format!("?producttype={PRODUCT},{}", bare(PRODUCT_2));
    assert_eq!(listed(&node, &two).await, ids(&[&p1, &p2]));
    let spaced = format!("?producttype={}%20,%20{PRODUCT_3}", bare(PRODUCT));
    assert_eq!(listed(&node, &spaced).await, ids(&[&p1, &p3]));
    assert!(listed(&node, "?producttype=confirm,error").await.is_empty());

    assert_eq!(listed(&node, &format!("/{PRODUCT_2}")).await, ids(&[&p2]));
    let both = format!("/{PRODUCT_2}?producttype={PRODUCT}");
    assert_eq!(
        listed(&node, &both).await,
        ids(&[&p2]),
        "the path product wins"
    );
    // A bare UUID segment is a tx.id, not a product (spec §3): fetch, 404.
    let path = format!("/shs/ds/{MAILBOX}/{}", bare(PRODUCT));
    assert_refused(
        &call(node.bygglov().get(node.url(&path))).await,
        404,
        ErrorCode::OtherError,
    );

    assert_bad_parameter(&node, "?producttype=bygglov", "producttype").await;
    node.stop().await;
}

#[tokio::test]
async fn filter_noack_adds_fetched_and_drops_acknowledged() {
    let node = Node::start().await;
    let (fetched, acked, fresh) = (
        label_to(Some(BYGGLOV)),
        label_to(Some(BYGGLOV)),
        label_to(Some(BYGGLOV)),
    );
    send_all(&node, &[&fetched, &acked, &fresh]).await;
    let bygglov = node.bygglov();
    fetch(&node, &bygglov, MAILBOX, &fetched.tx_id).await;
    fetch(&node, &bygglov, MAILBOX, &acked.tx_id).await;
    let ack = format!("/shs/ds/{MAILBOX}/{}?action=ack", acked.tx_id);
    assert_eq!(call(bygglov.post(node.url(&ack))).await.status, 200);

    assert_eq!(listed(&node, "").await, ids(&[&fresh]));
    assert_eq!(
        listed(&node, "?filter=noack").await,
        ids(&[&fetched, &fresh])
    );
    assert_bad_parameter(&node, "?filter=all", "filter").await;
    node.stop().await;
}

/// Sends `count` messages to bygglov, eight at a time.
async fn send_many(node: &Node, count: usize) {
    let portal = node.portal();
    let url = node.url("/shs/rs");
    let mut tasks = JoinSet::new();
    for n in 0..count {
        if tasks.len() >= 8 {
            tasks.join_next().await.unwrap().unwrap();
        }
        let (body, ct, _) = message_to(Some(BYGGLOV), format!("<n>{n}</n>").as_bytes());
        let request = portal.post(&url).header("content-type", ct).body(body);
        tasks.spawn(async move {
            let status = request.send().await.expect("send").status();
            assert_eq!(status, 202);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn maxhits_defaults_to_200_and_rejects_non_numbers() {
    let node = Node::start().await;
    send_many(&node, 203).await;
    let all = listed(&node, "?maxhits=1000").await;
    assert_eq!(all.len(), 203);
    assert_eq!(
        listed(&node, "").await,
        all[..200],
        "default 200, oldest first"
    );
    assert_eq!(listed(&node, "?maxhits=3").await, all[..3]);
    assert!(listed(&node, "?maxhits=0").await.is_empty());
    for bad in ["ten", "-1", "", "1.5"] {
        assert_bad_parameter(&node, &format!("?maxhits={bad}"), "maxhits").await;
    }
    node.stop().await;
}

#[tokio::test]
async fn maxhits_is_capped_by_the_configuration() {
    let node = Node::start_with(Extra("[limits]\nlist_max_hits = 3\n".into())).await;
    send_many(&node, 5).await;
    assert_eq!(listed(&node, "").await.len(), 3);
    assert_eq!(listed(&node, "?maxhits=100").await.len(), 3);
    assert_eq!(listed(&node, "?maxhits=2").await.len(), 2);
    node.stop().await;
}

#[tokio::test]
async fn status_test_messages_are_listed_only_when_asked_for() {
    let node = Node::start().await;
    let production = label_to(Some(BYGGLOV));
    let mut test = label_to(Some(BYGGLOV));
    test.status = Status::Test;
    send_all(&node, &[&production, &test]).await;
    assert_eq!(listed(&node, "").await, ids(&[&production]));
    assert_eq!(
        listed(&node, "?status=production").await,
        ids(&[&production])
    );
    assert_eq!(listed(&node, "?status=test").await, ids(&[&test]));
    let entry = list(&node, &node.bygglov(), &format!("{MAILBOX}?status=test")).await;
    assert_eq!(entry.messages[0].status, Status::Test);
    assert_bad_parameter(&node, "?status=prod", "status").await;
    node.stop().await;
}

#[tokio::test]
async fn corrid_and_contentid_match_exactly() {
    let node = Node::start().await;
    let mut a = label_to(Some(BYGGLOV));
    a.corr_id = "arende-1".into();
    let mut b = label_to(Some(BYGGLOV));
    b.corr_id = "arende-2".into();
    let mut c = label_to(Some(BYGGLOV));
    c.corr_id = "arende-1".into();
    send_all(&node, &[&a, &b, &c]).await;
    assert_eq!(listed(&node, "?corrid=arende-1").await, ids(&[&a, &c]));
    assert!(listed(&node, "?corrid=arende").await.is_empty());
    assert!(listed(&node, "?corrid=ARENDE-1").await.is_empty());
    let by_content = format!("?contentid={}", b.content.content_id);
    assert_eq!(listed(&node, &by_content).await, ids(&[&b]));
    let both = format!("?corrid=arende-1&contentid={}", b.content.content_id);
    assert!(listed(&node, &both).await.is_empty());
    node.stop().await;
}

#[tokio::test]
async fn originator_matches_originator_or_from_without_one_and_endrecipient_matches() {
    let node = Node::start().await;
    let from_only = label_to(Some(BYGGLOV));
    let mut for_citizen = label_to(Some(BYGGLOV));
    for_citizen.originator = Some(Originator {
        value: "urn:X-shs:1212121212".into(),
        ..Originator::default()
    });
    for_citizen.end_recipient = Some(EndRecipient {
        value: "urn:X-shs:2120000142.handlaggare".into(),
        ..EndRecipient::default()
    });
    let mut originator_only = label_to(Some(BYGGLOV));
    originator_only.from = None;
    originator_only.originator = Some(Originator {
        value: "5590000001".into(),
        ..Originator::default()
    });
    send_all(&node, &[&from_only, &for_citizen, &originator_only]).await;

    let portal_ids = ids(&[&from_only, &originator_only]);
    for query in ["urn:X-shs:5590000001", "5590000001", "URN:x-shs:5590000001"] {
        assert_eq!(
            listed(&node, &format!("?originator={query}")).await,
            portal_ids,
            "{query}"
        );
    }
    assert_eq!(
        listed(&node, "?originator=1212121212").await,
        ids(&[&for_citizen])
    );
    assert!(listed(&node, "?originator=9999999999").await.is_empty());

    let wanted = ids(&[&for_citizen]);
    assert_eq!(
        listed(&node, "?endrecipient=urn:X-shs:2120000142.handlaggare").await,
        wanted
    );
    assert_eq!(
        listed(&node, "?endrecipient=2120000142.handlaggare").await,
        wanted
    );
    assert!(listed(&node, "?endrecipient=2120000142").await.is_empty());
    let entry = list(
        &node,
        &node.bygglov(),
        &format!("{MAILBOX}?originator=1212121212"),
    )
    .await;
    let entry = &entry.messages[0];
    assert_eq!(entry.originator.as_deref(), Some("urn:X-shs:1212121212"));
    assert_eq!(
        entry.end_recipient.as_deref(),
        Some("urn:X-shs:2120000142.handlaggare")
    );
    node.stop().await;
}

#[tokio::test]
async fn sequencetype_filters_and_is_checked() {
    let node = Node::start().await;
    let mut labels = Vec::new();
    for sequence in [
        SequenceType::Event,
        SequenceType::Request,
        SequenceType::Reply,
    ] {
        let mut label = label_to(Some(BYGGLOV));
        label.sequence_type = sequence;
        labels.push(label);
    }
    let refs: Vec<&Label> = labels.iter().collect();
    send_all(&node, &refs).await;
    assert_eq!(listed(&node, "?sequencetype=event").await, ids(&refs[..1]));
    assert_eq!(
        listed(&node, "?sequencetype=request").await,
        ids(&refs[1..2])
    );
    assert_eq!(listed(&node, "?sequencetype=reply").await, ids(&refs[2..]));
    assert!(listed(&node, "?sequencetype=adm").await.is_empty());
    assert_bad_parameter(&node, "?sequencetype=question", "sequencetype").await;
    node.stop().await;
}

#[tokio::test]
async fn since_takes_node_local_time_or_rfc_3339() {
    let node = Node::start().await;
    let portal = node.portal();
    let early = label_to(Some(BYGGLOV));
    let early_arrival = post_label(&node, &portal, &early).await;
    assert_eq!(early_arrival.status, 202);
    let between = chrono::Utc::now();
    // Arrival dates have whole seconds: make the second message arrive in a later one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = label_to(Some(BYGGLOV));
    let late_arrival = post_label(&node, &portal, &late).await;
    assert_eq!(late_arrival.status, 202);

    let early_local = early_arrival.header("x-shs-arrivaldate");
    let late_local = late_arrival.header("x-shs-arrivaldate");
    assert_eq!(
        listed(&node, &format!("?since={early_local}")).await,
        ids(&[&early, &late])
    );
    assert_eq!(
        listed(&node, &format!("?since={late_local}")).await,
        ids(&[&late])
    );
    let rfc3339 = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        listed(&node, &format!("?since={rfc3339}")).await,
        ids(&[&late])
    );
    let offset = between
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        .replace('+', "%2B");
    assert_eq!(
        listed(&node, &format!("?since={offset}")).await,
        ids(&[&late])
    );
    assert!(
        listed(&node, "?since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    assert_bad_parameter(&node, "?since=yesterday", "since").await;
    assert_bad_parameter(&node, "?since=2026-13-01T00:00:00", "since").await;
    node.stop().await;
}

#[tokio::test]
async fn metaname_and_metavalue_select_by_meta_element() {
    let node = Node::start().await;
    let meta = |value: &str| Meta {
        name: "arende".into(),
        value: value.into(),
    };
    let mut one = label_to(Some(BYGGLOV));
    one.meta = vec![
        meta("BN 2026/1"),
        Meta {
            name: "typ".into(),
            value: "bygglov".into(),
        },
    ];
    let mut two = label_to(Some(BYGGLOV));
    two.meta = vec![meta("BN 2026/2")];
    let none = label_to(Some(BYGGLOV));
    send_all(&node, &[&one, &two, &none]).await;
    assert_eq!(listed(&node, "?metaname=arende").await, ids(&[&one, &two]));
    assert_eq!(
        listed(&node, "?metaname=arende&metavalue=BN+2026%2F1").await,
        ids(&[&one])
    );
    assert_eq!(listed(&node, "?metaname=typ").await, ids(&[&one]));
    assert!(
        listed(&node, "?metaname=arende&metavalue=BN")
            .await
            .is_empty()
    );
    assert!(listed(&node, "?metaname=okand").await.is_empty());
    let listed_meta = list(&node, &node.bygglov(), &format!("{MAILBOX}?metaname=typ")).await;
    assert_eq!(listed_meta.messages[0].meta, one.meta);
    assert_bad_parameter(&node, "?metavalue=BN", "metavalue").await;
    node.stop().await;
}

#[tokio::test]
async fn sort_by_an_attribute_with_arrival_order_as_tie_breaker() {
    let node = Node::start().await;
    let mut labels = Vec::new();
    for corr in ["b", "a", "c", "a"] {
        let mut label = label_to(Some(BYGGLOV));
        corr.clone_into(&mut label.corr_id);
        labels.push(label);
    }
    let refs: Vec<&Label> = labels.iter().collect();
    send_all(&node, &refs).await;
    let [m1, m2, m3, m4] = [refs[0], refs[1], refs[2], refs[3]];

    assert_eq!(listed(&node, "").await, ids(&[m1, m2, m3, m4]));
    assert_eq!(
        listed(&node, "?arrivalorder=desc").await,
        ids(&[m4, m3, m2, m1])
    );
    assert_eq!(
        listed(&node, "?sortattribute=corr.id").await,
        ids(&[m2, m4, m1, m3])
    );
    assert_eq!(
        listed(&node, "?sortattribute=corr.id&sortorder=desc").await,
        ids(&[m3, m1, m2, m4])
    );
    assert_eq!(
        listed(
            &node,
            "?sortattribute=corrid&sortorder=desc&arrivalorder=desc"
        )
        .await,
        ids(&[m3, m1, m4, m2])
    );
    assert_eq!(listed(&node, "?sortattribute=tx.id&sortorder=asc").await, {
        let mut sorted = ids(&refs);
        sorted.sort();
        sorted
    });
    assert_bad_parameter(&node, "?sortattribute=colour", "sortattribute").await;
    assert_bad_parameter(&node, "?sortattribute=corr.id&sortorder=up", "sortorder").await;
    assert_bad_parameter(&node, "?arrivalorder=sideways", "arrivalorder").await;
    node.stop().await;
}

#[tokio::test]
async fn sort_by_size_is_numeric() {
    let node = Node::start().await;
    let portal = node.portal();
    let mut sent = Vec::new();
    for size in [100usize, 9, 20] {
        let (body, ct, label) = message_to(Some(BYGGLOV), &vec![b'x'; size]);
        assert_eq!(post(&node, &portal, body, &ct).await.status, 202);
        sent.push(label);
    }
    let [big, small, middle] = [&sent[0], &sent[1], &sent[2]];
    assert_eq!(
        listed(&node, "?sortattribute=size").await,
        ids(&[small, middle, big])
    );
    assert_eq!(
        listed(&node, "?sortattribute=size&sortorder=desc").await,
        ids(&[big, middle, small])
    );
    node.stop().await;
}
