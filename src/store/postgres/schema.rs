//! The PostgreSQL schema of [`super::PgStore`], created and migrated by shsd itself.
//!
//! Migrations are numbered and only ever appended: each runs once, in its own transaction
//! together with the row in `schema_migrations` that records it, so a crash mid-migration
//! leaves the database at the previous version. Several nodes starting at once serialise
//! on a transaction-level advisory lock; the first applies what is missing, the others
//! find nothing left to do. A database migrated by a newer shsd (a version this build
//! does not know) is refused rather than written with an older idea of the schema.
//!
//! Version 1:
//! - `messages`: one row per record. `record` is the [`crate::store::codec`] form
//!   (version byte + body), the truth that is handed out; the other columns are copies of
//!   record fields for indexes: `tx_id` (unique: the duplicate key across nodes, with
//!   `sender` deciding duplicate vs. 409), `mailbox` + `state` + `arrival_seq` (the mailbox
//!   list, a partial index over the listed states), `state` + `state_since`
//!   (housekeeping), `corr_id` (answers, §4.4), `payload_id` and `parent` (fan-out
//!   families), `arrival` (admin search windows).
//! - `shs_ids`: the sequence behind arrival order, routing job ids and audit sequence
//!   numbers; ids only grow, across restarts and nodes.
//! - `payloads` and `payload_chunks`: chunks of at most [`crate::store::CHUNK_SIZE`]
//!   bytes keyed by (payload, part, chunk); a payload is invisible while `pending`, and
//!   deleting its row deletes its chunks (`ON DELETE CASCADE`).
//! - `routing_jobs`: one row per unfinished job, with its retry schedule (`attempts`,
//!   `not_before`, `last_error`) and lease columns (`claimed_by`, `claimed_until`) for
//!   claiming jobs across nodes.
//! - `audit_log`: the codec form of each [`crate::store::AuditRecord`] by `seq`.
//!
//! Version 2:
//! - `node_duties`: which node does a node-wide duty (housekeeping) until when; a node
//!   takes a duty whose holder's lease ran out (see `claims`).

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// The migrations, in order; the version of `MIGRATIONS[i]` is `i + 1`. Never edit one
/// that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE SEQUENCE shs_ids;

CREATE TABLE messages (
    local_id    UUID PRIMARY KEY,
    tx_id       TEXT NOT NULL UNIQUE,
    sender      TEXT NOT NULL,
    mailbox     TEXT,
    state       TEXT NOT NULL,
    state_since TIMESTAMPTZ NOT NULL,
    arrival     TIMESTAMPTZ NOT NULL,
    arrival_seq BIGINT NOT NULL UNIQUE,
    corr_id     TEXT NOT NULL,
    payload_id  UUID NOT NULL,
    parent      UUID,
    record      BYTEA NOT NULL
);
CREATE INDEX messages_listed ON messages (mailbox, arrival_seq)
    WHERE state IN ('RECEIVED', 'FETCHED');
CREATE INDEX messages_mailbox_tx ON messages (mailbox, tx_id);
CREATE INDEX messages_housekeeping ON messages (state, state_since, local_id);
CREATE INDEX messages_corr_id ON messages (corr_id, local_id);
CREATE INDEX messages_payload ON messages (payload_id);

CREATE TABLE payloads (
    payload_id UUID PRIMARY KEY,
    pending    BOOLEAN NOT NULL,
    started    TIMESTAMPTZ NOT NULL
);
CREATE TABLE payload_chunks (
    payload_id UUID NOT NULL REFERENCES payloads ON DELETE CASCADE,
    part       INTEGER NOT NULL,
    chunk      INTEGER NOT NULL,
    bytes      BYTEA NOT NULL,
    PRIMARY KEY (payload_id, part, chunk)
);

CREATE TABLE routing_jobs (
    job_id        BIGINT PRIMARY KEY,
    local_id      UUID NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    TIMESTAMPTZ,
    last_error    TEXT,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ
);

CREATE TABLE audit_log (
    seq    BIGINT PRIMARY KEY,
    record BYTEA NOT NULL
);
"#,
    r#"
CREATE TABLE node_duties (
    duty   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  TIMESTAMPTZ NOT NULL
);
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// An arbitrary key for the advisory lock that serialises migrations across nodes.
const MIGRATION_LOCK: i64 = 0x5348_5344_4d49_4752; // "SHSDMIGR"

/// Brings the database to [`SCHEMA_VERSION`]; returns the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, StoreError> {
    // Under the migration lock too: `CREATE TABLE IF NOT EXISTS` is not safe against a
    // concurrent one (the loser fails on the catalogue's unique index for the table's type).
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    let mut applied = Vec::new();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i32 + 1;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        let newest: Option<i32> = tx
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await
            .map_err(pg_error)?
            .get(0);
        if let Some(newest) = newest
            && newest > SCHEMA_VERSION
        {
            return Err(StoreError::Corrupt(format!(
                "database schema version {newest} is newer than this build's {SCHEMA_VERSION}"
            )));
        }
        if newest.is_some_and(|newest| newest >= version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        applied.push(version);
    }
    Ok(applied)
}
