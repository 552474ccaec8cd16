//! Conformance cases for administrator changes with their audit log (spec §11) and for
//! housekeeping: due messages, expiry, removal with shared payloads, mailbox depths
//! (spec §10).

use std::time::Duration;

use super::*;

const MAILBOX: &str = "2120000142";

fn note(actor: &str) -> AuditNote {
    AuditNote {
        actor: actor.into(),
        at: Utc::now(),
    }
}

/// A little after every transition made so far: the store stamps them with the real clock.
fn soon() -> DateTime<Utc> {
    Utc::now() + Duration::from_secs(1)
}

async fn deliver(store: &dyn Store, tx: &str) -> MessageRecord {
    accept(store, summary(tx), SENDER, Route::Mailbox(address(MAILBOX)))
        .await
        .0
}

async fn quarantine(store: &dyn Store, tx: &str) -> MessageRecord {
    let (_, job) = accept(store, summary(tx), SENDER, Route::Job).await;
    quarantine_job(store, job.unwrap()).await
}

async fn quarantine_job(store: &dyn Store, job: JobId) -> MessageRecord {
    let outcome = JobOutcome::Quarantine {
        code: ErrorCode::MissingDeliveryAddress,
        reason: "no such organisation".into(),
        notify: None,
    };
    match store.complete_job(job, outcome).await.unwrap() {
        JobCompletion::Applied { record, .. } => record,
        other => panic!("not applied: {other:?}"),
    }
}

async fn listed(store: &dyn Store) -> Vec<String> {
    let query = MailboxQuery {
        include_fetched: true,
        ..MailboxQuery::default()
    };
    let records = store.list(&address(MAILBOX), &query).await.unwrap();
    records.into_iter().map(|r| r.tx_id).collect()
}

async fn depth(store: &dyn Store) -> u64 {
    let depths = store.mailbox_depths().await.unwrap();
    let mailbox = address(MAILBOX);
    depths
        .iter()
        .find(|(m, _)| *m == mailbox)
        .map_or(0, |(_, n)| *n)
}

pub(super) async fn requeue_release_and_resend_are_audited(f: Fixture) {
    let store = &*f.store;
    let quarantined = quarantine(store, "tx-admin").await;
    assert_eq!(quarantined.state, State::Quarantined);
    let id = quarantined.local_id;

    let requeued = store
        .administer(id, AdminChange::Requeue, note("admin anna"))
        .await
        .unwrap();
    let record = requeued.record.unwrap();
    assert_eq!(record.state, State::New);
    assert_eq!(record.error, None);
    let jobs = store.pending_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(Some(jobs[0].id), requeued.job);
    quarantine_job(store, requeued.job.unwrap()).await;

    let mailbox = address(MAILBOX);
    let released = store
        .administer(
            id,
            AdminChange::Release {
                mailbox: mailbox.clone(),
            },
            note("admin bo"),
        )
        .await
        .unwrap();
    let record = released.record.unwrap();
    assert_eq!(record.state, State::Received);
    assert_eq!(record.mailbox, Some(mailbox.clone()));
    assert_eq!(listed(store).await, ["tx-admin"]);
    assert_eq!(depth(store).await, 1);

    store.mark_fetched(id).await.unwrap();
    store.acknowledge(id, None, None).await.unwrap();
    assert!(listed(store).await.is_empty());
    assert_eq!(depth(store).await, 0);
    let resent = store
        .administer(id, AdminChange::Resend, note("loopback 127.0.0.1:9"))
        .await
        .unwrap();
    assert_eq!(resent.record.unwrap().state, State::Received);
    assert_eq!(listed(store).await, ["tx-admin"]);
    assert_eq!(depth(store).await, 1);
    let found = store.find_in_mailbox(&mailbox, "tx-admin").await.unwrap();
    assert_eq!(found.unwrap().state, State::Received);

    let log = store.audit_log(None, 10).await.unwrap();
    let entries: Vec<_> = log
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str(), a.from, a.to))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "resend",
                "loopback 127.0.0.1:9",
                State::Acknowledged,
                Some(State::Received)
            ),
            (
                "release",
                "admin bo",
                State::Quarantined,
                Some(State::Received)
            ),
            (
                "requeue",
                "admin anna",
                State::Quarantined,
                Some(State::New)
            ),
        ]
    );
    assert!(
        log.iter()
            .all(|a| a.local_id == id && a.tx_id == "tx-admin")
    );
    assert_eq!(log[1].detail.as_deref(), Some("urn:X-shs:2120000142"));
    let older = store.audit_log(Some(log[0].seq), 1).await.unwrap();
    assert_eq!(older, [log[1].clone()]);
}

