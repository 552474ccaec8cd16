//! [`PgStore`]: the PostgreSQL engine, implementing [`Store`] directly in SQL so that
//! several shsd nodes can share one state (issue 8).
//!
//! Every operation is one database transaction. The ones that acknowledge something
//! (accept, acknowledge, expire, administer, remove) commit with `synchronous_commit` on,
//! the server default, so their commit has reached the database's WAL on disk before they
//! return: that is the "202 only after a durable commit" rule of spec §8. The operations
//! the trait calls "not synced" (payload chunks, fetch marks, job completions and
//! deferrals, answer notes) commit with `SET LOCAL synchronous_commit TO OFF`: a later
//! synchronous commit (the accept that names the payload, or [`Store::flush`]) flushes the
//! WAL up to itself and so covers them too.
//!
//! Records are stored in the versioned [`super::codec`] form (the `record` column), with
//! the fields that lists, searches and housekeeping filter on copied into indexed columns
//! (see [`schema`]). State changes reuse the record logic of the KV store: read the
//! record `FOR UPDATE`, change it in Rust, write it back; row locks make
//! read-check-write sequences safe across nodes.
//!
//! Several nodes share one database: routing jobs are claimed under a lease and
//! node-wide duties are held by one node at a time (`claims`); tx.id uniqueness is the
//! database's. Every failure to reach the database is [`StoreError::Unavailable`] (503 at
//! the edge); the pool replaces broken connections, so a database restart needs no
//! restart of shsd. TLS to the database goes through rustls, with the roots the
//! configuration names.
//!
//! - [`schema`]: the tables and the versioned migrations.
//! - `ops`: the write paths; `reads`: the read paths; `payload`: the upload writer;
//!   `claims`: jobs and duties shared between nodes.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::codec::{decode, encode};
use super::record::{JobId, LocalId, MessageRecord, PayloadId};
use super::{
    Acceptance, AckOutcome, AdminChange, AdminSearch, Administered, Answer, AuditNote, AuditRecord,
    Due, Expiry, JobCompletion, JobOutcome, MailboxQuery, NewMessage, PayloadWriter, Removal,
    Retry, RoutingJob, Store, StoreError,
};
use crate::protocol::urn::Address;

mod claims;
mod ops;
mod payload;
mod reads;
pub mod schema;

/// Pending uploads older than this are taken for abandoned (their node died mid-upload)
/// and removed at open and by housekeeping. Uploads are streamed from a live client, so
/// an hour is generous.
const ORPHAN_AGE_SECS: f64 = 3600.0;

/// Where the database is and how to use it.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// A libpq-style connection string or URL (`host=127.0.0.1 port=5432 user=shsd
    /// dbname=shsd`, or `postgresql://shsd@127.0.0.1/shsd`). Plain TCP for now.
    pub conninfo: String,
    /// The database password, when `conninfo` does not carry one.
    pub password: Option<String>,
    /// The most connections this node holds open.
    pub pool_size: usize,
    /// Every statement is cancelled by the server after this long, so a stuck database
    /// turns into an error (503) instead of a hung request.
    pub statement_timeout: Duration,
    /// How long connecting or waiting for a pooled connection may take.
    pub connect_timeout: Duration,
    /// This process's name in job and duty leases: unique among the database's nodes.
    pub node: String,
    /// TLS to the database with this client configuration (its roots decide which server
    /// certificates are trusted); `None`: plain TCP. Whether TLS is required is the
    /// conninfo's `sslmode` (`require` refuses a server without TLS).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// How long a routing job this node took stays its own.
    pub job_lease: Duration,
}

impl PgConfig {
    /// `conninfo` with the default pool size (16), statement timeout (30 s), connect
    /// timeout (5 s), job lease (120 s), and a fresh node name.
    pub fn new(conninfo: impl Into<String>) -> Self {
        PgConfig {
            conninfo: conninfo.into(),
            password: None,
            pool_size: 16,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            node: node_name("shsd"),
            tls: None,
            job_lease: Duration::from_secs(120),
        }
    }
}

/// A lease holder name for this process: the configured node id, the process id and a
/// random suffix, so restarted processes and several processes with one node id differ.
pub fn node_name(node_id: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{node_id}/{}/{}", std::process::id(), &random[..8])
}

/// The store in a PostgreSQL database. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    owner: claims::JobOwner,
}

impl PgStore {
    /// Connects, brings the schema up to date and removes abandoned uploads.
    pub async fn open(config: &PgConfig) -> Result<Self, StoreError> {
        let mut pg = tokio_postgres::Config::from_str(&config.conninfo)
            .map_err(|err| StoreError::Unavailable(format!("bad database address: {err}")))?;
        pg.options(format!(
            "-c statement_timeout={}",
            config.statement_timeout.as_millis()
        ));
        pg.connect_timeout(config.connect_timeout);
        pg.application_name(&config.node);
        if let Some(password) = &config.password {
            pg.password(password.as_bytes());
        }
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &config.tls {
            Some(tls) => {
                let mut tls = (**tls).clone();
                // PostgreSQL speaks its own protocol inside TLS, not HTTP.
                tls.alpn_protocols.clear();
                Manager::from_config(pg, MakeRustlsConnect::new(tls), recycling)
            }
            None => Manager::from_config(pg, NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|err| StoreError::Unavailable(format!("cannot build pool: {err}")))?;
        let store = PgStore {
            pool,
            owner: claims::JobOwner::new(config.node.clone(), config.job_lease),
        };
        let mut client = store.client().await?;
        let applied = schema::migrate(&mut client).await?;
        if !applied.is_empty() {
            tracing::info!(versions = ?applied, "migrated database schema");
        }
        store.remove_orphans().await?;
        Ok(store)
    }

    /// Deletes uploads pending for longer than [`ORPHAN_AGE_SECS`].
    async fn remove_orphans(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let orphans = client
            .execute(
                "DELETE FROM payloads WHERE pending
                   AND started < now() - make_interval(secs => $1)",
                &[&ORPHAN_AGE_SECS],
            )
            .await
            .map_err(pg_error)?;
        if orphans > 0 {
            tracing::info!(count = orphans, "removed abandoned payload uploads");
        }
        Ok(orphans)
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(format!("database: {err}")))
    }
}

