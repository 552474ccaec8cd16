//! Conformance cases for the admin search (spec §11): every filter, the organisation rule
//! (sender or mailbox), newest-first order and the limit.

use chrono::Duration;

use super::*;
use crate::protocol::ErrorCode;
use crate::store::search::MAX_LIMIT;

const OTHER_PRODUCT: &str = "URN:X-SHS:0F8B4C1D-6B4A-4E2C-9E5A-0C7F3B2A1D00";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 17, 8, 0, 0).unwrap()
}

/// Accepts a message that arrived `hours` after [`t0`].
async fn accept_at(
    store: &dyn Store,
    summary: MessageSummary,
    sender: &str,
    route: Route,
    hours: i64,
) -> (MessageRecord, Option<JobId>) {
    let payload = upload(store, &[b"abc"]).await;
    let mut message = new_message(summary, sender, payload, route);
    message.arrival = t0() + Duration::hours(hours);
    match store.accept(message).await.unwrap() {
        Acceptance::Accepted { record, job } => (record, job),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

async fn found(store: &dyn Store, search: AdminSearch) -> Vec<String> {
    let records = store.search(&search).await.unwrap();
    for record in &records {
        assert!(search.matches(record), "{} does not match", record.tx_id);
    }
    records.into_iter().map(|r| r.tx_id).collect()
}

pub(super) async fn search_filters_each_field(f: Fixture) {
    let store = &*f.store;
    let mailbox = Route::Mailbox(address("2120000142.bygglov"));
    accept_at(store, summary("s-recv"), SENDER, mailbox, 0).await;
    let mut quarantined = summary("s-quar");
    quarantined.corr_id = "special-corr".into();
    let (_, job) = accept_at(store, quarantined, SENDER, Route::Job, 1).await;
    let outcome = JobOutcome::Quarantine {
        code: ErrorCode::MissingDeliveryAddress,
        reason: "no address".into(),
        notify: None,
    };
    store.complete_job(job.unwrap(), outcome).await.unwrap();
    let mut other = summary("s-other");
    other.product = OTHER_PRODUCT.into();
    // OTHER_SENDER is the organisation of the mailbox s-recv went to.
    accept_at(store, other, OTHER_SENDER, Route::Job, 2).await;
    accept_at(store, summary("s-new"), SENDER, Route::Job, 3).await;

    let all = ["s-new", "s-other", "s-quar", "s-recv"];
    assert_eq!(found(store, AdminSearch::default()).await, all);
    let by = |f: fn(&mut AdminSearch)| {
        let mut search = AdminSearch::default();
        f(&mut search);
        search
    };
    let cases: Vec<(AdminSearch, Vec<&str>)> = vec![
        (by(|s| s.tx_id = Some("s-quar".into())), vec!["s-quar"]),
        (by(|s| s.tx_id = Some("s-none".into())), vec![]),
        (
            by(|s| {
                s.tx_id = Some("s-quar".into());
                s.state = Some(State::New);
            }),
            vec![],
        ),
        (
            by(|s| s.corr_id = Some("special-corr".into())),
            vec!["s-quar"],
        ),
        (
            by(|s| s.organisation = Some(OTHER_SENDER.parse().unwrap())),
            vec!["s-other", "s-recv"],
        ),
        (
            by(|s| s.organisation = Some(SENDER.parse().unwrap())),
            vec!["s-new", "s-quar", "s-recv"],
        ),
        (
            by(|s| s.organisation = Some("5560000002".parse().unwrap())),
            vec![],
        ),
        (
            by(|s| s.product = Some(OTHER_PRODUCT.parse().unwrap())),
            vec!["s-other"],
        ),
        (by(|s| s.state = Some(State::Quarantined)), vec!["s-quar"]),
        (by(|s| s.state = Some(State::New)), vec!["s-new", "s-other"]),
        (by(|s| s.state = Some(State::Received)), vec!["s-recv"]),
        (
            by(|s| s.arrived_from = Some(t0() + Duration::hours(1))),
            vec!["s-new", "s-other", "s-quar"],
        ),
        (
            by(|s| s.arrived_until = Some(t0() + Duration::hours(1))),
            vec!["s-recv"],
        ),
        (
            by(|s| {
                s.arrived_from = Some(t0() + Duration::hours(1));
                s.arrived_until = Some(t0() + Duration::hours(3));
            }),
            vec!["s-other", "s-quar"],
        ),
    ];
    for (search, want) in cases {
        assert_eq!(found(store, search.clone()).await, want, "{search:?}");
    }
    let quarantined = store
        .search(&by(|s| s.state = Some(State::Quarantined)))
        .await
        .unwrap();
    let error = quarantined[0].error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::MissingDeliveryAddress);
}

pub(super) async fn search_is_newest_first_and_limited(f: Fixture) {
    let store = &*f.store;
    let mut all = Vec::new();
    for i in 0..12 {
        let tx = format!("n-{i:02}");
        // Arrival times out of step with arrival order: the order is the store's.
        accept_at(store, summary(&tx), SENDER, Route::Job, 12 - i).await;
        all.push(tx);
    }
    all.reverse();
    let limited = |limit| AdminSearch {
        limit,
        ..AdminSearch::default()
    };
    assert_eq!(found(store, limited(5)).await, all[..5]);
    assert_eq!(found(store, limited(11)).await, all[..11]);
    assert_eq!(found(store, limited(12)).await, all);
    assert_eq!(found(store, limited(0)).await, Vec::<String>::new());
    assert_eq!(found(store, limited(usize::MAX)).await, all);
    assert_eq!(limited(usize::MAX).limit(), MAX_LIMIT);
}