pub(super) async fn admin_changes_refuse_wrong_states(f: Fixture) {
    let store = &*f.store;
    let delivered = deliver(store, "tx-wrong").await;
    let (fresh, _) = accept(store, summary("tx-new"), SENDER, Route::Job).await;
    let quarantined = quarantine(store, "tx-q").await;
    let cases = [
        (delivered.local_id, AdminChange::Requeue),
        (
            delivered.local_id,
            AdminChange::Release {
                mailbox: address(MAILBOX),
            },
        ),
        (quarantined.local_id, AdminChange::Resend),
        (fresh.local_id, AdminChange::Delete),
    ];
    for (id, change) in cases {
        let before = store.message(id).await.unwrap();
        let err = store
            .administer(id, change.clone(), note("admin"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::WrongState { .. }),
            "{change:?}: {err}"
        );
        assert_eq!(store.message(id).await.unwrap(), before, "{change:?}");
    }
    let unknown = store
        .administer(LocalId::random(), AdminChange::Delete, note("admin"))
        .await;
    assert!(matches!(unknown, Err(StoreError::MessageNotFound(_))));
    assert!(store.audit_log(None, 10).await.unwrap().is_empty());
}

pub(super) async fn delete_removes_every_trace_but_the_audit(f: Fixture) {
    let store = &*f.store;
    let record = deliver(store, "tx-gone").await;
    let payload = record.payload.id;
    assert!(read_part(store, payload, 0).await.is_some());
    let deleted = store
        .administer(record.local_id, AdminChange::Delete, note("admin"))
        .await
        .unwrap();
    assert_eq!(deleted.record, None);
    assert_eq!(deleted.audit.to, None);
    assert_eq!(deleted.audit.from, State::Received);
    assert_eq!(store.message(record.local_id).await.unwrap(), None);
    assert!(listed(store).await.is_empty());
    assert_eq!(depth(store).await, 0);
    let found = store.find_in_mailbox(&address(MAILBOX), "tx-gone").await;
    assert_eq!(found.unwrap(), None);
    assert_eq!(read_part(store, payload, 0).await, None);
    let due = store.due(Due::Unfetched, soon(), 10).await.unwrap();
    assert!(due.is_empty());
    // The tx.id is free again: the sender may send it anew.
    let again = deliver(store, "tx-gone").await;
    assert_eq!(again.state, State::Received);
    assert_eq!(store.audit_log(None, 10).await.unwrap(), [deleted.audit]);
}

