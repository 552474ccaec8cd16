//! [`KvStore`]: the one implementation of [`Store`] over any [`KvEngine`].
//!
//! Every operation reads, builds one [`Batch`] and applies it, so a crash leaves each
//! operation wholly done or not at all. Read-check-write sequences (duplicate check,
//! state transitions, job completion) run under one short std mutex that is never held
//! across an `.await`. Engine calls are blocking and never run on the async runtime:
//! operations that must be durable before they are answered (accept, acknowledge,
//! expire, remove, administer) run on the group-commit thread, just before the sync that
//! covers them, so a request costs one hand-off there and one back; the others run on
//! tokio's blocking pool.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::Addition;
use super::codec::{decode, encode};
use super::group_commit::{AfterSync, GroupCommit, Ticket};
use super::key_filters::FillThread;
use super::keys::{self, IndexEntry, JobEntry, TxEntry};
use super::kv::{Batch, KvEngine};
use super::kv_payload::{HeldPayloads, KvPayloadWriter};
use super::lifecycle::{self, Digest, Staging, mailbox_of, stage_delivery, wrong_state};
use super::query::MailboxQuery;
use super::record::{JobId, LocalId, MessageRecord, MessageSummary, PayloadId, State};
use super::search::AdminSearch;
use super::tx_hints::TxHints;
use super::{
    Acceptance, AckOutcome, AdminChange, Administered, Answer, AuditNote, AuditRecord, Due, Expiry,
    JobCompletion, JobOutcome, NewMessage, PayloadWriter, Removal, Retry, Route, RoutingJob, Store,
    StoreError,
};
use crate::protocol::urn::Address;

/// The store over engine `E`. Cheap to clone; clones share the engine and the committer.
pub struct KvStore<E: KvEngine> {
    inner: Arc<Inner<E>>,
}