/// `sql` as a statement prepared once per connection (deadpool keeps the cache), so that
/// running it is one round trip instead of a prepare and an execute.
pub(crate) async fn cached(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
) -> Result<tokio_postgres::Statement, StoreError> {
    tx.prepare_cached(sql).await.map_err(pg_error)
}

/// A database error as a store error: the database is away or refused the statement.
pub(crate) fn pg_error(err: tokio_postgres::Error) -> StoreError {
    match err.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("database: {}: {}", db.code().code(), db)),
        None => StoreError::Unavailable(format!("database: {err}")),
    }
}

/// True for a unique-constraint violation.
fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Converts a count or id between Rust's unsigned and SQL's signed integers.
fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{value} exceeds BIGINT")))
}

fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative id {value}")))
}

fn decode_record(bytes: &[u8]) -> Result<MessageRecord, StoreError> {
    Ok(decode(bytes)?)
}

fn encode_value<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(encode(value)?)
}

#[async_trait]
impl Store for PgStore {
    async fn begin_payload(&self) -> Result<Box<dyn PayloadWriter>, StoreError> {
        Ok(Box::new(
            payload::PgPayloadWriter::begin(self.pool.clone()).await?,
        ))
    }

    async fn discard_payload(&self, payload: PayloadId) -> Result<(), StoreError> {
        match payload::discard(&self.pool, payload).await? {
            true => Ok(()),
            false => Err(StoreError::PayloadNotPending(payload)),
        }
    }

    async fn accept(&self, message: NewMessage) -> Result<Acceptance, StoreError> {
        self.accept_message(message).await
    }

    async fn message(&self, id: LocalId) -> Result<Option<MessageRecord>, StoreError> {
        self.record(id).await
    }

    async fn find_in_mailbox(
        &self,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        self.in_mailbox(mailbox, tx_id).await
    }

    async fn list(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.list_mailbox(mailbox, query).await
    }

    async fn search(&self, search: &AdminSearch) -> Result<Vec<MessageRecord>, StoreError> {
        self.search_all(search).await
    }

    async fn read_chunk(
        &self,
        payload: PayloadId,
        part: u32,
        index: u32,
    ) -> Result<Option<Bytes>, StoreError> {
        self.chunk(payload, part, index).await
    }

    async fn mark_fetched(&self, id: LocalId) -> Result<MessageRecord, StoreError> {
        self.fetch_mark(id).await
    }

    async fn acknowledge(
        &self,
        id: LocalId,
        generated: Option<NewMessage>,
        answer: Option<Answer>,
    ) -> Result<AckOutcome, StoreError> {
        self.ack(id, generated, answer).await
    }

    async fn pending_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        self.jobs(after, limit).await
    }

    async fn claim_jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        self.claim(after, limit).await
    }

    async fn next_job_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.next_due().await
    }

    async fn hold_duty(&self, duty: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.duty(duty, ttl).await
    }

    async fn remove_abandoned_uploads(&self) -> Result<u64, StoreError> {
        self.remove_orphans().await
    }

    async fn complete_job(
        &self,
        job: JobId,
        outcome: JobOutcome,
    ) -> Result<JobCompletion, StoreError> {
        self.complete(job, outcome).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // A transaction with an id commits with a WAL record and, synchronous_commit being
        // on, waits for the WAL to be flushed up to it: every earlier asynchronous commit
        // is then on disk too.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_current_xact_id()", &[])
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }

    async fn defer_job(&self, job: JobId, retry: Retry) -> Result<(), StoreError> {
        self.defer(job, retry).await
    }

    async fn administer(
        &self,
        id: LocalId,
        change: AdminChange,
        note: AuditNote,
    ) -> Result<Administered, StoreError> {
        self.admin_change(id, change, note).await
    }

    async fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit(before, limit).await
    }

    async fn due(
        &self,
        due: Due,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LocalId>, StoreError> {
        self.due_ids(due, before, limit).await
    }

    async fn expire(&self, id: LocalId, notice: Option<NewMessage>) -> Result<Expiry, StoreError> {
        self.expire_message(id, notice).await
    }

    async fn remove(&self, id: LocalId) -> Result<Removal, StoreError> {
        self.remove_message(id).await
    }

    async fn mailbox_depths(&self) -> Result<Vec<(Address, u64)>, StoreError> {
        self.depths().await
    }

    async fn size_on_disk(&self) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(pg_error)?;
        Ok(Some(to_u64(row.get(0))?))
    }

    async fn with_corr_id(
        &self,
        corr_id: &str,
        limit: usize,
        except: &[LocalId],
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.by_corr_id(corr_id, limit, except).await
    }

    async fn note_answer(&self, id: LocalId, answer: Answer) -> Result<(), StoreError> {
        self.answer(id, answer).await
    }
}

pub mod test_server;

#[cfg(test)]
mod tests;
