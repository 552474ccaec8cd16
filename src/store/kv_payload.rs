//! Payload upload for [`super::KvStore`]: chunks of at most [`super::CHUNK_SIZE`] bytes under
//! `p/<payload>/<part>/<chunk>`, hidden behind a pending marker `u/<payload>` until a batch
//! that accepts a message removes the marker.
//!
//! The marker is written before the first chunk, so after a crash every chunk without an
//! accepted message has a marker and [`remove_orphans`] finds it at open. Chunk writes are
//! not synced one by one: the sync that makes the accepting batch durable covers every
//! write applied before it, chunks included.
//!
//! A small payload (at most [`HOLD_BYTES`] of chunks, the common case of a form or a
//! short document) is never written on its own: its chunks stay in memory
//! ([`HeldPayloads`]) and go to disk in the batch that accepts the message. That saves
//! the marker's write and removal, the chunks' separate writes and the thread hand-offs
//! of each. Nothing of a held payload reaches the disk before it is accepted, so a crash
//! leaves nothing to clean up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::chunker::{Chunk, Chunker};
use super::codec::encode;
use super::keys::{self, PendingPayload};
use super::kv::{Batch, Direction, KvEngine};
use super::kv_store::{Inner, blocking};
use super::record::{PayloadId, PayloadInfo};
use super::{CHUNK_SIZE, PayloadWriter, StoreError};

/// How many chunk keys one cleanup batch deletes.
const DELETE_PAGE: usize = 256;

/// The most chunk bytes of one upload kept in memory instead of being written as they
/// come: one chunk, so a held upload costs no more memory than the chunk being filled.
pub(super) const HOLD_BYTES: usize = CHUNK_SIZE;

/// A finished, held upload that no accept or discard has claimed after this long was
/// abandoned by a failed intake: it is dropped when the next one is held.
const HELD_FOR_AT_MOST: Duration = Duration::from_secs(600);

/// Above this many held uploads, holding one looks for abandoned ones.
const HELD_BEFORE_PRUNING: usize = 256;

/// Finished small uploads, by payload, waiting in memory for the batch that accepts them.
#[derive(Default)]
pub(super) struct HeldPayloads {
    payloads: Mutex<HashMap<PayloadId, Held>>,
}

struct Held {
    since: Instant,
    /// Chunk keys and bytes.
    chunks: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeldPayloads {
    fn hold(&self, id: PayloadId, chunks: Vec<(Vec<u8>, Vec<u8>)>) {
        let now = Instant::now();
        let mut payloads = self.lock();
        if payloads.len() >= HELD_BEFORE_PRUNING {
            payloads.retain(|_, held| now.duration_since(held.since) < HELD_FOR_AT_MOST);
        }
        payloads.insert(id, Held { since: now, chunks });
    }

    /// Moves the chunks of held payload `id` into `batch`; false if it is not held. Once
    /// moved, the payload is no longer pending: if the batch is not applied, it is gone.
    pub(super) fn commit_into(&self, id: PayloadId, batch: &mut Batch) -> bool {
        let Some(held) = self.lock().remove(&id) else {
            return false;
        };
        for (key, bytes) in held.chunks {
            batch.put(key, bytes);
        }
        true
    }

    /// Forgets held payload `id`; false if it is not held.
    pub(super) fn discard(&self, id: PayloadId) -> bool {
        self.lock().remove(&id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PayloadId, Held>> {
        self.payloads.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct KvPayloadWriter<E: KvEngine> {
    inner: Arc<Inner<E>>,
    id: PayloadId,
    /// Parts, sizes and the chunk being filled.
    chunker: Chunker,
    /// Chunks not written yet, while they fit in [`HOLD_BYTES`].
    held: Vec<Chunk>,
    held_bytes: usize,
    /// The pending marker is written (the upload went past [`HOLD_BYTES`]).
    stored: bool,
    /// Finished or aborted: nothing to clean up on drop.
    closed: bool,
}

impl<E: KvEngine> KvPayloadWriter<E> {
    /// A fresh payload; nothing is written until it outgrows [`HOLD_BYTES`].
    pub(super) fn begin(inner: Arc<Inner<E>>) -> Self {
        KvPayloadWriter {
            inner,
            id: PayloadId::fresh(),
            chunker: Chunker::default(),
            held: Vec::new(),
            held_bytes: 0,
            stored: false,
            closed: false,
        }
    }

    /// Keeps a chunk in memory while the upload is small; otherwise writes the pending
    /// marker (first time), the chunks held so far and this one (not synced: the
    /// accepting batch's sync covers them).
    async fn store_chunk(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        if !self.stored && self.held_bytes + chunk.bytes.len() <= HOLD_BYTES {
            self.held_bytes += chunk.bytes.len();
            self.held.push(chunk);
            return Ok(());
        }
        let mut batches = Vec::new();
        if !self.stored {
            let marker = PendingPayload {
                started_unix: chrono::Utc::now().timestamp(),
                discarding: false,
            };
            let mut batch = Batch::default();
            batch.put(keys::pending(self.id), encode(&marker)?);
            batches.push(batch);
            self.held_bytes = 0;
        }
        for chunk in self.held.drain(..).chain(Some(chunk)) {
            let mut batch = Batch::default();
            batch.put(keys::chunk(self.id, chunk.part, chunk.index), chunk.bytes);
            batches.push(batch);
        }
        // Marked from here on even if a write fails: drop and abort clean up.
        self.stored = true;
        blocking(&self.inner, move |inner| {
            for batch in batches {
                inner.engine.apply(batch)?;
            }
            Ok(())
        })
        .await
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
        if !self.stored {
            let chunks = self
                .held
                .drain(..)
                .map(|chunk| (keys::chunk(self.id, chunk.part, chunk.index), chunk.bytes))
                .collect();
            self.inner.held.hold(self.id, chunks);
        }
        Ok(info)
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.closed = true;
        if !self.stored {
            return Ok(());
        }
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
        if self.closed || !self.stored {
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