impl<E: KvEngine> Clone for KvStore<E> {
    fn clone(&self) -> Self {
        KvStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

pub(super) struct Inner<E> {
    pub(super) engine: Arc<E>,
    commit: GroupCommit,
    /// Serialises read-check-write sequences; held for microseconds, never across await.
    write_lock: Mutex<()>,
    /// Mailbox depths and filters of the index's keys, moved by every committed batch.
    pub(super) digest: Digest,
    /// Fills the filters after open; stopped and joined when the store closes.
    _filling: FillThread,
    /// Small finished uploads kept in memory until a batch accepts them.
    pub(super) held: HeldPayloads,
    /// Where recently listed messages' records are, for the fetch and ack after a list.
    pub(super) listed: TxHints,
}

impl<E: KvEngine> KvStore<E> {
    /// Opens the store: removes the leftovers of uploads interrupted by a crash, then
    /// starts the group-commit thread. Blocking; call at start-up.
    pub fn open(engine: E) -> Result<Self, StoreError> {
        let engine = Arc::new(engine);
        let orphans = super::kv_payload::remove_orphans(&*engine)?;
        if orphans > 0 {
            tracing::info!(count = orphans, "removed interrupted payload uploads");
        }
        lifecycle::index_for_housekeeping(&*engine)?;
        let digest = Digest::build(&*engine)?;
        let filling = FillThread::start(Arc::clone(&engine), Arc::clone(&digest.filters))?;
        let sync_engine = Arc::clone(&engine);
        let commit = GroupCommit::start(Box::new(move || {
            sync_engine.sync().map_err(|err| err.to_string())
        }))
        .map_err(|err| StoreError::Unavailable(format!("cannot start sync thread: {err}")))?;
        Ok(KvStore {
            inner: Arc::new(Inner {
                engine,
                commit,
                write_lock: Mutex::new(()),
                digest,
                _filling: filling,
                held: HeldPayloads::default(),
                listed: TxHints::default(),
            }),
        })
    }

    /// Waits until the key filters are filled (tests that check what they skip).
    #[cfg(test)]
    pub(crate) fn wait_for_key_filters(&self) {
        self.inner.digest.filters.wait_until_filled();
    }

    /// The engine, for engine-specific checks in tests and tools.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }

    /// How many disk syncs the group committer has run (a metric: compare with writes).
    pub fn sync_rounds(&self) -> u64 {
        self.inner.commit.rounds()
    }

    /// Runs `op` on the group-commit thread and answers once the sync after it has made
    /// its writes durable (at once if it took no ticket: nothing to wait for). A panic in
    /// `op` is re-raised here.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner<E>) -> Result<(T, Option<Ticket>), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        // Weak: a queued operation whose caller went away must not be what keeps the
        // store (and the engine's files) open, nor drop it on the committer thread.
        let inner = Arc::downgrade(&self.inner);
        self.inner.commit.submit(Box::new(move || {
            let Some(inner) = inner.upgrade() else {
                let closed = StoreError::Unavailable("the store is closed".into());
                let _ = answer.send(Ok(Err(closed)));
                return None;
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| op(&inner)));
            drop(inner);
            match outcome {
                Ok(Ok((value, Some(_ticket)))) => {
                    let after: AfterSync = Box::new(move |synced| {
                        let result = match synced {
                            Ok(()) => Ok(value),
                            Err(reason) => {
                                Err(StoreError::Unavailable(format!("sync failed: {reason}")))
                            }
                        };
                        let _ = answer.send(Ok(result));
                    });
                    Some(after)
                }
                Ok(result) => {
                    let _ = answer.send(Ok(result.map(|(value, _)| value)));
                    None
                }
                Err(panic) => {
                    let _ = answer.send(Err(panic));
                    None
                }
            }
        }))?;
        match answered.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => resume_unwind(panic),
            // Dropped unrun: a sync failed, or the thread stopped.
            Err(_) => Err(self.inner.commit.failure()),
        }
    }

    /// Runs a point read at once, on the calling (runtime) thread: a record, an index
    /// entry or a payload chunk by key, or the keys of one conversation's corr.id index.
    /// Such a read is a few microseconds of CPU when the data is cached and one disk read
    /// when it is not; handing it to the blocking pool cost more than the read itself
    /// (thread wake-ups were a fifth of fetch+ack's CPU, see `BENCHMARKS.md`). Reads take
    /// no lock a writer holds for long: the write-ahead log's overlay lock is held while a
    /// batch is put in memory, its log lock (for a value not yet written out) while the
    /// buffer goes to the kernel. Scans that can read many records, and writes, which can
    /// wait for room in the log, stay on the blocking pool ([`KvStore::read`],
    /// [`KvStore::run`]).
    fn read_now<T>(
        &self,
        op: impl FnOnce(&Inner<E>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        op(&self.inner)
    }

    /// Runs a read-only or not-synced `op` on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner<E>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        blocking(&self.inner, op).await
    }
}

/// Runs a blocking engine operation off the async runtime. A panic in it is re-raised (a
/// panic aborts the process in production).
pub(super) async fn blocking<E: KvEngine, T: Send + 'static>(
    inner: &Arc<Inner<E>>,
    op: impl FnOnce(&Inner<E>) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let inner = Arc::clone(inner);
    match tokio::task::spawn_blocking(move || op(&inner)).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(StoreError::Unavailable(format!(
            "store task cancelled: {err}"
        ))),
    }
}

#[async_trait]
impl<E: KvEngine> Store for KvStore<E> {
    async fn begin_payload(&self) -> Result<Box<dyn PayloadWriter>, StoreError> {
        let writer = KvPayloadWriter::begin(Arc::clone(&self.inner));
        Ok(Box::new(writer))
    }

    async fn discard_payload(&self, payload: PayloadId) -> Result<(), StoreError> {
        self.read(move |inner| match inner.discard_pending(payload)? {
            true => Ok(()),
            false => Err(StoreError::PayloadNotPending(payload)),
        })
        .await
    }

    async fn accept(&self, message: NewMessage) -> Result<Acceptance, StoreError> {
        self.run(move |inner| inner.accept(message)).await
    }

    async fn message(&self, id: LocalId) -> Result<Option<MessageRecord>, StoreError> {
        self.read_now(|inner| inner.record(id))
    }

