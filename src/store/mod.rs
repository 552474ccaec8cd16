//! Durable storage of messages, payloads, mailboxes and routing jobs (spec §5.1, §5.4, §8).
//!
//! [`Store`] is the narrow, domain-level interface the broker uses; it says nothing about
//! keys or files. [`KvStore`] implements it over a small ordered key-value engine
//! ([`kv::KvEngine`]); engines stay tiny: [`memory`] for tests and [`sled`] (default) on
//! disk. [`postgres::PgStore`] implements it directly in SQL, for several nodes sharing
//! one database (not yet selectable in the configuration). One conformance suite runs
//! against every engine.
//!
//! Durability rules, the reason this module exists:
//! - [`Store::accept`] and [`Store::acknowledge`] return only once their batch is on disk
//!   (fdatasync'd, not merely written), so the broker's 202/200 never runs ahead of the
//!   disk. Concurrent writers share syncs through [`group_commit`].
//! - Each operation is one atomic batch: after a crash a message is either fully there
//!   (record, duplicate key, job, payload) or not at all.
//! - Payload chunks are written before acceptance but stay invisible until the accepting
//!   batch commits them; the leftovers of an interrupted upload are removed at open.
//!
//! - [`record`]: the message record, summary and ids; [`codec`]: the versioned stored form.
//! - [`query`]: the mailbox list filters of spec §3.3; [`search`]: the admin search of §11.
//! - [`error`]: [`StoreError`], why an operation failed, grouped by fault.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::protocol::ErrorCode;
use crate::protocol::urn::{Address, OrgNumber};

pub mod admin;
mod bloom;
mod chunker;
pub mod codec;
pub mod error;
pub mod group_commit;
pub mod housekeeping;
mod key_filters;
mod keys;
pub mod kv;
mod kv_admin;
mod kv_answers;
mod kv_housekeeping;
mod kv_list;
mod kv_payload;
mod kv_search;
pub mod kv_store;
mod lifecycle;
pub mod memory;
pub mod postgres;
pub mod query;
pub mod record;
pub mod search;
mod shared_corr_ids;
pub mod sled;
mod tx_hints;
pub mod wal;

#[cfg(test)]
mod conformance;

pub use admin::{AdminChange, Administered, AuditNote, AuditRecord};
pub use error::StoreError;
pub use housekeeping::{Due, Expiry, Removal};
pub use kv_store::KvStore;
pub use query::{MailboxQuery, MetaFilter, SortAttribute, SortBy, SortOrder};
pub use record::{
    Answer, DataPartSummary, ErrorInfo, JobId, LocalId, MessageRecord, MessageSummary, MetaEntry,
    PartInfo, PayloadId, PayloadInfo, State, StateChange,
};
pub use search::AdminSearch;

/// The size of the chunks payloads are stored in: bounded memory per stream, and small
/// enough that sled keeps them in its fdatasync'd log (see [`sled`]).
pub const CHUNK_SIZE: usize = 32 * 1024;

/// The storage interface of the broker. Every method is one atomic unit; the ones that
/// acknowledge something to a client return only when it is durable.
#[async_trait]
pub trait Store: Send + Sync {
    /// Starts storing the data parts of a message. Nothing written is visible until a
    /// message that names the payload is accepted; an interrupted upload is cleaned up.
    async fn begin_payload(&self) -> Result<Box<dyn PayloadWriter>, StoreError>;

    /// Removes an uploaded payload that will not be accepted (e.g. the label failed a
    /// check after the body was read). Only pending payloads can be discarded.
    async fn discard_payload(&self, payload: PayloadId) -> Result<(), StoreError>;

    /// Stores a new message from intake in one atomic batch (record, duplicate key, routing
    /// job or mailbox entry, payload commit) and returns once it is durable. A duplicate
    /// (same tx.id, same sender organisation) stores nothing new and returns the original;
    /// its uploaded payload is discarded. Concurrent accepts of one tx.id yield exactly one
    /// [`Acceptance::Accepted`].
    async fn accept(&self, message: NewMessage) -> Result<Acceptance, StoreError>;

