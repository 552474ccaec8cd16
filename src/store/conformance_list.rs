//! Conformance cases for the mailbox: list filters and order (spec §3.3), fetch (§3.4) and
//! acknowledge (§3.5).

use chrono::Duration;

use super::*;
use crate::protocol::label::{SequenceType, Status};
use crate::protocol::urn::ProductId;

const MAILBOX: &str = "2120000142";

/// Delivers a message straight into `mailbox` and returns its record.
async fn deliver(store: &dyn Store, summary: MessageSummary, mailbox: &str) -> MessageRecord {
    accept(store, summary, SENDER, Route::Mailbox(address(mailbox)))
        .await
        .0
}

/// A test message: its tx.id and how its summary differs from the default.
type Variant = (&'static str, Box<dyn Fn(&mut MessageSummary)>);

fn txs(records: &[MessageRecord]) -> Vec<&str> {
    records.iter().map(|r| r.tx_id.as_str()).collect()
}

/// The tx.ids a list answers, checked to be the same through `list_summaries`.
async fn list(store: &dyn Store, query: &MailboxQuery) -> Vec<String> {
    let records = store.list(&address(MAILBOX), query).await.unwrap();
    let summaries = store
        .list_summaries(&address(MAILBOX), query)
        .await
        .unwrap();
    let expected: Vec<&MessageSummary> = records.iter().map(|r| &r.summary).collect();
    assert_eq!(summaries.iter().collect::<Vec<_>>(), expected, "{query:?}");
    txs(&records).into_iter().map(str::to_owned).collect()
}

pub(super) async fn list_is_oldest_first_and_per_mailbox(f: Fixture) {
    let store = &*f.store;
    let (_, late_job) = accept(store, summary("routed-later"), SENDER, Route::Job).await;
    for tx in ["a1", "a2", "a3"] {
        deliver(store, summary(tx), MAILBOX).await;
    }
    deliver(store, summary("sub1"), "2120000142.bygglov").await;
    deliver(store, summary("other1"), "2120000143").await;
    // Routed after a1..a3, but arrived before them: listed first.
    store
        .complete_job(
            late_job.unwrap(),
            JobOutcome::Deliver {
                mailbox: address(MAILBOX),
            },
        )
        .await
        .unwrap();
    let query = MailboxQuery::default();
    assert_eq!(
        list(store, &query).await,
        ["routed-later", "a1", "a2", "a3"]
    );
    let sub = store
        .list(&address("urn:x-shs:2120000142.bygglov"), &query)
        .await
        .unwrap();
    assert_eq!(txs(&sub), ["sub1"]);
    let other = store.list(&address("2120000143"), &query).await.unwrap();
    assert_eq!(txs(&other), ["other1"]);
    assert!(
        store
            .list(&address("2120000144"), &query)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn list_filters_each_attribute(f: Fixture) {
    let store = &*f.store;
    let base = Utc.with_ymd_and_hms(2024, 5, 17, 8, 0, 0).unwrap();
    let other_product = "URN:X-SHS:0F8B4C1D-6B4A-4E2C-9E5A-0C7F3B2A1D00";
    let variants: Vec<Variant> = vec![
        ("plain", Box::new(|_| {})),
        ("test", Box::new(|s| s.status = "test".into())),
        ("product2", Box::new(|s| s.product = other_product.into())),
        ("corr", Box::new(|s| s.corr_id = "special-corr".into())),
        (
            "content",
            Box::new(|s| s.content_id = "special-content".into()),
        ),
        (
            "orig",
            Box::new(|s| s.originator = Some("urn:x-shs:1111111111".into())),
        ),
        (
            "from-only",
            Box::new(|s| s.from = Some("2222222222".into())),
        ),
        (
            "end",
            Box::new(|s| s.end_recipient = Some("urn:X-shs:3333333333".into())),
        ),
        ("request", Box::new(|s| s.sequence_type = "request".into())),
        (
            "meta",
            Box::new(|s| {
                s.meta = vec![MetaEntry {
                    name: "kommun".into(),
                    value: "Uppsala".into(),
                }];
            }),
        ),
        ("no-status", Box::new(|s| s.status = String::new())),
        ("fetched", Box::new(|_| {})),
    ];
    let mut arrivals = Vec::new();
    for (minute, (tx, change)) in variants.iter().enumerate() {
        let mut summary = summary(tx);
        change(&mut summary);
        let payload = upload(store, &[b"x"]).await;
        let mut message = new_message(summary, SENDER, payload, Route::Mailbox(address(MAILBOX)));
        message.arrival = base + Duration::minutes(minute as i64);
        arrivals.push(message.arrival);
        let Acceptance::Accepted { record, .. } = store.accept(message).await.unwrap() else {
            panic!("not accepted");
        };
        if *tx == "fetched" {
            store.mark_fetched(record.local_id).await.unwrap();
        }
    }
    let all_production = [
        "plain",
        "product2",
        "corr",
        "content",
        "orig",
        "from-only",
        "end",
        "request",
        "meta",
        "no-status",
    ];
    let q = MailboxQuery::default;
    assert_eq!(list(store, &q()).await, all_production);

    let cases: Vec<(MailboxQuery, Vec<&str>)> = vec![
        (
            MailboxQuery {
                status: Status::Test,
                ..q()
            },
            vec!["test"],
        ),
        (
            MailboxQuery {
                products: vec![other_product.parse().unwrap()],
                ..q()
            },
            vec!["product2"],
        ),
        (
            MailboxQuery {
                products: vec![PRODUCT.parse().unwrap(), other_product.parse().unwrap()],
                ..q()
            },
            all_production.to_vec(),
        ),
        (
            MailboxQuery {
                products: vec![ProductId::Confirm],
                ..q()
            },
            vec![],
        ),
        (
            MailboxQuery {
                corr_id: Some("special-corr".into()),
                ..q()
            },
            vec!["corr"],
        ),
        (
            MailboxQuery {
                content_id: Some("special-content".into()),
                ..q()
            },
            vec!["content"],
        ),
        (
            MailboxQuery {
                originator: Some("1111111111".into()),
                ..q()
            },
            vec!["orig"],
        ),
        (
            MailboxQuery {
                originator: Some("urn:X-shs:2222222222".into()),
                ..q()
            },
            vec!["from-only"],
        ),
        (
            MailboxQuery {
                end_recipient: Some("3333333333".into()),
                ..q()
            },
            vec!["end"],
        ),
        (
            MailboxQuery {
                sequence_type: Some(SequenceType::Request),
                ..q()
            },
            vec!["request"],
        ),
        (
            MailboxQuery {
                sequence_type: Some(SequenceType::Adm),
                ..q()
            },
            vec![],
        ),
        (
            MailboxQuery {
                since: Some(arrivals[8]),
                ..q()
            },
            vec!["request", "meta", "no-status"],
        ),
        (
            MailboxQuery {
                since: Some(arrivals[9] + Duration::seconds(1)),
                ..q()
            },
            vec!["no-status"],
        ),
        (
            MailboxQuery {
                meta: Some(MetaFilter {
                    name: "kommun".into(),
                    value: None,
                }),
                ..q()
            },
            vec!["meta"],
        ),
        (
            MailboxQuery {
                meta: Some(MetaFilter {
                    name: "kommun".into(),
                    value: Some("Uppsala".into()),
                }),
                ..q()
            },
            vec!["meta"],
        ),
        (
            MailboxQuery {
                meta: Some(MetaFilter {
                    name: "kommun".into(),
                    value: Some("Umeå".into()),
                }),
                ..q()
            },
            vec![],
        ),
        (
            MailboxQuery {
                include_fetched: true,
                corr_id: Some("corr-fetched".into()),
                ..q()
            },
            vec!["fetched"],
        ),
        (
            MailboxQuery {
                products: vec![PRODUCT.parse().unwrap()],
                originator: Some(SENDER.into()),
                sequence_type: Some(SequenceType::Event),
                ..q()
            },
            vec!["plain", "corr", "content", "end", "meta", "no-status"],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(list(store, &query).await, expected, "{query:?}");
    }
    let with_fetched = list(
        store,
        &MailboxQuery {
            include_fetched: true,
            ..q()
        },
    )
    .await;
    assert_eq!(with_fetched.len(), all_production.len() + 1);
    assert_eq!(with_fetched.last().map(String::as_str), Some("fetched"));
}

pub(super) async fn list_sorts_and_limits(f: Fixture) {
    let store = &*f.store;
    let subjects = [
        ("s1", Some("c"), 10),
        ("s2", Some("a"), 9),
        ("s3", Some("b"), 100),
        ("s4", None, 1),
        ("s5", Some("a"), 5),
    ];
    for (tx, subject, size) in subjects {
        let mut summary = summary(tx);
        summary.subject = subject.map(str::to_owned);
        summary.size = size;
        deliver(store, summary, MAILBOX).await;
    }
    let q = MailboxQuery::default;
    let by = |attribute, order| Some(SortBy { attribute, order });
    use SortOrder::{Ascending as Asc, Descending as Desc};
    let cases: Vec<(MailboxQuery, Vec<&str>)> = vec![
        (q(), vec!["s1", "s2", "s3", "s4", "s5"]),
        (MailboxQuery { max_hits: 2, ..q() }, vec!["s1", "s2"]),
        (MailboxQuery { max_hits: 0, ..q() }, vec![]),
        (
            MailboxQuery {
                arrival_order: Desc,
                max_hits: 3,
                ..q()
            },
            vec!["s5", "s4", "s3"],
        ),
        (
            MailboxQuery {
                sort: by(SortAttribute::Subject, Asc),
                ..q()
            },
            vec!["s4", "s2", "s5", "s3", "s1"],
        ),
        (
            MailboxQuery {
                sort: by(SortAttribute::Subject, Desc),
                ..q()
            },
            vec!["s1", "s3", "s2", "s5", "s4"],
        ),
        (
            MailboxQuery {
                sort: by(SortAttribute::Subject, Desc),
                arrival_order: Desc,
                max_hits: 4,
                ..q()
            },
            vec!["s1", "s3", "s5", "s2"],
        ),
        (
            MailboxQuery {
                sort: by(SortAttribute::Size, Asc),
                ..q()
            },
            vec!["s4", "s5", "s2", "s1", "s3"],
        ),
        (
            MailboxQuery {
                sort: by(SortAttribute::TxId, Desc),
                max_hits: 1,
                ..q()
            },
            vec!["s5"],
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(list(store, &query).await, expected, "{query:?}");
    }

    // More than one engine page (256 index entries), filtered, with early stop and sort.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = Arc::clone(&f.store);
            tokio::spawn(async move {
                let mut summary = summary(&format!("bulk-{i:03}"));
                if i % 3 == 0 {
                    summary.corr_id = "third".into();
                }
                deliver(&*store, summary, "2120000145").await
            })
        })
        .collect();
    let mut records = Vec::new();
    for task in tasks {
        records.push(task.await.unwrap());
    }
    records.sort_by_key(|r| r.arrival_seq);
    let mailbox = address("2120000145");
    let all = store
        .list(
            &mailbox,
            &MailboxQuery {
                max_hits: 1000,
                ..q()
            },
        )
        .await
        .unwrap();
    assert_eq!(all, records);
    let thirds: Vec<&MessageRecord> = records
        .iter()
        .filter(|r| r.summary.corr_id == "third")
        .collect();
    let query = MailboxQuery {
        corr_id: Some("third".into()),
        max_hits: 90,
        ..q()
    };
    let listed = store.list(&mailbox, &query).await.unwrap();
    assert_eq!(listed.iter().collect::<Vec<_>>(), thirds[..90]);
    // A short list reads short pages first; the filter makes it read on.
    let query = MailboxQuery {
        corr_id: Some("third".into()),
        max_hits: 5,
        ..q()
    };
    let listed = store.list(&mailbox, &query).await.unwrap();
    assert_eq!(listed.iter().collect::<Vec<_>>(), thirds[..5]);
    let query = MailboxQuery {
        sort: by(SortAttribute::TxId, Desc),
        max_hits: 3,
        ..q()
    };
    let listed = store.list(&mailbox, &query).await.unwrap();
    assert_eq!(txs(&listed), ["bulk-299", "bulk-298", "bulk-297"]);
}

/// Fetch and ack find a message by tx.id; after a list the key-value store takes the record
/// the list named (`tx_hints`), which must answer exactly as the `t/` look-up does.
pub(super) async fn a_listed_message_is_found_in_its_own_mailbox_only(f: Fixture) {
    let store = &*f.store;
    let record = deliver(store, summary("h1"), MAILBOX).await;
    deliver(store, summary("h2"), "2120000143").await;
    assert_eq!(list(store, &MailboxQuery::default()).await, ["h1"]);
    let (mailbox, elsewhere) = (address(MAILBOX), address("2120000143"));
    let found = store.find_in_mailbox(&mailbox, "h1").await.unwrap();
    assert_eq!(found.map(|r| r.local_id), Some(record.local_id));
    let in_other = store.find_in_mailbox(&elsewhere, "h1").await.unwrap();
    assert!(in_other.is_none(), "h1 is not in the other mailbox");
    let other = store.find_in_mailbox(&mailbox, "h2").await.unwrap();
    assert!(other.is_none(), "h2 is in another mailbox");
    store.remove(record.local_id).await.unwrap();
    let removed = store.find_in_mailbox(&mailbox, "h1").await.unwrap();
    assert!(removed.is_none(), "listed, then removed");
}

pub(super) async fn fetch_then_ack_with_generated_confirm(f: Fixture) {
    let store = &*f.store;
    let record = deliver(store, summary("tx-fetch"), MAILBOX).await;
    let noack = MailboxQuery {
        include_fetched: true,
        ..MailboxQuery::default()
    };

    let fetched = store.mark_fetched(record.local_id).await.unwrap();
    assert_eq!(fetched.state, State::Fetched);
    assert!(list(store, &MailboxQuery::default()).await.is_empty());
    assert_eq!(list(store, &noack).await, ["tx-fetch"]);
    // Fetching again is allowed until acknowledged.
    assert_eq!(store.mark_fetched(record.local_id).await.unwrap(), fetched);
    let found = store
        .find_in_mailbox(&address(MAILBOX), "tx-fetch")
        .await
        .unwrap();
    assert_eq!(found, Some(fetched));

    let confirm_payload = upload(
        store,
        &[b"<shs.management><confirmation/></shs.management>"],
    )
    .await;
    let mut confirm_summary = summary("tx-fetch-confirm");
    confirm_summary.product = "confirm".into();
    confirm_summary.sequence_type = "adm".into();
    let confirm = new_message(
        confirm_summary,
        MAILBOX,
        confirm_payload.clone(),
        Route::Mailbox(address(SENDER)),
    );
    // The confirm is delivered here at once, so the ack notes it as the answer too.
    let answer = Answer {
        error: None,
        tx_id: "tx-fetch-confirm".into(),
        at: crate::store::record::stored_precision(chrono::Utc::now()),
    };
    let outcome = store
        .acknowledge(record.local_id, Some(confirm.clone()), Some(answer.clone()))
        .await
        .unwrap();
    let AckOutcome::Acknowledged {
        record: acked,
        generated,
        generated_job,
    } = outcome
    else {
        panic!("not acknowledged");
    };
    assert_eq!(acked.state, State::Acknowledged);
    assert_eq!(acked.answer, Some(answer));
    let states: Vec<State> = acked.state_log.iter().map(|c| c.state).collect();
    assert_eq!(
        states,
        [
            State::New,
            State::Received,
            State::Fetched,
            State::Acknowledged
        ]
    );
    assert!(list(store, &noack).await.is_empty());
    let generated = generated.unwrap();
    assert_eq!(generated_job, None);
    assert_eq!(generated.local_id, confirm.local_id);
    assert_eq!(generated.sender.as_str(), MAILBOX);
    let sender_box = store
        .list(&address(SENDER), &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(sender_box, [generated]);
    let body = read_part(store, confirm_payload.id, 0).await.unwrap();
    assert_eq!(body, b"<shs.management><confirmation/></shs.management>");
    // Still findable by tx.id, so a repeated ack or late fetch gets a precise answer.
    let found = store
        .find_in_mailbox(&address(MAILBOX), "tx-fetch")
        .await
        .unwrap();
    assert_eq!(found, Some(acked));
}

pub(super) async fn ack_is_idempotent(f: Fixture) {
    let store = &*f.store;
    let record = deliver(store, summary("tx-ack"), MAILBOX).await;
    let AckOutcome::Acknowledged {
        record: acked,
        generated: None,
        ..
    } = store
        .acknowledge(record.local_id, None, None)
        .await
        .unwrap()
    else {
        panic!("not acknowledged");
    };
    let confirm_payload = upload(store, &[b"confirm"]).await;
    let confirm = new_message(
        summary("tx-ack-confirm"),
        MAILBOX,
        confirm_payload.clone(),
        Route::Job,
    );
    let again = store
        .acknowledge(record.local_id, Some(confirm), None)
        .await
        .unwrap();
    assert_eq!(again, AckOutcome::AlreadyAcknowledged(acked.clone()));
    assert_eq!(store.message(record.local_id).await.unwrap(), Some(acked));
    assert!(store.pending_jobs(None, 10).await.unwrap().is_empty());
    assert_eq!(read_part(store, confirm_payload.id, 0).await, None);
    let confirm_box = store
        .list(&address(SENDER), &MailboxQuery::default())
        .await
        .unwrap();
    assert!(confirm_box.is_empty());
}

pub(super) async fn ack_and_fetch_refuse_wrong_states(f: Fixture) {
    let store = &*f.store;
    let (new, job) = accept(store, summary("tx-new"), SENDER, Route::Job).await;
    let wrong = |state, action| StoreError::WrongState {
        local_id: new.local_id,
        state,
        action,
    };
    assert_eq!(
        store.mark_fetched(new.local_id).await.unwrap_err(),
        wrong(State::New, "fetch")
    );
    let payload = upload(store, &[b"confirm"]).await;
    let confirm = new_message(
        summary("tx-new-confirm"),
        MAILBOX,
        payload.clone(),
        Route::Job,
    );
    assert_eq!(
        store
            .acknowledge(new.local_id, Some(confirm), None)
            .await
            .unwrap_err(),
        wrong(State::New, "acknowledge")
    );
    assert_eq!(read_part(store, payload.id, 0).await, None);

    let outcome = JobOutcome::Quarantine {
        code: ErrorCode::UnknownReceiver,
        reason: "r".into(),
        notify: None,
    };
    store.complete_job(job.unwrap(), outcome).await.unwrap();
    assert_eq!(
        store
            .acknowledge(new.local_id, None, None)
            .await
            .unwrap_err(),
        wrong(State::Quarantined, "acknowledge")
    );
    let acked = deliver(store, summary("tx-acked"), MAILBOX).await;
    store.acknowledge(acked.local_id, None, None).await.unwrap();
    assert!(matches!(
        store.mark_fetched(acked.local_id).await,
        Err(StoreError::WrongState {
            state: State::Acknowledged,
            ..
        })
    ));
    let unknown = LocalId::random();
    assert_eq!(
        store.mark_fetched(unknown).await.unwrap_err(),
        StoreError::MessageNotFound(unknown)
    );
    assert_eq!(
        store.acknowledge(unknown, None, None).await.unwrap_err(),
        StoreError::MessageNotFound(unknown)
    );
}