    async fn find_in_mailbox(
        &self,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        // A tx.id names one record node-wide (`t/`), so its record is the one, if it was
        // delivered to this mailbox. A recent list may have said which record that is: if
        // that record still has the tx.id, it is the one `t/` names, so no look-up.
        let in_mailbox = |record: &MessageRecord| record.mailbox.as_ref() == Some(mailbox);
        self.read_now(|inner| {
            if let Some(hinted) = inner.listed.get(tx_id)
                && let Some(record) = inner.record(hinted)?.filter(|r| r.tx_id == tx_id)
            {
                return Ok(Some(record).filter(in_mailbox));
            }
            match inner.tx_entry(tx_id)? {
                Some(used) => Ok(inner.record(used.local_id)?.filter(in_mailbox)),
                None => Ok(None),
            }
        })
    }

    async fn list(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let (mailbox, query) = (mailbox.clone(), query.clone());
        self.read(move |inner| inner.list(&mailbox, &query)).await
    }

    async fn list_summaries(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let (mailbox, query) = (mailbox.clone(), query.clone());
        self.read(move |inner| inner.list_summaries(&mailbox, &query))
            .await
    }

    async fn search(&self, search: &AdminSearch) -> Result<Vec<MessageRecord>, StoreError> {
        let search = search.clone();
        self.read(move |inner| inner.search(&search)).await
    }

    async fn read_chunk(
        &self,
        payload: PayloadId,
        part: u32,
        index: u32,
    ) -> Result<Option<Bytes>, StoreError> {
        self.read_now(|inner| {
            if inner.engine.get(&keys::pending(payload))?.is_some() {
                return Ok(None);
            }
            Ok(inner
                .engine
                .get(&keys::chunk(payload, part, index))?
                .map(Bytes::from))
        })
    }

    /// On the committer thread, with the writes of intake and ack; the mark needs no sync
    /// of its own (no ticket). On the blocking pool each of the load bench's 64 concurrent
    /// fetches held a thread while it queued for the write lock; here fetch+ack made about
    /// 39 % more pairs/s (`BENCHMARKS.md`).
    async fn mark_fetched(&self, id: LocalId) -> Result<MessageRecord, StoreError> {
        self.run(move |inner| Ok((inner.mark_fetched(id)?, None)))
            .await
    }

    async fn acknowledge(
        &self,
        id: LocalId,
        generated: Option<NewMessage>,
        answer: Option<Answer>,
    ) -> Result<AckOutcome, StoreError> {
        self.run(move |inner| inner.acknowledge(id, generated, answer))
            .await
    }

    async fn pending_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        self.read(move |inner| inner.pending_jobs(after, limit))
            .await
    }

    async fn complete_job(
        &self,
        job: JobId,
        outcome: JobOutcome,
    ) -> Result<JobCompletion, StoreError> {
        self.read(move |inner| inner.complete_job(job, outcome))
            .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.commit.sync_now().await
    }

    async fn defer_job(&self, job: JobId, retry: Retry) -> Result<(), StoreError> {
        self.read(move |inner| inner.defer_job(job, retry)).await
    }

    async fn administer(
        &self,
        id: LocalId,
        change: AdminChange,
        note: AuditNote,
    ) -> Result<Administered, StoreError> {
        let (answer, removal) = self
            .run(move |inner| inner.administer(id, change, note))
            .await?;
        self.delete_removed_payload(removal).await;
        Ok(answer)
    }

    async fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |inner| inner.audit_log(before, limit)).await
    }

    async fn due(
        &self,
        due: Due,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LocalId>, StoreError> {
        self.read(move |inner| inner.due(due, before, limit)).await
    }

    async fn expire(&self, id: LocalId, notice: Option<NewMessage>) -> Result<Expiry, StoreError> {
        self.run(move |inner| inner.expire(id, notice)).await
    }

    async fn remove(&self, id: LocalId) -> Result<Removal, StoreError> {
        let removal = self.run(move |inner| inner.remove(id)).await?;
        self.delete_removed_payload(removal.clone()).await;
        Ok(removal)
    }

    async fn mailbox_depths(&self) -> Result<Vec<(Address, u64)>, StoreError> {
        Ok(self.inner.digest.depths.snapshot())
    }

    fn syncs(&self) -> Option<crate::metrics::SyncSnapshot> {
        Some(self.inner.commit.syncs())
    }

    fn backlog(&self) -> Option<crate::metrics::BacklogSnapshot> {
        self.inner.engine.backlog()
    }

    async fn with_corr_id(
        &self,
        corr_id: &str,
        limit: usize,
        except: &[LocalId],
    ) -> Result<Vec<MessageRecord>, StoreError> {
        // The keys at once (one conversation's, usually the message and its answer, often
        // both in `except`); records only if any are wanted, on the blocking pool.
        let ids = self.read_now(|inner| inner.corr_id_members(corr_id, limit, except))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut records = self.read(move |inner| inner.records(&ids)).await?;
        // Keys of management messages written before they were left out of the index.
        records.retain(|record| !record.summary.is_management());
        Ok(records)
    }

    fn corr_id_may_be_shared(&self, corr_id: &str) -> bool {
        self.inner
            .digest
            .filters
            .corr_id_may_be_shared(corr_id.as_bytes())
    }

    async fn note_answer(&self, id: LocalId, answer: Answer) -> Result<(), StoreError> {
        self.read(move |inner| inner.note_answer(id, answer)).await
    }

    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        self.read(|inner| Ok(inner.engine.size_on_disk()?)).await
    }
}

