//! Property test: `list` equals a brute-force reference (every record of the mailbox,
//! filtered by [`MailboxQuery::matches`], sorted by [`MailboxQuery::compare`], cut at
//! `max_hits`) for random mailboxes and queries. This checks what the index walk adds on
//! top of the reference semantics: paging, early stop, reverse scans, trimming while
//! sorting, the fetched flag in the index, removal on acknowledge.

use proptest::prelude::*;

use super::*;
use crate::protocol::label::Status;

#[derive(Debug, Clone)]
struct Spec {
    mailbox: u8,
    test_status: bool,
    product: u8,
    corr: u8,
    originator: Option<u8>,
    subject: Option<u8>,
    size: u64,
    fetched: bool,
    acked: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (0u8..2, rarely(), 0u8..2, 0u8..3),
        (
            proptest::option::of(0u8..2),
            proptest::option::of(0u8..3),
            0u64..4,
        ),
        (rarely(), rarely()),
    )
        .prop_map(
            |(
                (mailbox, test_status, product, corr),
                (originator, subject, size),
                (fetched, acked),
            )| Spec {
                mailbox,
                test_status,
                product,
                corr,
                originator,
                subject,
                size,
                fetched,
                acked,
            },
        )
}

/// Filters and states that exclude messages are drawn rarely, so that most queries
/// answer many messages and order, paging and early stop are really exercised.
fn rarely() -> proptest::bool::Weighted {
    proptest::bool::weighted(0.2)
}

fn sometimes<S: Strategy>(inner: S) -> proptest::option::OptionStrategy<S> {
    proptest::option::weighted(0.2, inner)
}

const PRODUCTS: [&str; 2] = [PRODUCT, "urn:X-shs:0f8b4c1d-6b4a-4e2c-9e5a-0c7f3b2a1d00"];
const MAILBOXES: [&str; 2] = ["2120000142", "2120000142.sub"];

fn query() -> impl Strategy<Value = MailboxQuery> {
    let sort = proptest::option::of((
        prop_oneof![
            Just(SortAttribute::Subject),
            Just(SortAttribute::Size),
            Just(SortAttribute::CorrId),
            Just(SortAttribute::Originator),
        ],
        any::<bool>(),
    ));
    (
        (any::<bool>(), 0usize..40, rarely(), sometimes(0u8..2)),
        (sometimes(0u8..3), sometimes(0u8..2), sort, any::<bool>()),
    )
        .prop_map(
            |((include_fetched, max_hits, test, product), (corr, originator, sort, desc))| {
                let order = |desc: bool| {
                    if desc {
                        SortOrder::Descending
                    } else {
                        SortOrder::Ascending
                    }
                };
                MailboxQuery {
                    include_fetched,
                    max_hits,
                    status: if test {
                        Status::Test
                    } else {
                        Status::Production
                    },
                    products: product
                        .map(|p| vec![PRODUCTS[p as usize].parse().unwrap()])
                        .unwrap_or_default(),
                    corr_id: corr.map(|c| format!("corr{c}")),
                    originator: originator.map(|o| format!("111111111{o}")),
                    sort: sort.map(|(attribute, desc)| SortBy {
                        attribute,
                        order: order(desc),
                    }),
                    arrival_order: order(desc),
                    ..MailboxQuery::default()
                }
            },
        )
}

async fn check(specs: Vec<Spec>, queries: Vec<MailboxQuery>) -> Result<(), TestCaseError> {
    let f = memory();
    let store = &*f.store;
    let mut ids = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let mut s = summary(&format!("tx-{i}"));
        s.status = if spec.test_status {
            "test"
        } else {
            "production"
        }
        .into();
        s.product = PRODUCTS[spec.product as usize].into();
        s.corr_id = format!("corr{}", spec.corr);
        s.originator = spec.originator.map(|o| format!("urn:X-shs:111111111{o}"));
        s.subject = spec.subject.map(|n| format!("subject {n}"));
        s.size = spec.size;
        let mailbox = MAILBOXES[spec.mailbox as usize];
        let (record, _) = accept(store, s, SENDER, Route::Mailbox(address(mailbox))).await;
        if spec.fetched {
            store.mark_fetched(record.local_id).await.unwrap();
        }
        if spec.acked {
            store
                .acknowledge(record.local_id, None, None)
                .await
                .unwrap();
        }
        ids.push(record.local_id);
    }
    let mut all = Vec::new();
    for id in ids {
        all.push(store.message(id).await.unwrap().unwrap());
    }
    for mailbox in MAILBOXES.map(address) {
        for query in &queries {
            let mut expected: Vec<MessageRecord> = all
                .iter()
                .filter(|r| r.mailbox.as_ref() == Some(&mailbox) && query.matches(*r))
                .cloned()
                .collect();
            expected.sort_by(|a, b| query.compare(a, b));
            expected.truncate(query.max_hits);
            let listed = store.list(&mailbox, query).await.unwrap();
            prop_assert_eq!(txs(&listed), txs(&expected), "{:?}", query);
            let summaries = store.list_summaries(&mailbox, query).await.unwrap();
            let expected: Vec<&MessageSummary> = expected.iter().map(|r| &r.summary).collect();
            prop_assert_eq!(
                summaries.iter().collect::<Vec<_>>(),
                expected,
                "{:?}",
                query
            );
        }
    }
    Ok(())
}

fn txs(records: &[MessageRecord]) -> Vec<&str> {
    records.iter().map(|r| r.tx_id.as_str()).collect()
}

proptest! {
    // No regression files: they would land outside `src/store/`; a failure prints its
    // minimal input instead.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn list_equals_reference(
        specs in proptest::collection::vec(spec(), 0..80),
        queries in proptest::collection::vec(query(), 1..6),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        runtime.block_on(check(specs, queries))?;
    }
}