    /// One message by local id.
    async fn message(&self, id: LocalId) -> Result<Option<MessageRecord>, StoreError>;

    /// The message with `tx_id` delivered to `mailbox`, in any state (so a repeated ack or
    /// a fetch after ack can be answered precisely).
    async fn find_in_mailbox(
        &self,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError>;

    /// The messages of a mailbox that match `query`, in its order, at most `max_hits`.
    /// Walks the mailbox's own index, never all messages.
    async fn list(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// The summaries of what [`Store::list`] returns, in its order: all that the
    /// `shs.message-list` shows. An engine whose mailbox index carries the summaries
    /// answers from the index alone, without reading a record per listed message.
    async fn list_summaries(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let records = self.list(mailbox, query).await?;
        Ok(records.into_iter().map(|record| record.summary).collect())
    }

    /// The messages that match an administrator's `search` (spec §11), newest first, at
    /// most [`AdminSearch::limit`]. Filtering happens here, not in the caller, so an
    /// engine with indexes can push it down; see [`AdminSearch::matches`].
    async fn search(&self, search: &AdminSearch) -> Result<Vec<MessageRecord>, StoreError>;

    /// Chunk `index` of data part `part` of a committed payload; `None` past the end or for
    /// a payload that is not (or no longer) visible. Every chunk but the last of a part
    /// holds [`CHUNK_SIZE`] bytes.
    async fn read_chunk(
        &self,
        payload: PayloadId,
        part: u32,
        index: u32,
    ) -> Result<Option<Bytes>, StoreError>;

    /// Marks a delivered message FETCHED (it stays fetchable until acknowledged). Not
    /// synced: losing this mark in a crash only makes the message listed again.
    async fn mark_fetched(&self, id: LocalId) -> Result<MessageRecord, StoreError>;

    /// Marks a delivered message ACKNOWLEDGED, removes it from its mailbox list and stores
    /// `generated` (the confirm message, if the agreement wants one) and notes `answer` on
    /// it (the confirm, when it is delivered here at once), atomically and durably — one
    /// write of the record instead of a second one after the confirm's delivery.
    /// Idempotent: a second ack changes nothing, stores nothing and discards the payload
    /// of `generated`.
    async fn acknowledge(
        &self,
        id: LocalId,
        generated: Option<NewMessage>,
        answer: Option<Answer>,
    ) -> Result<AckOutcome, StoreError>;

    /// Unfinished routing jobs, oldest first, starting after `after`; at most `limit`.
    async fn pending_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError>;

    /// Takes routing jobs for this node to run: like [`Store::pending_jobs`], but an
    /// engine that several nodes share hands out only the jobs that are due and that no
    /// other live node holds, and holds them for this node for the engine's lease, so a
    /// job runs on one node at a time and a node that dies leaves its jobs to the others.
    /// Single-node engines hand out every pending job (the caller skips the ones not due).
    async fn claim_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        self.pending_jobs(after, limit).await
    }

    /// When the earliest job that [`Store::claim_jobs`] did not hand out becomes due
    /// (its retry time, or the end of another node's lease), for engines whose claim
    /// leaves such jobs out; `None` when the engine does not know or there is none.
    async fn next_job_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    /// Holds the named node-wide duty (housekeeping) for this node until `ttl` has passed,
    /// renewing it if this node already holds it: true when this node holds it now.
    /// Single-node engines always say true.
    async fn hold_duty(&self, _duty: &str, _ttl: std::time::Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Removes payload uploads that were begun long ago and never finished or discarded
    /// (their node died mid-upload); returns how many. Engines that several nodes share
    /// need this while they run, since the node that began an upload may never return;
    /// single-node engines remove them when they open and return 0 here.
    async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Applies the result of a routing job and removes the job, atomically. Completing a
    /// job that is already complete is a no-op, so a job rerun after a restart has no
    /// second visible effect. Not synced: a lost completion only reruns the job.
    async fn complete_job(
        &self,
        job: JobId,
        outcome: JobOutcome,
    ) -> Result<JobCompletion, StoreError>;

    /// Makes every change applied so far durable, including the unsynced ones (fetch marks,
    /// job completions): called on shutdown so a clean stop loses nothing at all.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Records a failed delivery attempt of a pending job: its new schedule. Not synced: a
    /// lost reschedule only makes the next attempt come earlier. A job that is gone
    /// (completed meanwhile) is left alone.
    async fn defer_job(&self, job: JobId, retry: Retry) -> Result<(), StoreError>;

    /// Applies an administrator's `change` to message `id` together with its audit
    /// record, atomically and durably (spec §11). A change that does not apply in the
    /// message's state is [`StoreError::WrongState`] and changes nothing.
    async fn administer(
        &self,
        id: LocalId,
        change: AdminChange,
        note: AuditNote,
    ) -> Result<Administered, StoreError>;

    /// The audit log, newest first: at most `limit` entries older than `before` (an
    /// [`AuditRecord::seq`]) when given, so callers can page back.
    async fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Up to `limit` messages of class `due` whose state began before `before`, oldest
    /// first: the candidates of one housekeeping batch (spec §10).
    async fn due(
        &self,
        due: Due,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LocalId>, StoreError>;

    /// Expires an unfetched (RECEIVED) message: EXPIRED, out of its mailbox, with
    /// `notice` (the `error` to its sender) stored in the same durable batch. A message
    /// that was fetched or removed meanwhile is left alone ([`Expiry::NotDue`]).
    async fn expire(&self, id: LocalId, notice: Option<NewMessage>) -> Result<Expiry, StoreError>;

    /// Removes a message for good (retention): the record, every key naming it, and the
    /// payload when no fan-out sibling still holds it. Durable before it returns; an
    /// unknown id is an empty [`Removal`].
    async fn remove(&self, id: LocalId) -> Result<Removal, StoreError>;

    /// The number of messages listed in each mailbox (RECEIVED or FETCHED), for the
    /// metrics. The KV store keeps these counts in memory; a store that several nodes
    /// share counts them (over its index of listed messages) at each call.
    async fn mailbox_depths(&self) -> Result<Vec<(Address, u64)>, StoreError>;

    /// The store's size on disk in bytes, where the engine knows it.
    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError>;

    /// The disk syncs this node runs for durability (the embedded store's group commit),
    /// for the metrics; `None` for a store that makes writes durable its own way (a
    /// PostgreSQL server commits them).
    fn syncs(&self) -> Option<crate::metrics::SyncSnapshot> {
        None
    }

    /// The writes the embedded store's log holds that its index does not have yet, for
    /// the metrics (memory only, like [`Store::syncs`]); `None` for other stores.
    fn backlog(&self) -> Option<crate::metrics::BacklogSnapshot> {
        None
    }

    /// Every message with `corr_id` (at most `limit`) except those in `except` and except
    /// management messages ([`MessageSummary::is_management`]), through the corr.id index:
    /// the candidates a confirm or error may answer (spec §4.4). The exceptions (the notice
    /// itself, a message already noted) are skipped before their records are read.
    async fn with_corr_id(
        &self,
        corr_id: &str,
        limit: usize,
        except: &[LocalId],
    ) -> Result<Vec<MessageRecord>, StoreError>;

    /// False only if at most one message indexed for answers (see [`Store::with_corr_id`])
    /// has had `corr_id` since the store opened, so a look-up can be skipped when that one
    /// is known. A hint: true when the store does not know.
    fn corr_id_may_be_shared(&self, _corr_id: &str) -> bool {
        true
    }

    /// Records that `answer` answered message `id`. Not synced: a lost note is only a
    /// missing annotation. An unknown id is left alone.
    async fn note_answer(&self, id: LocalId, answer: Answer) -> Result<(), StoreError>;
}

/// Streams the data parts of one message into the store in bounded chunks.
#[async_trait]
pub trait PayloadWriter: Send {
    /// The payload being written.
    fn id(&self) -> PayloadId;

    /// Starts the next data part with its MIME header block as received.
    async fn start_part(&mut self, raw_headers: Vec<u8>) -> Result<(), StoreError>;

    /// Appends body bytes to the current part; memory use stays below one chunk.
    async fn write(&mut self, data: &[u8]) -> Result<(), StoreError>;

    /// Ends the current part.
    async fn end_part(&mut self) -> Result<(), StoreError>;

    /// Ends the upload. The payload is still invisible: pass the returned info in a
    /// [`NewMessage`] to commit it, or to [`Store::discard_payload`].
    async fn finish(self: Box<Self>) -> Result<PayloadInfo, StoreError>;

    /// Removes everything written so far. Dropping an unfinished writer does the same.
    async fn abort(self: Box<Self>) -> Result<(), StoreError>;
}

/// A message to store: from intake, or generated by the node (confirm, error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Chosen by the broker, because the label's history entry names it.
    pub local_id: LocalId,
    /// The sending organisation; with `summary.tx_id` the duplicate key.
    pub sender: OrgNumber,
    /// The arrival time the broker reports and writes into the history.
    pub arrival: DateTime<Utc>,
    /// The label as it will be served (history appended).
    pub label: Vec<u8>,
    /// The message-list view of the label.
    pub summary: MessageSummary,
    /// The uploaded payload, finished and not yet accepted.
    pub payload: PayloadInfo,
    /// A verified signer, if any.
    pub signer: Option<String>,
    /// Where it goes next.
    pub route: Route,
}

impl NewMessage {
    /// The record of a message as it is first stored, in state NEW (the same for every
    /// engine), and where it goes next.
    pub(crate) fn into_record(self) -> (MessageRecord, Route) {
        let arrival = record::stored_precision(self.arrival);
        let record = MessageRecord {
            local_id: self.local_id,
            tx_id: self.summary.tx_id.clone(),
            sender: self.sender,
            mailbox: None,
            state: State::New,
            state_log: vec![StateChange {
                state: State::New,
                at: arrival,
            }],
            arrival,
            arrival_seq: 0,
            label: self.label,
            summary: self.summary,
            payload: self.payload,
            error: None,
            signer: self.signer,
            parent: None,
            copies: Vec::new(),
            answer: None,
        };
        (record, self.route)
    }
}

impl MessageRecord {
    /// A fan-out copy of this product-addressed parent, in state NEW, sharing its payload;
    /// the parent lists the copy. The same for every engine.
    pub(crate) fn fan_out_copy(
        &mut self,
        copy: FanOutCopy,
        now: DateTime<Utc>,
    ) -> (MessageRecord, Route) {
        let mut child = self.clone();
        child.local_id = copy.local_id;
        child.tx_id = copy.summary.tx_id.clone();
        child.label = copy.label;
        child.summary = copy.summary;
        child.parent = Some(self.local_id);
        child.copies = Vec::new();
        child.mailbox = None;
        child.state_log = Vec::new();
        child.answer = None;
        child.enter(State::New, now);
        self.copies.push(child.local_id);
        (child, copy.route)
    }

    /// Applies a routing `outcome` to this NEW record (its state, and its mailbox or
    /// error) and returns the records the outcome adds, which the engine stores in the
    /// same batch. The same for every engine.
    pub(crate) fn apply_outcome(
        &mut self,
        outcome: JobOutcome,
        now: DateTime<Utc>,
    ) -> Vec<Addition> {
        let mut added = Vec::new();
        match outcome {
            JobOutcome::Deliver { mailbox } => {
                self.enter(State::Received, now);
                self.mailbox = Some(mailbox);
            }
            JobOutcome::Sent => self.enter(State::Sent, now),
            JobOutcome::FanOut { copies } => {
                for copy in copies {
                    let (child, route) = self.fan_out_copy(copy, now);
                    added.push(Addition::Copy(child, route));
                }
                self.enter(State::FannedOut, now);
            }
            JobOutcome::Quarantine {
                code,
                reason,
                notify,
            } => {
                self.error = Some(ErrorInfo { code, text: reason });
                self.enter(State::Quarantined, now);
                added.extend(notify.map(Addition::Notice));
            }
        }
        added
    }
}

/// A record that a routing outcome adds (see [`MessageRecord::apply_outcome`]).
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived, one per record the outcome creates, which is stored at once: \
              boxing would only add an allocation"
)]
pub(crate) enum Addition {
    /// A fan-out copy, stored with its route.
    Copy(MessageRecord, Route),
    /// The `error` to the sender of a quarantined message, whose payload is pending.
    Notice(NewMessage),
}