impl<E: KvEngine> KvStore<E> {
    /// Deletes the chunks of a payload whose removal is durable. A failure only leaves the
    /// deletion marker, which the next open acts on.
    async fn delete_removed_payload(&self, removal: Removal) {
        let Some(payload) = removal.payload_deleted else {
            return;
        };
        let deleted = self
            .read(move |inner| super::kv_payload::delete_payload(&*inner.engine, payload))
            .await;
        if let Err(err) = deleted {
            tracing::warn!(payload = %payload, error = %err,
                "could not delete a removed payload; the next start finishes it");
        }
    }
}

impl<E: KvEngine> Inner<E> {
    fn defer_job(&self, job: JobId, retry: Retry) -> Result<(), StoreError> {
        let _guard = self.lock_writes();
        let Some(mut entry) = self.value::<JobEntry>(&keys::job(job.0))? else {
            return Ok(());
        };
        entry.attempts = retry.attempts;
        entry.not_before_micros = retry.not_before.map(|at| at.timestamp_micros());
        entry.last_error = retry.last_error;
        let mut batch = Batch::default();
        batch.put(keys::job(job.0), encode(&entry)?);
        self.engine.apply(batch)?;
        Ok(())
    }

    /// A ticket for the batches applied so far: wait on it to know they are durable.
    pub(super) fn commit_ticket(&self) -> Ticket {
        self.commit.request()
    }

    pub(super) fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.engine.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The `t/` entry of `tx_id`; a tx.id the filter does not hold is not looked up.
    pub(super) fn tx_entry(&self, tx_id: &str) -> Result<Option<TxEntry>, StoreError> {
        if !self.digest.filters.tx_id_may_exist(tx_id.as_bytes()) {
            return Ok(None);
        }
        self.value::<TxEntry>(&keys::tx(tx_id))
    }

    pub(super) fn record(&self, id: LocalId) -> Result<Option<MessageRecord>, StoreError> {
        self.value(&keys::message(id))
    }

    pub(super) fn existing(&self, id: LocalId) -> Result<MessageRecord, StoreError> {
        self.record(id)?.ok_or(StoreError::MessageNotFound(id))
    }

    fn accept(&self, message: NewMessage) -> Result<(Acceptance, Option<Ticket>), StoreError> {
        let guard = self.lock_writes();
        if let Some(used) = self.tx_entry(&message.summary.tx_id)? {
            drop(guard);
            let answer = if used.sender == message.sender {
                // The original may still be waiting for its sync: a duplicate answer is an
                // acknowledgement too, so it waits for the same durability.
                let original = self.existing(used.local_id)?;
                (Acceptance::Duplicate(original), Some(self.commit.request()))
            } else {
                (Acceptance::TxIdTakenByOtherSender, None)
            };
            self.discard_quietly(message.payload.id);
            return Ok(answer);
        }
        let mut staging = Staging::default();
        staging.unused_tx = Some(message.summary.tx_id.clone());
        let (record, job) = self.stage_new(&mut staging, message)?;
        staging.apply(&*self.engine, &self.digest)?;
        let ticket = self.commit.request();
        drop(guard);
        Ok((Acceptance::Accepted { record, job }, Some(ticket)))
    }

