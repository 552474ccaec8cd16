//! The bookkeeping of a payload upload, shared by every engine's [`super::PayloadWriter`]:
//! parts and their sizes, and body bytes cut into chunks of exactly [`CHUNK_SIZE`] (the
//! last of a part shorter). The engine only stores the chunks it is handed.

use super::record::{PartInfo, PayloadId, PayloadInfo};
use super::{CHUNK_SIZE, StoreError};

/// One chunk to store: data part `part`, chunk `index` within it.
#[derive(Debug)]
pub(super) struct Chunk {
    pub part: u32,
    pub index: u32,
    pub bytes: Vec<u8>,
}

/// Parts written so far, the part being written and its unwritten tail.
#[derive(Debug, Default)]
pub(super) struct Chunker {
    parts: Vec<PartInfo>,
    current: Option<PartInfo>,
    /// Never longer than one chunk.
    buffer: Vec<u8>,
}

impl Chunker {
    /// Starts the next part with its raw MIME header block.
    pub fn start_part(&mut self, raw_headers: Vec<u8>) -> Result<(), StoreError> {
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

    /// Takes bytes from the front of `data` up to the end of the current chunk; returns how
    /// many it took and the chunk if that filled it. Call until `data` is used up.
    fn fill(&mut self, data: &[u8]) -> Result<(usize, Option<Chunk>), StoreError> {
        if self.current.is_none() {
            return Err(StoreError::WriterMisuse("write outside a part"));
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(CHUNK_SIZE);
        }
        let take = data.len().min(CHUNK_SIZE - self.buffer.len());
        self.buffer.extend_from_slice(&data[..take]);
        let full = if self.buffer.len() == CHUNK_SIZE {
            Some(self.take_chunk()?)
        } else {
            None
        };
        Ok((take, full))
    }

    /// Takes all of `data`; returns the chunks it filled, in order (as many as `data`
    /// spans: a writer stores them before it takes the next piece).
    pub fn fill_all(&mut self, mut data: &[u8]) -> Result<Vec<Chunk>, StoreError> {
        let mut full = Vec::new();
        while !data.is_empty() {
            let (taken, chunk) = self.fill(data)?;
            data = &data[taken..];
            full.extend(chunk);
        }
        Ok(full)
    }

    /// Ends the current part; returns its last, short chunk if there is one.
    pub fn end_part(&mut self) -> Result<Option<Chunk>, StoreError> {
        if self.current.is_none() {
            return Err(StoreError::WriterMisuse("end_part outside a part"));
        }
        let last = if self.buffer.is_empty() {
            None
        } else {
            Some(self.take_chunk()?)
        };
        if let Some(part) = self.current.take() {
            self.parts.push(part);
        }
        Ok(last)
    }

    /// The payload's description, once every part has ended.
    pub fn finish(&mut self, id: PayloadId) -> Result<PayloadInfo, StoreError> {
        if self.current.is_some() {
            return Err(StoreError::WriterMisuse("finish inside a part"));
        }
        let parts = std::mem::take(&mut self.parts);
        Ok(PayloadInfo {
            id,
            size: parts.iter().map(|part| part.len).sum(),
            parts,
        })
    }

    /// The buffer as the next chunk of the current part, counted in the part.
    fn take_chunk(&mut self) -> Result<Chunk, StoreError> {
        let part = u32::try_from(self.parts.len())
            .map_err(|_| StoreError::WriterMisuse("too many parts"))?;
        let current = self
            .current
            .as_mut()
            .ok_or(StoreError::WriterMisuse("write outside a part"))?;
        let bytes = std::mem::take(&mut self.buffer);
        let index = current.chunks;
        current.len += bytes.len() as u64;
        current.chunks = index
            .checked_add(1)
            .ok_or(StoreError::WriterMisuse("part too large"))?;
        Ok(Chunk { part, index, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_cut_into_whole_chunks_and_a_short_last_one() {
        let mut chunker = Chunker::default();
        chunker.start_part(b"A: 1\r\n".to_vec()).unwrap();
        let data = vec![7_u8; CHUNK_SIZE + 10];
        let mut rest = &data[..];
        let mut chunks = Vec::new();
        while !rest.is_empty() {
            let (taken, full) = chunker.fill(rest).unwrap();
            rest = &rest[taken..];
            chunks.extend(full);
        }
        chunks.extend(chunker.end_part().unwrap());
        chunker.start_part(Vec::new()).unwrap();
        assert!(
            chunker.end_part().unwrap().is_none(),
            "an empty part has no chunk"
        );
        let info = chunker.finish(PayloadId(uuid::Uuid::nil())).unwrap();
        let shape: Vec<_> = chunks
            .iter()
            .map(|c| (c.part, c.index, c.bytes.len()))
            .collect();
        assert_eq!(shape, [(0, 0, CHUNK_SIZE), (0, 1, 10)]);
        assert_eq!(info.size, CHUNK_SIZE as u64 + 10);
        assert_eq!((info.parts[0].chunks, info.parts[1].chunks), (2, 0));
    }

    #[test]
    fn misuse_is_refused() {
        let mut chunker = Chunker::default();
        assert!(chunker.fill(b"x").is_err());
        assert!(chunker.end_part().is_err());
        chunker.start_part(Vec::new()).unwrap();
        assert!(chunker.start_part(Vec::new()).is_err());
        assert!(chunker.finish(PayloadId(uuid::Uuid::nil())).is_err());
    }
}
