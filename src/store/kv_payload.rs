//! Payload upload for [`super::KvStore`]: chunks of at most [`super::CHUNK_SIZE`] bytes under
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

use super::chunker::{Chunk, Chunker};
use super::codec::encode;
use super::keys::{self, PendingPayload};
use super::kv::{Batch, Direction, KvEngine};
use super::kv_store::{Inner, blocking};
use super::record::{PayloadId, PayloadInfo};
use super::{PayloadWriter, StoreError};

/// How many chunk keys one cleanup batch deletes.
const DELETE_PAGE: usize = 256;

pub(super) struct KvPayloadWriter<E: KvEngine> {
    inner: Arc<Inner<E>>,
    id: PayloadId,
    /// Parts, sizes and the chunk being filled.
    chunker: Chunker,
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
            chunker: Chunker::default(),
            closed: false,
        })
    }

    /// Stores one chunk (not synced: the accepting batch's sync covers it).
    async fn store_chunk(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(keys::chunk(self.id, chunk.part, chunk.index), chunk.bytes);
        blocking(&self.inner, move |inner| Ok(inner.engine.apply(batch)?)).await
    }
}

#[async_trait]
impl<E: KvEngine> PayloadWriter for KvPayloadWriter<E> {
    fn id(&self) -> PayloadId {
        self.id
    }

    async fn start_part(&mut self, raw_headers: Vec<u8>) -> Result<(), StoreError> {
        self.chunker.start_part(raw_headers)
    }

    async fn write(&mut self, mut data: &[u8]) -> Result<(), StoreError> {
        while !data.is_empty() {
            let (taken, full) = self.chunker.fill(data)?;
            data = &data[taken..];
            if let Some(chunk) = full {
                self.store_chunk(chunk).await?;
            }
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