/// What happens to a new message after it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// State NEW and a durable routing job (the normal intake path, spec §5.1).
    Job,
    /// Already routed to a local mailbox: state RECEIVED and listed at once (e.g. a
    /// generated confirm or error for a local organisation).
    Mailbox(Address),
    /// Handled already, kept for the message log only: state SENT at once, no job, no
    /// mailbox (a synchronous exchange that was answered, spec §6).
    Logged,
}

/// The answer to [`Store::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Stored and durable.
    Accepted {
        /// The stored record.
        record: MessageRecord,
        /// Its routing job, for `Route::Job`: hand it to the router now.
        job: Option<JobId>,
    },
    /// The same tx.id from the same sender organisation was accepted before (and is
    /// durable); nothing new was stored. Answer 202 with the original's arrival date.
    Duplicate(MessageRecord),
    /// The tx.id is used by another sender organisation (409).
    TxIdTakenByOtherSender,
}

/// The answer to [`Store::acknowledge`].
#[expect(
    clippy::large_enum_variant,
    reason = "one value per call, never stored in bulk: boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// This call acknowledged the message; `generated` is the stored confirm, if any.
    Acknowledged {
        /// The acknowledged record.
        record: MessageRecord,
        /// The generated message as stored.
        generated: Option<MessageRecord>,
        /// Its routing job, if it was stored with [`Route::Job`].
        generated_job: Option<JobId>,
    },
    /// It was acknowledged before; nothing changed.
    AlreadyAcknowledged(MessageRecord),
}

