//! The write paths of [`super::PgStore`]: each is one transaction that reads the records
//! it changes `FOR UPDATE`, changes them with the same record logic as the KV store and
//! writes them back with their index columns.

use crate::store::Addition;
use chrono::Utc;
use deadpool_postgres::Transaction;

use super::claims::JobOwner;
use super::{PgStore, cached, decode_record, encode_value, is_unique_violation, pg_error, to_i64};
use crate::store::admin::{
    AdminChange, Administered, AuditNote, AuditRecord, ChangeEffect, apply_change,
};
use crate::store::housekeeping::{Expiry, Removal};
use crate::store::lifecycle::{mailbox_of, payload_family, wrong_state};
use crate::store::record::{JobId, LocalId, MessageRecord, PayloadId, State, stored_precision};
use crate::store::{
    Acceptance, AckOutcome, Answer, JobCompletion, JobOutcome, NewMessage, Retry, Route, StoreError,
};

impl PgStore {
    pub(super) async fn accept_message(
        &self,
        message: NewMessage,
    ) -> Result<Acceptance, StoreError> {
        let payload = message.payload.id;
        let tx_id = message.summary.tx_id.clone();
        let sender = message.sender;
        let mut client = self.client().await?;
        let attempt = {
            let tx = client.transaction().await.map_err(pg_error)?;
            match existing_tx(&tx, &tx_id).await? {
                Some(original) => Err(Some(original)),
                None => match insert_new(&tx, &self.owner, message).await {
                    Ok(stored) => {
                        tx.commit().await.map_err(pg_error)?;
                        Ok(stored)
                    }
                    // Another node or task accepted the same tx.id first and committed.
                    Err(StoreError::TxIdInUse(_)) => Err(None),
                    Err(err) => return Err(err),
                },
            }
        };
        let original = match attempt {
            Ok((record, job)) => return Ok(Acceptance::Accepted { record, job }),
            Err(Some(original)) => original,
            Err(None) => {
                let tx = client.transaction().await.map_err(pg_error)?;
                existing_tx(&tx, &tx_id).await?.ok_or_else(|| {
                    StoreError::Unavailable("a conflicting accept vanished; retry".into())
                })?
            }
        };
        Self::discard_quietly(&client, payload).await;
        Ok(if original.sender == sender {
            Acceptance::Duplicate(original)
        } else {
            Acceptance::TxIdTakenByOtherSender
        })
    }

