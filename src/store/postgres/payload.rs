//! Payload upload for [`super::PgStore`]: a `payloads` row marked `pending`, then one
//! `payload_chunks` row per chunk of at most [`CHUNK_SIZE`] bytes. The accepting
//! transaction clears `pending`; until then [`super::PgStore`] serves none of its chunks.
//!
//! Chunk inserts commit asynchronously (not synced one by one): the synchronous commit of
//! the accept that names the payload flushes the WAL past them.

use async_trait::async_trait;
use deadpool_postgres::Pool;
use uuid::Uuid;

use super::pg_error;
use crate::store::record::{PartInfo, PayloadId, PayloadInfo};
use crate::store::{CHUNK_SIZE, PayloadWriter, StoreError};

pub(super) struct PgPayloadWriter {
    pool: Pool,
    id: PayloadId,
    parts: Vec<PartInfo>,
    /// The part being written, with its chunk count and length so far.
    current: Option<PartInfo>,
    /// Body bytes not yet written as a chunk; never longer than one chunk.
    buffer: Vec<u8>,
    /// Finished or aborted: nothing to clean up on drop.
    closed: bool,
}

impl PgPayloadWriter {
    /// Inserts the pending row of a fresh payload.
    pub(super) async fn begin(pool: Pool) -> Result<Self, StoreError> {
        let id = PayloadId(Uuid::new_v4());
        let client = pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(format!("database: {err}")))?;
        client
            .execute(
                "INSERT INTO payloads (payload_id, pending, started) VALUES ($1, TRUE, now())",
                &[&id.0],
            )
            .await
            .map_err(pg_error)?;
        Ok(PgPayloadWriter {
            pool,
            id,
            parts: Vec::new(),
            current: None,
            buffer: Vec::new(),
            closed: false,
        })
    }

    /// Writes the buffer as the next chunk of the current part.
    async fn write_chunk(&mut self) -> Result<(), StoreError> {
        let part_index = i32::try_from(self.parts.len())
            .map_err(|_| StoreError::WriterMisuse("too many parts"))?;
        let part = self
            .current
            .as_mut()
            .ok_or(StoreError::WriterMisuse("write outside a part"))?;
        let chunk_index =
            i32::try_from(part.chunks).map_err(|_| StoreError::WriterMisuse("part too large"))?;
        let chunk = std::mem::take(&mut self.buffer);
        part.len += chunk.len() as u64;
        part.chunks = part
            .chunks
            .checked_add(1)
            .ok_or(StoreError::WriterMisuse("part too large"))?;
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|err| StoreError::Unavailable(format!("database: {err}")))?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await
            .map_err(pg_error)?;
        tx.execute(
            "INSERT INTO payload_chunks (payload_id, part, chunk, bytes) VALUES ($1, $2, $3, $4)",
            &[&self.id.0, &part_index, &chunk_index, &chunk],
        )
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
        if self.current.is_some() {
            return Err(StoreError::WriterMisuse("start_part inside a part"));
        }
        self.current = Some(PartInfo {
            raw_headers,
            len: 0,
            chunks: 0,
        });
        Ok(())
    }

    async fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        if self.current.is_none() {
            return Err(StoreError::WriterMisuse("write outside a part"));
        }
        while !data.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(CHUNK_SIZE);
            }
            let take = data.len().min(CHUNK_SIZE - self.buffer.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == CHUNK_SIZE {
                self.write_chunk().await?;
            }
        }
        Ok(())
    }

    async fn end_part(&mut self) -> Result<(), StoreError> {
        if self.current.is_none() {
            return Err(StoreError::WriterMisuse("end_part outside a part"));
        }
        if !self.buffer.is_empty() {
            self.write_chunk().await?;
        }
        if let Some(part) = self.current.take() {
            self.parts.push(part);
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<PayloadInfo, StoreError> {
        if self.current.is_some() {
            return Err(StoreError::WriterMisuse("finish inside a part"));
        }
        self.closed = true;
        let parts = std::mem::take(&mut self.parts);
        Ok(PayloadInfo {
            id: self.id,
            size: parts.iter().map(|part| part.len).sum(),
            parts,
        })
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
