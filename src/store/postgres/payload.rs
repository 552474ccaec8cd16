//! Payload upload for [`super::PgStore`]: a `payloads` row marked `pending`, then one
//! `payload_chunks` row per chunk of at most [`crate::store::CHUNK_SIZE`] bytes. The accepting
//! transaction clears `pending`; until then [`super::PgStore`] serves none of its chunks.
//!
//! Chunk inserts commit asynchronously (not synced one by one): the synchronous commit of
//! the accept that names the payload flushes the WAL past them.

use async_trait::async_trait;
use deadpool_postgres::Pool;

use super::pg_error;
use crate::store::chunker::{Chunk, Chunker};
use crate::store::record::{PayloadId, PayloadInfo};
use crate::store::{PayloadWriter, StoreError};

pub(super) struct PgPayloadWriter {
    pool: Pool,
    id: PayloadId,
    /// Parts, sizes and the chunk being filled.
    chunker: Chunker,
    /// Finished or aborted: nothing to clean up on drop.
    closed: bool,
}

impl PgPayloadWriter {
    /// Inserts the pending row of a fresh payload.
    pub(super) async fn begin(pool: Pool) -> Result<Self, StoreError> {
        let id = PayloadId::fresh();
        let client = pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(format!("database: {err}")))?;
        let insert = client
            .prepare_cached(
                "INSERT INTO payloads (payload_id, pending, started) VALUES ($1, TRUE, now())",
            )
            .await
            .map_err(pg_error)?;
        client.execute(&insert, &[&id.0]).await.map_err(pg_error)?;
        Ok(PgPayloadWriter {
            pool,
            id,
            chunker: Chunker::default(),
            closed: false,
        })
    }

    /// Stores one chunk (not synchronously committed: the accepting transaction's commit
    /// covers it).
    async fn store_chunk(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let part_index =
            i32::try_from(chunk.part).map_err(|_| StoreError::WriterMisuse("too many parts"))?;
        let chunk_index =
            i32::try_from(chunk.index).map_err(|_| StoreError::WriterMisuse("part too large"))?;
        let chunk = chunk.bytes;
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(format!("database: {err}")))?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await
            .map_err(pg_error)?;
        let insert = super::cached(
            &tx,
            "INSERT INTO payload_chunks (payload_id, part, chunk, bytes) VALUES ($1, $2, $3, $4)",
        )
        .await?;
        tx.execute(&insert, &[&self.id.0, &part_index, &chunk_index, &chunk])
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)
    }
}

#[async_trait]
impl PayloadWriter for PgPayloadWriter {
    fn id(&self) -> PayloadId {
        self.id
    }

    async fn start_part(&mut self, raw_headers: Vec<u8>) -> Result<(), StoreError> {
        self.chunker.start_part(raw_headers)
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        for chunk in self.chunker.fill_all(data)? {
            self.store_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn end_part(&mut self) -> Result<(), StoreError> {
        if let Some(chunk) = self.chunker.end_part()? {
            self.store_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<PayloadInfo, StoreError> {
        let info = self.chunker.finish(self.id)?;
        self.closed = true;
        Ok(info)
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.closed = true;
        discard(&self.pool, self.id).await.map(drop)
    }
}

impl Drop for PgPayloadWriter {
    /// An upload abandoned mid-way (client gone, parse error) is removed in the
    /// background; if that fails too, a later open removes it once it is old.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (pool, id) = (self.pool.clone(), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = discard(&pool, id).await {
                    tracing::warn!(payload = %id, error = %err, "could not remove abandoned upload");
                }
            });
        }
    }
}

/// Deletes a pending payload with its chunks; false if it was not pending. The row lock
/// orders this against an accept committing the same payload.
pub(super) async fn discard(pool: &Pool, payload: PayloadId) -> Result<bool, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|err| StoreError::Unavailable(format!("database: {err}")))?;
    discard_on(&client, payload).await
}

/// [`discard`] on a connection the caller already holds (never take a second one from
/// the pool while holding one: a full pool would deadlock).
pub(super) async fn discard_on(
    client: &tokio_postgres::Client,
    payload: PayloadId,
) -> Result<bool, StoreError> {
    let deleted = client
        .execute(
            "DELETE FROM payloads WHERE payload_id = $1 AND pending",
            &[&payload.0],
        )
        .await
        .map_err(pg_error)?;
    Ok(deleted > 0)
}
