//! Payload upload for [`super::KvStore`]: chunks of at most [`CHUNK_SIZE`] bytes under
//! `p/<payload>/<part>/<chunk>`, hidden behind a pending marker `u/<payload>` until a batch
//! that accepts a message removes the marker.
//!
//! The marker is written before the first chunk, so after a crash every chunk without an
//! accepted message has a marker and [`remove_orphans`] finds it at open. Chunk writes are
//! not synced one by one: the sync that makes the accepting batch durable covers every
//! write applied before it, chunks included.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::codec::encode;
use super::keys::{self, PendingPayload};
use super::kv::{Batch, Direction, KvEngine};
use super::kv_store::{Inner, blocking};
use super::record::{PartInfo, PayloadId, PayloadInfo};
use super::{CHUNK_SIZE, PayloadWriter, StoreError};

/// How many chunk keys one cleanup batch deletes.
const DELETE_PAGE: usize = 256;

pub(super) struct KvPayloadWriter<E: KvEngine> {
    inner: Arc<Inner<E>>,
    id: PayloadId,
    parts: Vec<PartInfo>,
    /// The part being written, with its chunk count and length so far.
    current: Option<PartInfo>,
    /// Body bytes not yet written as a chunk; never longer than one chunk.
    buffer: Vec<u8>,
    /// Finished or aborted: nothing to clean up on drop.
    closed: bool,
}

impl<E: KvEngine> KvPayloadWriter<E> {
    /// Writes the pending marker of a fresh payload.
    pub(super) async fn begin(inner: Arc<Inner<E>>) -> Result<Self, StoreError> {
        let id = PayloadId(Uuid::new_v4());
        let marker = PendingPayload {
            started_unix: chrono::Utc::now().timestamp(),
            discarding: false,
        };
        let mut batch = Batch::default();
        batch.put(keys::pending(id), encode(&marker)?);
        blocking(&inner, move |inner| Ok(inner.engine.apply(batch)?)).await?;
        Ok(KvPayloadWriter {
            inner,
            id,
            parts: Vec::new(),
            current: None,
            buffer: Vec::new(),
            closed: false,
        })
    }

    /// Writes the buffer as the next chunk of the current part.
    async fn write_chunk(&mut self) -> Result<(), StoreError> {
        let part_index = u32::try_from(self.parts.len())
            .map_err(|_| StoreError::WriterMisuse("too many parts"))?;
        let part = self
            .current
            .as_mut()
            .ok_or(StoreError::WriterMisuse("write outside a part"))?;
        let chunk = std::mem::take(&mut self.buffer);
        part.len += chunk.len() as u64;
        let key = keys::chunk(self.id, part_index, part.chunks);
        part.chunks = part
            .chunks
            .checked_add(1)
            .ok_or(StoreError::WriterMisuse("part too large"))?;
        let mut batch = Batch::default();
        batch.put(key, chunk);
        blocking(&self.inner, move |inner| Ok(inner.engine.apply(batch)?)).await
    }
}

#[async_trait]
impl<E: KvEngine> PayloadWriter for KvPayloadWriter<E> {
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
        let id = self.id;
        blocking(&self.inner, move |inner| {
            inner.discard_pending(id).map(drop)
        })
        .await
    }
}

impl<E: KvEngine> Drop for KvPayloadWriter<E> {
    /// An upload abandoned mid-way (client gone, parse error) is removed in the
    /// background; if that fails too, the next open removes it.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (inner, id) = (Arc::clone(&self.inner), self.id);
        let discard = move || {
            if let Err(err) = inner.discard_pending(id) {
                tracing::warn!(payload = %id, error = %err, "could not remove abandoned upload");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(discard)),
            Err(_) => discard(),
        }
    }
}

/// Deletes every chunk of `payload`, then its pending marker (last, so an interrupted
/// delete is finished at the next open).
pub(super) fn delete_payload<E: KvEngine + ?Sized>(
    engine: &E,
    payload: PayloadId,
) -> Result<(), StoreError> {
    let prefix = keys::chunk_prefix(payload);
    loop {
        let page = engine.scan(&prefix, None, Direction::Forward, DELETE_PAGE)?;
        if page.is_empty() {
            break;
        }
        let mut batch = Batch::default();
        for (key, _) in page {
            batch.delete(key);
        }
        engine.apply(batch)?;
    }
    let mut batch = Batch::default();
    batch.delete(keys::pending(payload));
    engine.apply(batch)?;
    Ok(())
}

/// Removes every upload that has a pending marker; run at open, when no upload can be in
/// progress. Returns how many were removed.
pub(super) fn remove_orphans<E: KvEngine + ?Sized>(engine: &E) -> Result<usize, StoreError> {
    let mut removed = 0;
    loop {
        let page = engine.scan(keys::PENDING_PREFIX, None, Direction::Forward, DELETE_PAGE)?;
        if page.is_empty() {
            return Ok(removed);
        }
        for (key, _) in page {
            let payload = keys::pending_id_of(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed pending-payload key".into()))?;
            delete_payload(engine, payload)?;
            removed += 1;
        }
    }
}
