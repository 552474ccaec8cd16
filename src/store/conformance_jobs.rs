//! Conformance cases for routing jobs (spec §5.1, §5.2): deliver, quarantine, fan-out,
//! idempotent completion and resumption order.

use super::*;

pub(super) async fn deliver_job_puts_message_in_mailbox(f: Fixture) {
    let store = &*f.store;
    let mailbox = address("2120000142");
    let (record, job) = accept(store, summary("tx-route"), SENDER, Route::Job).await;
    assert!(
        store
            .list(&mailbox, &MailboxQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    let done = store
        .complete_job(
            job.unwrap(),
            JobOutcome::Deliver {
                mailbox: mailbox.clone(),
            },
        )
        .await
        .unwrap();
    let JobCompletion::Applied {
        record: routed,
        created,
    } = done
    else {
        panic!("not applied");
    };
    assert!(created.is_empty());
    assert_eq!(routed.state, State::Received);
    assert_eq!(routed.mailbox, Some(mailbox.clone()));
    let states: Vec<State> = routed.state_log.iter().map(|c| c.state).collect();
    assert_eq!(states, [State::New, State::Received]);
    assert_eq!(
        store.message(record.local_id).await.unwrap(),
        Some(routed.clone())
    );
    assert!(store.pending_jobs(None, 10).await.unwrap().is_empty());
    let listed = store
        .list(&mailbox, &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&routed));
    let found = store.find_in_mailbox(&mailbox, "tx-route").await.unwrap();
    assert_eq!(found, Some(routed));
    let elsewhere = store
        .find_in_mailbox(&address("5565317129"), "tx-route")
        .await;
    assert_eq!(elsewhere.unwrap(), None);
}

pub(super) async fn quarantine_job_stores_error_notice(f: Fixture) {
    let store = &*f.store;
    let (record, job) = accept(store, summary("tx-bad"), SENDER, Route::Job).await;
    let sender_box = address(SENDER);
    let notice_payload = upload(store, &[b"<shs.management/>"]).await;
    let mut notice_summary = summary("tx-bad-error");
    notice_summary.product = "error".into();
    notice_summary.sequence_type = "adm".into();
    let notice = new_message(
        notice_summary,
        OTHER_SENDER,
        notice_payload.clone(),
        Route::Mailbox(sender_box.clone()),
    );
    let outcome = JobOutcome::Quarantine {
        code: ErrorCode::MissingAgreement,
        reason: "no agreement for product".into(),
        notify: Some(notice.clone()),
    };
    let JobCompletion::Applied {
        record: bad,
        created,
    } = store.complete_job(job.unwrap(), outcome).await.unwrap()
    else {
        panic!("not applied");
    };
    assert_eq!(bad.local_id, record.local_id);
    assert_eq!(bad.state, State::Quarantined);
    let error = bad.error.clone().unwrap();
    assert_eq!(error.code, ErrorCode::MissingAgreement);
    assert_eq!(error.text, "no agreement for product");
    assert_eq!(created.len(), 1);
    let (stored_notice, notice_job) = &created[0];
    assert_eq!(*notice_job, None);
    assert_eq!(stored_notice.state, State::Received);
    assert_eq!(stored_notice.local_id, notice.local_id);
    let listed = store
        .list(&sender_box, &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(stored_notice));
    assert_eq!(
        read_part(store, notice_payload.id, 0).await.unwrap(),
        b"<shs.management/>"
    );
    assert!(store.pending_jobs(None, 10).await.unwrap().is_empty());
}

pub(super) async fn fan_out_copies_share_the_payload(f: Fixture) {
    let store = &*f.store;
    let (parent, job) = accept(store, summary("tx-parent"), SENDER, Route::Job).await;
    let local_box = address("2120000142.bygglov");
    let copy = |tx: &str, route: Route| {
        let mut summary = summary(tx);
        summary.to = Some(format!("urn:X-shs:{tx}"));
        FanOutCopy {
            local_id: LocalId::random(),
            label: label(tx),
            summary,
            route,
        }
    };
    let copies = vec![
        copy("tx-copy-1", Route::Mailbox(local_box.clone())),
        copy("tx-copy-2", Route::Job),
    ];
    let outcome = JobOutcome::FanOut {
        copies: copies.clone(),
    };
    let JobCompletion::Applied { record, created } =
        store.complete_job(job.unwrap(), outcome).await.unwrap()
    else {
        panic!("not applied");
    };
    assert_eq!(record.state, State::FannedOut);
    assert_eq!(record.copies, [copies[0].local_id, copies[1].local_id]);
    assert_eq!(created.len(), 2);
    for (child, _) in &created {
        assert_eq!(child.parent, Some(parent.local_id));
        assert_eq!(child.payload, parent.payload);
        assert_eq!(child.sender, parent.sender);
    }
    assert_eq!(created[0].0.state, State::Received);
    assert_eq!(created[0].1, None);
    assert_eq!(created[1].0.state, State::New);
    let jobs = store.pending_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(Some(jobs[0].id), created[1].1);
    let listed = store
        .list(&local_box, &MailboxQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id, "tx-copy-1");
    assert_eq!(
        read_part(store, listed[0].payload.id, 0).await.unwrap(),
        b"abc"
    );
    // A copy's tx.id is taken like any other.
    let payload = upload(store, &[b"x"]).await;
    let clash = new_message(summary("tx-copy-1"), OTHER_SENDER, payload, Route::Job);
    assert_eq!(
        store.accept(clash).await.unwrap(),
        Acceptance::TxIdTakenByOtherSender
    );
}

pub(super) async fn completing_a_job_twice_changes_nothing(f: Fixture) {
    let store = &*f.store;
    let mailbox = address("2120000142");
    let (record, job) = accept(store, summary("tx-twice"), SENDER, Route::Job).await;
    let job = job.unwrap();
    let deliver = JobOutcome::Deliver {
        mailbox: mailbox.clone(),
    };
    assert!(matches!(
        store.complete_job(job, deliver.clone()).await.unwrap(),
        JobCompletion::Applied { .. }
    ));
    let after_first = store.message(record.local_id).await.unwrap();
    assert_eq!(
        store.complete_job(job, deliver).await.unwrap(),
        JobCompletion::AlreadyCompleted
    );
    // A different outcome for the same job is ignored too, and its notice discarded.
    let notice_payload = upload(store, &[b"n"]).await;
    let notice = new_message(
        summary("tx-twice-err"),
        OTHER_SENDER,
        notice_payload.clone(),
        Route::Job,
    );
    let quarantine = JobOutcome::Quarantine {
        code: ErrorCode::OtherError,
        reason: "late".into(),
        notify: Some(notice),
    };
    assert_eq!(
        store.complete_job(job, quarantine).await.unwrap(),
        JobCompletion::AlreadyCompleted
    );
    assert_eq!(store.message(record.local_id).await.unwrap(), after_first);
    assert_eq!(
        store
            .list(&mailbox, &MailboxQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(read_part(store, notice_payload.id, 0).await, None);
    assert!(store.pending_jobs(None, 10).await.unwrap().is_empty());
}

pub(super) async fn pending_jobs_page_oldest_first(f: Fixture) {
    let store = &*f.store;
    let mut jobs = Vec::new();
    for i in 0..7 {
        let (_, job) = accept(store, summary(&format!("tx-job-{i}")), SENDER, Route::Job).await;
        jobs.push(job.unwrap());
    }
    let first = store.pending_jobs(None, 3).await.unwrap();
    let ids: Vec<JobId> = first.iter().map(|j| j.id).collect();
    assert_eq!(ids, jobs[..3]);
    let rest = store.pending_jobs(Some(ids[2]), 100).await.unwrap();
    let ids: Vec<JobId> = rest.iter().map(|j| j.id).collect();
    assert_eq!(ids, jobs[3..]);
    let txs: Vec<&str> = rest.iter().map(|j| j.message.tx_id.as_str()).collect();
    assert_eq!(txs, ["tx-job-3", "tx-job-4", "tx-job-5", "tx-job-6"]);
}