    pub(super) async fn fetch_mark(&self, id: LocalId) -> Result<MessageRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = unsynced(&mut client).await?;
        let mut record = existing(&tx, id).await?;
        match record.state {
            State::Fetched => return Ok(record),
            State::Received => {}
            _ => return Err(wrong_state(&record, "fetch")),
        }
        mailbox_of(&record)?;
        record.enter(State::Fetched, Utc::now());
        update_record(&tx, &record).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(record)
    }

    pub(super) async fn ack(
        &self,
        id: LocalId,
        generated: Option<NewMessage>,
        answer: Option<Answer>,
    ) -> Result<AckOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let mut record = existing(&tx, id).await?;
        let refusal = match record.state {
            State::Received | State::Fetched => None,
            State::Acknowledged => Some(Ok(AckOutcome::AlreadyAcknowledged(record.clone()))),
            _ => Some(Err(wrong_state(&record, "acknowledge"))),
        };
        if let Some(answer) = refusal {
            drop(tx);
            if let Some(generated) = generated {
                Self::discard_quietly(&client, generated.payload.id).await;
            }
            return answer;
        }
        mailbox_of(&record)?;
        record.enter(State::Acknowledged, Utc::now());
        if answer.is_some() {
            record.answer = answer;
        }
        update_record(&tx, &record).await?;
        let (generated, generated_job) = match generated {
            Some(message) => {
                let (stored, job) = insert_new(&tx, &self.owner, message).await?;
                (Some(stored), job)
            }
            None => (None, None),
        };
        tx.commit().await.map_err(pg_error)?;
        Ok(AckOutcome::Acknowledged {
            record,
            generated,
            generated_job,
        })
    }

    pub(super) async fn complete(
        &self,
        job: JobId,
        outcome: JobOutcome,
    ) -> Result<JobCompletion, StoreError> {
        let mut client = self.client().await?;
        let tx = unsynced(&mut client).await?;
        let routed = tx
            .query_opt(
                &cached(
                    &tx,
                    "DELETE FROM routing_jobs WHERE job_id = $1 RETURNING local_id",
                )
                .await?,
                &[&to_i64(job.0)?],
            )
            .await
            .map_err(pg_error)?;
        let Some(routed) = routed else {
            drop(tx);
            if let JobOutcome::Quarantine {
                notify: Some(notify),
                ..
            } = outcome
            {
                Self::discard_quietly(&client, notify.payload.id).await;
            }
            return Ok(JobCompletion::AlreadyCompleted);
        };
        let mut record = existing(&tx, LocalId(routed.get(0))).await?;
        if record.state != State::New {
            tracing::warn!(job = %job, local_id = %record.local_id, state = ?record.state,
                "dropping routing job of a message that is no longer new");
            tx.commit().await.map_err(pg_error)?;
            return Ok(JobCompletion::AlreadyCompleted);
        }
        let now = Utc::now();
        let mut created = Vec::new();
        for addition in record.apply_outcome(outcome, now) {
            created.push(match addition {
                Addition::Copy(child, route) => {
                    insert_routed(&tx, &self.owner, child, route).await?
                }
                Addition::Notice(notice) => insert_new(&tx, &self.owner, notice).await?,
            });
        }
        update_record(&tx, &record).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(JobCompletion::Applied { record, created })
    }

    pub(super) async fn defer(&self, job: JobId, retry: Retry) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = unsynced(&mut client).await?;
        let attempts = i32::try_from(retry.attempts).unwrap_or(i32::MAX);
        // Released: whichever node is free when the job is due again takes it.
        tx.execute(
            &cached(
                &tx,
                "UPDATE routing_jobs SET attempts = $2, not_before = $3, last_error = $4,
                    claimed_by = NULL, claimed_until = NULL
              WHERE job_id = $1",
            )
            .await?,
            &[
                &to_i64(job.0)?,
                &attempts,
                &retry.not_before,
                &retry.last_error,
            ],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    pub(super) async fn answer(&self, id: LocalId, answer: Answer) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = unsynced(&mut client).await?;
        let Some(mut record) = for_update(&tx, id).await? else {
            return Ok(());
        };
        record.answer = Some(answer);
        update_record(&tx, &record).await?;
        tx.commit().await.map_err(pg_error)
    }

    pub(super) async fn admin_change(
        &self,
        id: LocalId,
        change: AdminChange,
        note: AuditNote,
    ) -> Result<Administered, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let mut record = existing(&tx, id).await?;
        let from = record.state;
        let now = Utc::now();
        let mut job = None;
        let before = record.clone();
        let (effect, detail) = apply_change(&mut record, &change, now)?;
        match effect {
            ChangeEffect::NeedsJob => job = Some(insert_job(&tx, &self.owner, id).await?),
            // The mailbox list is the messages' own mailbox and state columns.
            ChangeEffect::Listed(_) => {}
            ChangeEffect::Remove => {
                remove_family(&tx, &before).await?;
            }
        }
        let deleted = matches!(change, AdminChange::Delete);
        if !deleted {
            update_record(&tx, &record).await?;
        }
        let audit = AuditRecord {
            seq: next_id(&tx).await?,
            at: stored_precision(note.at),
            actor: note.actor,
            action: change.name().to_owned(),
            local_id: id,
            tx_id: record.tx_id.clone(),
            from,
            to: (!deleted).then_some(record.state),
            detail,
        };
        tx.execute(
            &cached(&tx, "INSERT INTO audit_log (seq, record) VALUES ($1, $2)").await?,
            &[&to_i64(audit.seq)?, &encode_value(&audit)?],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Administered {
            record: (!deleted).then_some(record),
            job,
            audit,
        })
    }

    pub(super) async fn expire_message(
        &self,
        id: LocalId,
        notice: Option<NewMessage>,
    ) -> Result<Expiry, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let record = for_update(&tx, id).await?;
        let Some(mut record) = record.filter(|r| r.state == State::Received) else {
            drop(tx);
            if let Some(notice) = notice {
                Self::discard_quietly(&client, notice.payload.id).await;
            }
            return Ok(Expiry::NotDue);
        };
        record.enter(State::Expired, Utc::now());
        update_record(&tx, &record).await?;
        let (notice, notice_job) = match notice {
            Some(message) => {
                let (stored, job) = insert_new(&tx, &self.owner, message).await?;
                (Some(stored), job)
            }
            None => (None, None),
        };
        tx.commit().await.map_err(pg_error)?;
        Ok(Expiry::Expired {
            record,
            notice,
            notice_job,
        })
    }

    pub(super) async fn remove_message(&self, id: LocalId) -> Result<Removal, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let Some(record) = for_update(&tx, id).await? else {
            return Ok(Removal::default());
        };
        if record.state == State::New {
            return Err(wrong_state(&record, "remove while routing is under way"));
        }
        let removal = remove_family(&tx, &record).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(removal)
    }

    /// Discards a payload on a path that already has its answer; a failure only leaves
    /// an upload that a later open removes.
    async fn discard_quietly(client: &tokio_postgres::Client, payload: PayloadId) {
        if let Err(err) = super::payload::discard_on(client, payload).await {
            tracing::warn!(payload = %payload, error = %err, "could not discard payload");
        }
    }
}