    fn mark_fetched(&self, id: LocalId) -> Result<MessageRecord, StoreError> {
        let _guard = self.lock_writes();
        let mut record = self.existing(id)?;
        match record.state {
            State::Fetched => return Ok(record),
            State::Received => {}
            _ => return Err(wrong_state(&record, "fetch")),
        }
        let mailbox = mailbox_of(&record)?;
        let before = record.clone();
        record.enter(State::Fetched, Utc::now());
        let mut staging = Staging::default();
        let entry = encode(&IndexEntry::of(&record))?;
        for key in keys::index_keys(&mailbox, &record) {
            staging.batch.put(key, entry.clone());
        }
        staging.batch.put(keys::message(id), encode(&record)?);
        staging.transition(Some(&before), Some(&record));
        staging.apply(&*self.engine, &self.digest)?;
        Ok(record)
    }

    fn acknowledge(
        &self,
        id: LocalId,
        generated: Option<NewMessage>,
        answer: Option<Answer>,
    ) -> Result<(AckOutcome, Option<Ticket>), StoreError> {
        let guard = self.lock_writes();
        let mut record = self.existing(id)?;
        match record.state {
            State::Received | State::Fetched => {}
            State::Acknowledged => {
                drop(guard);
                if let Some(generated) = generated {
                    self.discard_quietly(generated.payload.id);
                }
                // The first ack may still be waiting for its sync; this answer waits too.
                let ticket = self.commit.request();
                return Ok((AckOutcome::AlreadyAcknowledged(record), Some(ticket)));
            }
            _ => {
                drop(guard);
                if let Some(generated) = generated {
                    self.discard_quietly(generated.payload.id);
                }
                return Err(wrong_state(&record, "acknowledge"));
            }
        }
        mailbox_of(&record)?;
        let mut staging = Staging::default();
        lifecycle::stage_unlisting(&mut staging.batch, &record);
        let before = record.clone();
        record.enter(State::Acknowledged, Utc::now());
        if answer.is_some() {
            record.answer = answer;
        }
        staging.batch.put(keys::message(id), encode(&record)?);
        staging.transition(Some(&before), Some(&record));
        let (generated, generated_job) = match generated {
            Some(message) => {
                let (stored, job) = self.stage_new(&mut staging, message)?;
                (Some(stored), job)
            }
            None => (None, None),
        };
        staging.apply(&*self.engine, &self.digest)?;
        let ticket = self.commit.request();
        drop(guard);
        let outcome = AckOutcome::Acknowledged {
            record,
            generated,
            generated_job,
        };
        Ok((outcome, Some(ticket)))
    }

    fn complete_job(&self, job: JobId, outcome: JobOutcome) -> Result<JobCompletion, StoreError> {
        let guard = self.lock_writes();
        let Some(entry) = self.value::<JobEntry>(&keys::job(job.0))? else {
            drop(guard);
            if let JobOutcome::Quarantine {
                notify: Some(notify),
                ..
            } = outcome
            {
                self.discard_quietly(notify.payload.id);
            }
            return Ok(JobCompletion::AlreadyCompleted);
        };
        let mut record = self.existing(entry.local_id)?;
        let mut staging = Staging::default();
        staging.batch.delete(keys::job(job.0));
        if record.state != State::New {
            // Someone (an administrator) moved the message on; the job is stale.
            tracing::warn!(job = %job, local_id = %record.local_id, state = ?record.state,
                "dropping routing job of a message that is no longer new");
            staging.apply(&*self.engine, &self.digest)?;
            return Ok(JobCompletion::AlreadyCompleted);
        }
        let before = record.clone();
        let now = Utc::now();
        let mut created = Vec::new();
        for addition in record.apply_outcome(outcome, now) {
            created.push(match addition {
                Addition::Copy(child, route) => self.stage_record(&mut staging, child, route)?,
                Addition::Notice(notice) => self.stage_new(&mut staging, notice)?,
            });
        }
        if record.state == State::Received {
            lifecycle::stage_listing(&mut staging.batch, &record)?;
        }
        staging
            .batch
            .put(keys::message(record.local_id), encode(&record)?);
        staging.transition(Some(&before), Some(&record));
        staging.apply(&*self.engine, &self.digest)?;
        drop(guard);
        Ok(JobCompletion::Applied { record, created })
    }