pub(super) async fn due_messages_follow_their_state_in_time_order(f: Fixture) {
    let store = &*f.store;
    let first = deliver(store, "tx-due-1").await;
    let second = deliver(store, "tx-due-2").await;
    let third = deliver(store, "tx-due-3").await;
    let before_all = first.state_log[0].at - Duration::from_secs(1);
    assert!(
        store
            .due(Due::Unfetched, before_all, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let unfetched = store.due(Due::Unfetched, soon(), 10).await.unwrap();
    assert_eq!(unfetched, [first.local_id, second.local_id, third.local_id]);
    assert_eq!(
        store.due(Due::Unfetched, soon(), 2).await.unwrap(),
        [first.local_id, second.local_id]
    );

    store.mark_fetched(second.local_id).await.unwrap();
    store.mark_fetched(third.local_id).await.unwrap();
    store.acknowledge(third.local_id, None, None).await.unwrap();
    let due = |class| async move { store.due(class, soon(), 10).await.unwrap() };
    assert_eq!(due(Due::Unfetched).await, [first.local_id]);
    assert_eq!(due(Due::Fetched).await, [second.local_id]);
    assert_eq!(due(Due::Done).await, [third.local_id]);

    let quarantined = quarantine(store, "tx-due-q").await;
    for class in [Due::Unfetched, Due::Fetched, Due::Done] {
        assert!(!due(class).await.contains(&quarantined.local_id));
    }
}

pub(super) async fn expiry_unlists_and_stores_the_notice(f: Fixture) {
    let store = &*f.store;
    let record = deliver(store, "tx-old").await;
    let notice = |tx: &str| {
        let tx = tx.to_owned();
        async move {
            let payload = upload(store, &[b"<shs.management/>"]).await;
            let mut summary = summary(&tx);
            summary.product = "error".into();
            summary.sequence_type = "adm".into();
            new_message(summary, MAILBOX, payload, Route::Mailbox(address(SENDER)))
        }
    };
    let Expiry::Expired {
        record: expired,
        notice: stored,
        notice_job,
    } = store
        .expire(record.local_id, Some(notice("tx-old-error").await))
        .await
        .unwrap()
    else {
        panic!("not expired");
    };
    assert_eq!(expired.state, State::Expired);
    assert_eq!(notice_job, None);
    assert_eq!(stored.unwrap().state, State::Received);
    assert!(listed(store).await.is_empty());
    assert_eq!(depth(store).await, 0);
    let senders = store
        .list(&address(SENDER), &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(senders.len(), 1);
    assert_eq!(senders[0].tx_id, "tx-old-error");
    assert_eq!(
        store.due(Due::Done, soon(), 10).await.unwrap(),
        [record.local_id]
    );

    // Expiring again, or a message fetched meanwhile, changes nothing.
    let again = store
        .expire(record.local_id, Some(notice("tx-old-error-2").await))
        .await
        .unwrap();
    assert_eq!(again, Expiry::NotDue);
    let fetched = deliver(store, "tx-fetched").await;
    store.mark_fetched(fetched.local_id).await.unwrap();
    assert_eq!(
        store.expire(fetched.local_id, None).await.unwrap(),
        Expiry::NotDue
    );
    let sender_box = store
        .list(&address(SENDER), &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(sender_box.len(), 1);
}

pub(super) async fn shared_payload_goes_with_the_last_copy(f: Fixture) {
    let store = &*f.store;
    let (parent, job) = accept(store, summary("tx-parent"), SENDER, Route::Job).await;
    let copy = |tx: &str| FanOutCopy {
        local_id: LocalId::random(),
        label: label(tx),
        summary: summary(tx),
        route: Route::Mailbox(address(MAILBOX)),
    };
    let copies = vec![copy("tx-copy-a"), copy("tx-copy-b")];
    let outcome = JobOutcome::FanOut {
        copies: copies.clone(),
    };
    store.complete_job(job.unwrap(), outcome).await.unwrap();
    let payload = parent.payload.id;

    let parent_first = store
        .administer(parent.local_id, AdminChange::Delete, note("admin"))
        .await;
    assert!(matches!(parent_first, Err(StoreError::WrongState { .. })));

    let removal = store.remove(copies[0].local_id).await.unwrap();
    assert_eq!(removal.removed, [copies[0].local_id]);
    assert_eq!(removal.payload_deleted, None);
    assert_eq!(read_part(store, payload, 0).await.unwrap(), b"abc");
    assert!(store.message(parent.local_id).await.unwrap().is_some());

    let removal = store.remove(copies[1].local_id).await.unwrap();
    assert_eq!(removal.removed, [copies[1].local_id, parent.local_id]);
    assert_eq!(removal.payload_deleted, Some(payload));
    assert_eq!(read_part(store, payload, 0).await, None);
    assert_eq!(store.message(parent.local_id).await.unwrap(), None);
    assert_eq!(depth(store).await, 0);
    // Removing what is gone is a no-op.
    assert_eq!(
        store.remove(copies[1].local_id).await.unwrap(),
        Removal::default()
    );
}

pub(super) async fn messages_are_found_by_corr_id_and_answers_noted(f: Fixture) {
    let store = &*f.store;
    let mut first = summary("tx-corr-1");
    first.corr_id = "shared".into();
    let mut second = summary("tx-corr-2");
    second.corr_id = "shared".into();
    let one = accept(store, first, SENDER, Route::Mailbox(address(MAILBOX)))
        .await
        .0;
    let two = accept(store, second, SENDER, Route::Mailbox(address(MAILBOX)))
        .await
        .0;
    deliver(store, "tx-other").await;
    // A confirm in the same conversation answers; it is never a candidate itself.
    let mut confirm = summary("tx-corr-confirm");
    confirm.corr_id = "shared".into();
    confirm.sequence_type = "adm".into();
    accept(store, confirm, SENDER, Route::Mailbox(address(MAILBOX))).await;
    let mut found: Vec<String> = store
        .with_corr_id("shared", 10, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.tx_id)
        .collect();
    found.sort();
    assert_eq!(found, ["tx-corr-1", "tx-corr-2"]);
    assert!(
        store
            .with_corr_id("share", 10, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let others = store
        .with_corr_id("shared", 10, &[one.local_id, LocalId::random()])
        .await
        .unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].local_id, two.local_id);

    let answer = Answer {
        error: None,
        tx_id: "tx-confirm".into(),
        at: crate::store::record::stored_precision(Utc::now()),
    };
    store
        .note_answer(one.local_id, answer.clone())
        .await
        .unwrap();
    let noted = store.message(one.local_id).await.unwrap().unwrap();
    assert_eq!(noted.answer, Some(answer));
    assert_eq!(noted.state, State::Received);
    store
        .note_answer(LocalId::random(), noted.answer.clone().unwrap())
        .await
        .unwrap();

    // A removed message leaves the index.
    store.remove(two.local_id).await.unwrap();
    let left = store.with_corr_id("shared", 10, &[]).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].local_id, one.local_id);
}

/// The first message of a conversation usually has its own tx.id as corr.id; the KV store
/// indexes it by corr.id through its `t/` key instead of a `c/` key of its own.
pub(super) async fn a_conversation_begun_under_its_own_tx_id_is_found_whole(f: Fixture) {
    let store = &*f.store;
    let mailbox = || Route::Mailbox(address(MAILBOX));
    let first = accept(
        store,
        summary_with_corr("conv-1", "conv-1"),
        SENDER,
        mailbox(),
    )
    .await
    .0;
    let reply = accept(
        store,
        summary_with_corr("conv-2", "conv-1"),
        SENDER,
        mailbox(),
    )
    .await
    .0;
    accept(
        store,
        summary_with_corr("conv-x", "conv-1x"),
        SENDER,
        mailbox(),
    )
    .await;
    accept(
        store,
        confirm_summary("conv-c", "conv-1"),
        SENDER,
        mailbox(),
    )
    .await;
    let ids = |records: Vec<MessageRecord>| -> Vec<LocalId> {
        records.into_iter().map(|r| r.local_id).collect()
    };
    let mut whole = ids(store.with_corr_id("conv-1", 10, &[]).await.unwrap());
    whole.sort();
    assert_eq!(whole, [first.local_id, reply.local_id]);
    assert_eq!(
        ids(store
            .with_corr_id("conv-1", 10, &[first.local_id])
            .await
            .unwrap()),
        [reply.local_id]
    );
    assert_eq!(
        ids(store
            .with_corr_id("conv-1", 10, &[reply.local_id])
            .await
            .unwrap()),
        [first.local_id]
    );
    assert_eq!(store.with_corr_id("conv-1", 1, &[]).await.unwrap().len(), 1);
    assert!(
        store
            .with_corr_id("conv-2", 10, &[])
            .await
            .unwrap()
            .is_empty(),
        "the reply's tx.id is no corr.id"
    );
    store.remove(first.local_id).await.unwrap();
    assert_eq!(
        ids(store.with_corr_id("conv-1", 10, &[]).await.unwrap()),
        [reply.local_id]
    );
}

pub(super) async fn a_logged_message_is_sent_at_once_without_job_or_mailbox(f: Fixture) {
    let store = &*f.store;
    let (record, job) = accept(store, summary("tx-logged"), SENDER, Route::Logged).await;
    assert_eq!(record.state, State::Sent);
    assert_eq!(job, None);
    assert_eq!(record.mailbox, None);
    assert!(store.pending_jobs(None, 10).await.unwrap().is_empty());
    assert!(listed(store).await.is_empty());
    assert_eq!(
        store.due(Due::Done, soon(), 10).await.unwrap(),
        [record.local_id]
    );
}