/// A transaction whose commit does not wait for the WAL flush (for the "not synced"
/// operations of the trait).
pub(super) async fn unsynced(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .await
        .map_err(pg_error)?;
    Ok(tx)
}

/// The record that holds `tx_id`, if any.
async fn existing_tx(
    tx: &Transaction<'_>,
    tx_id: &str,
) -> Result<Option<MessageRecord>, StoreError> {
    let row = tx
        .query_opt(
            &cached(tx, "SELECT record FROM messages WHERE tx_id = $1").await?,
            &[&tx_id],
        )
        .await
        .map_err(pg_error)?;
    row.map(|row| decode_record(row.get(0))).transpose()
}

/// Reads and locks a record.
pub(super) async fn for_update(
    tx: &Transaction<'_>,
    id: LocalId,
) -> Result<Option<MessageRecord>, StoreError> {
    let row = tx
        .query_opt(
            &cached(
                tx,
                "SELECT record FROM messages WHERE local_id = $1 FOR UPDATE",
            )
            .await?,
            &[&id.0],
        )
        .await
        .map_err(pg_error)?;
    row.map(|row| decode_record(row.get(0))).transpose()
}

async fn existing(tx: &Transaction<'_>, id: LocalId) -> Result<MessageRecord, StoreError> {
    for_update(tx, id)
        .await?
        .ok_or(StoreError::MessageNotFound(id))
}

/// The next value of the id sequence (arrival order, job ids, audit sequence).
async fn next_id(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let row = tx
        .query_one(&cached(tx, "SELECT nextval('shs_ids')").await?, &[])
        .await
        .map_err(pg_error)?;
    super::to_u64(row.get(0))
}