/// A routing job with the message it routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingJob {
    /// The job.
    pub id: JobId,
    /// The message in state NEW.
    pub message: MessageRecord,
    /// Its retry schedule (all default until a delivery attempt failed).
    pub retry: Retry,
}

/// Where a routing job stands after failed delivery attempts (push, spec §5.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retry {
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be tried again before this time; `None`: due now.
    pub not_before: Option<DateTime<Utc>>,
    /// Why the last attempt failed, for operators.
    pub last_error: Option<String>,
}

/// The result of routing one message.
#[expect(
    clippy::large_enum_variant,
    reason = "one value per call, never stored in bulk: boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Delivered to a local mailbox: RECEIVED and listed.
    Deliver {
        /// The mailbox.
        mailbox: Address,
    },
    /// Pushed and answered 2xx: SENT.
    Sent,
    /// Product addressing found several recipients: the message becomes FANNED_OUT and
    /// each copy is stored, sharing its payload (spec §5.2).
    FanOut {
        /// One per recipient.
        copies: Vec<FanOutCopy>,
    },
    /// Routing or delivery failed for good: QUARANTINED with code and text, and the
    /// `error` message to the sender stored in the same batch.
    Quarantine {
        /// The SHS error code.
        code: ErrorCode,
        /// One line.
        reason: String,
        /// The generated `error` message (none for management messages, which are never
        /// answered).
        notify: Option<NewMessage>,
    },
}

/// One fan-out copy: its own tx.id and `to`, the parent's sender and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutCopy {
    /// The copy's local id.
    pub local_id: LocalId,
    /// The copy's label (new tx.id and `to`).
    pub label: Vec<u8>,
    /// Its message-list view.
    pub summary: MessageSummary,
    /// Where it goes next.
    pub route: Route,
}

/// The answer to [`Store::complete_job`].
#[expect(
    clippy::large_enum_variant,
    reason = "one value per call, never stored in bulk: boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCompletion {
    /// The outcome was applied.
    Applied {
        /// The routed message after the change.
        record: MessageRecord,
        /// Records created by the outcome (error notice, fan-out copies) with their jobs.
        created: Vec<(MessageRecord, Option<JobId>)>,
    },
    /// The job was completed before; nothing changed.
    AlreadyCompleted,
}