    /// Stages a new message whose payload is pending: commits the payload and inserts the
    /// record with its keys.
    pub(super) fn stage_new(
        &self,
        staging: &mut Staging,
        message: NewMessage,
    ) -> Result<(MessageRecord, Option<JobId>), StoreError> {
        self.stage_payload_commit(&mut staging.batch, message.payload.id)?;
        let (record, route) = message.into_record();
        self.stage_record(staging, record, route)
    }

    /// Stages a record in state NEW with its duplicate key, arrival sequence and route.
    fn stage_record(
        &self,
        staging: &mut Staging,
        mut record: MessageRecord,
        route: Route,
    ) -> Result<(MessageRecord, Option<JobId>), StoreError> {
        let looked_up = staging.unused_tx.as_deref() == Some(record.tx_id.as_str());
        if (!looked_up && self.tx_entry(&record.tx_id)?.is_some())
            || !staging.seen_tx.insert(record.tx_id.clone())
        {
            return Err(StoreError::TxIdInUse(record.tx_id));
        }
        // Local ids are UUID v7 (`LocalId::random`): the uuid crate guarantees that the
        // ones one process makes are strictly ordered, and across restarts they differ in
        // time or in random bits. Checking the index for a reused one cost a look-up per
        // message (3.7 % of intake's samples), so only builds with debug assertions, the
        // tests among them, check.
        if cfg!(debug_assertions) && self.engine.get(&keys::message(record.local_id))?.is_some() {
            return Err(StoreError::Corrupt(format!(
                "local id {} is already stored",
                record.local_id
            )));
        }
        let tx_entry = TxEntry {
            sender: record.sender,
            local_id: record.local_id,
            corr_id_too: keys::indexed_by_tx_id(&record),
        };
        staging
            .batch
            .put(keys::tx(&record.tx_id), encode(&tx_entry)?);
        record.arrival_seq = self.engine.next_id()?;
        let job = match route {
            Route::Job => {
                let id = JobId(self.engine.next_id()?);
                let entry = JobEntry::new(record.local_id);
                staging.batch.put(keys::job(id.0), encode(&entry)?);
                Some(id)
            }
            Route::Mailbox(mailbox) => {
                stage_delivery(&mut staging.batch, &mut record, mailbox, Utc::now())?;
                None
            }
            Route::Logged => {
                record.enter(State::Sent, Utc::now());
                None
            }
        };
        staging
            .batch
            .put(keys::message(record.local_id), encode(&record)?);
        staging.transition(None, Some(&record));
        Ok((record, job))
    }

    /// Stages the commit of a pending payload: a held one's chunks are written in this
    /// batch; a stored one loses its pending marker.
    fn stage_payload_commit(
        &self,
        batch: &mut Batch,
        payload: PayloadId,
    ) -> Result<(), StoreError> {
        if self.held.commit_into(payload, batch) {
            return Ok(());
        }
        let pending = self
            .value::<keys::PendingPayload>(&keys::pending(payload))?
            .is_some_and(|marker| !marker.discarding);
        if !pending {
            return Err(StoreError::PayloadNotPending(payload));
        }
        batch.delete(keys::pending(payload));
        Ok(())
    }

    /// Deletes a pending payload's chunks, then its marker; false if it was not pending.
    /// The marker is flagged first (under the write lock), so a concurrent accept cannot
    /// commit a payload whose chunks are being deleted.
    pub(super) fn discard_pending(&self, payload: PayloadId) -> Result<bool, StoreError> {
        {
            let _guard = self.lock_writes();
            if self.held.discard(payload) {
                return Ok(true);
            }
            let Some(mut marker) = self.value::<keys::PendingPayload>(&keys::pending(payload))?
            else {
                return Ok(false);
            };
            marker.discarding = true;
            let mut batch = Batch::default();
            batch.put(keys::pending(payload), encode(&marker)?);
            self.engine.apply(batch)?;
        }
        super::kv_payload::delete_payload(&*self.engine, payload)?;
        Ok(true)
    }

    /// Discards a payload on a path that already has its answer; a failure only leaves an
    /// orphan that the next open removes.
    pub(super) fn discard_quietly(&self, payload: PayloadId) {
        if let Err(err) = self.discard_pending(payload) {
            tracing::warn!(payload = %payload, error = %err, "could not discard payload");
        }
    }
}