/// Inserts the routing job of `id`, held by this node for its lease: the node that made
/// the job normally runs it at once, and other nodes take it only if this one dies.
async fn insert_job(
    tx: &Transaction<'_>,
    owner: &JobOwner,
    id: LocalId,
) -> Result<JobId, StoreError> {
    let job = JobId(next_id(tx).await?);
    tx.execute(
        &cached(
            tx,
            "INSERT INTO routing_jobs (job_id, local_id, claimed_by, claimed_until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        )
        .await?,
        &[&to_i64(job.0)?, &id.0, &owner.node(), &owner.lease_secs()],
    )
    .await
    .map_err(pg_error)?;
    Ok(job)
}

/// When the record's current state began: the housekeeping clock.
fn state_since(record: &MessageRecord) -> chrono::DateTime<Utc> {
    record
        .state_log
        .last()
        .map_or(record.arrival, |change| change.at)
}

/// Stores a new message whose payload is pending: commits the payload and inserts the
/// record with its route.
async fn insert_new(
    tx: &Transaction<'_>,
    owner: &JobOwner,
    message: NewMessage,
) -> Result<(MessageRecord, Option<JobId>), StoreError> {
    let payload = message.payload.id;
    let committed = tx
        .execute(
            &cached(
                tx,
                "UPDATE payloads SET pending = FALSE WHERE payload_id = $1 AND pending",
            )
            .await?,
            &[&payload.0],
        )
        .await
        .map_err(pg_error)?;
    if committed == 0 {
        return Err(StoreError::PayloadNotPending(payload));
    }
    let (record, route) = message.into_record();
    insert_routed(tx, owner, record, route).await
}

/// Inserts a record in state NEW with its arrival sequence and route. A tx.id that is
/// already stored is [`StoreError::TxIdInUse`].
async fn insert_routed(
    tx: &Transaction<'_>,
    owner: &JobOwner,
    mut record: MessageRecord,
    route: Route,
) -> Result<(MessageRecord, Option<JobId>), StoreError> {
    record.arrival_seq = next_id(tx).await?;
    let job = match route {
        Route::Job => Some(insert_job(tx, owner, record.local_id).await?),
        Route::Mailbox(mailbox) => {
            record.enter(State::Received, Utc::now());
            record.mailbox = Some(mailbox);
            None
        }
        Route::Logged => {
            record.enter(State::Sent, Utc::now());
            None
        }
    };
    let inserted = tx
        .execute(
            &cached(
                tx,
                "INSERT INTO messages (local_id, tx_id, sender, mailbox, state, state_since,
                 arrival, arrival_seq, corr_id, payload_id, parent, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (tx_id) DO NOTHING",
            )
            .await?,
            &[
                &record.local_id.0,
                &record.tx_id,
                &record.sender.as_str(),
                &record.mailbox.as_ref().map(ToString::to_string),
                &record.state.as_str(),
                &state_since(&record),
                &record.arrival,
                &to_i64(record.arrival_seq)?,
                &record.summary.corr_id,
                &record.payload.id.0,
                &record.parent.map(|p| p.0),
                &encode_value(&record)?,
            ],
        )
        .await;
    match inserted {
        Ok(0) => Err(StoreError::TxIdInUse(record.tx_id)),
        Ok(_) => Ok((record, job)),
        Err(err) if is_unique_violation(&err) => Err(StoreError::Corrupt(format!(
            "local id {} is already stored",
            record.local_id
        ))),
        Err(err) => Err(pg_error(err)),
    }
}

/// Writes a changed record back with its index columns.
async fn update_record(tx: &Transaction<'_>, record: &MessageRecord) -> Result<(), StoreError> {
    tx.execute(
        &cached(
            tx,
            "UPDATE messages SET mailbox = $2, state = $3, state_since = $4, record = $5
          WHERE local_id = $1",
        )
        .await?,
        &[
            &record.local_id.0,
            &record.mailbox.as_ref().map(ToString::to_string),
            &record.state.as_str(),
            &state_since(record),
            &encode_value(record)?,
        ],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}

/// Removes `record`; its payload goes when no other record of its fan-out family
/// remains, and a fan-out parent goes with its last copy (it cannot go before them).
async fn remove_family(
    tx: &Transaction<'_>,
    record: &MessageRecord,
) -> Result<Removal, StoreError> {
    let parent = match record.parent {
        Some(parent) => for_update(tx, parent).await?,
        None => None,
    };
    let parent_id = parent.as_ref().map(|p| p.local_id);
    let mut copies_remain = false;
    for member in payload_family(record, parent.as_ref()) {
        if Some(member) != parent_id && for_update(tx, member).await?.is_some() {
            copies_remain = true;
        }
    }
    if record.state == State::FannedOut && copies_remain {
        return Err(wrong_state(record, "delete before its fan-out copies"));
    }
    let mut removal = Removal::default();
    delete_record(tx, record.local_id).await?;
    removal.removed.push(record.local_id);
    if !copies_remain {
        if let Some(parent) = parent.filter(|p| p.state == State::FannedOut) {
            delete_record(tx, parent.local_id).await?;
            removal.removed.push(parent.local_id);
        }
        let payload = record.payload.id;
        tx.execute(
            &cached(tx, "DELETE FROM payloads WHERE payload_id = $1").await?,
            &[&payload.0],
        )
        .await
        .map_err(pg_error)?;
        removal.payload_deleted = Some(payload);
    }
    Ok(removal)
}

async fn delete_record(tx: &Transaction<'_>, id: LocalId) -> Result<(), StoreError> {
    tx.execute(
        &cached(tx, "DELETE FROM routing_jobs WHERE local_id = $1").await?,
        &[&id.0],
    )
    .await
    .map_err(pg_error)?;
    tx.execute(
        &cached(tx, "DELETE FROM messages WHERE local_id = $1").await?,
        &[&id.0],
    )
    .await
    .map_err(pg_error)?;
    Ok(())
}
