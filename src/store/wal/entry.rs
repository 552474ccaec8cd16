//! What a log record says: a batch of writes, or a reservation of ids.
//!
//! `1 | count: u32 | (1 | klen: u32 | key | vlen: u32 | value  or  2 | klen: u32 | key)*`
//! for a batch, `2 | ceiling: u64` for ids, little-endian. Every write is absolute (a value
//! or a removal, never a change relative to what was there), so replaying a record twice,
//! or over an index that already has part of it, gives the same result.

use crate::store::kv::{Batch, Op};

const BATCH: u8 = 1;
const IDS: u8 = 2;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// A decoded record.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry {
    /// Writes applied together.
    Batch(Batch),
    /// Every id up to this one may have been handed out.
    Ids(u64),
}

/// Writes `batch` as a record body.
pub(super) fn encode_batch(batch: &Batch, out: &mut Vec<u8>) {
    out.push(BATCH);
    out.extend_from_slice(&(batch.ops.len() as u32).to_le_bytes());
    for op in &batch.ops {
        match op {
            Op::Put(key, value) => {
                out.push(PUT);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Op::Delete(key) => {
                out.push(DELETE);
                put_bytes(out, key);
            }
        }
    }
}

/// Writes an id reservation as a record body.
pub(super) fn encode_ids(ceiling: u64, out: &mut Vec<u8>) {
    out.push(IDS);
    out.extend_from_slice(&ceiling.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a record body; the reason when it is not one this version writes.
pub(super) fn decode(body: &[u8]) -> Result<Entry, String> {
    let mut reader = Reader { rest: body };
    let entry = match reader.byte()? {
        BATCH => {
            let count = reader.u32()? as usize;
            // Each op takes at least 5 bytes: do not trust `count` for the allocation.
            let mut batch = Batch {
                ops: Vec::with_capacity(count.min(reader.rest.len() / 5)),
            };
            for _ in 0..count {
                match reader.byte()? {
                    PUT => {
                        let key = reader.bytes()?;
                        let value = reader.bytes()?;
                        batch.put(key, value);
                    }
                    DELETE => batch.delete(reader.bytes()?),
                    other => return Err(format!("unknown write kind {other}")),
                }
            }
            Entry::Batch(batch)
        }
        IDS => Entry::Ids(reader.u64()?),
        other => return Err(format!("unknown record kind {other}")),
    };
    if !reader.rest.is_empty() {
        return Err(format!("{} bytes after the record", reader.rest.len()));
    }
    Ok(entry)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.rest.len() < n {
            return Err("record ends early".into());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(bytes))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let len = self.u32()? as usize;
        Ok(self.take(len)?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_ids_read_back_as_written() {
        let mut batch = Batch::default();
        batch.put(b"m/1".to_vec(), vec![7; 300]);
        batch.delete(b"u/2".to_vec());
        batch.put(Vec::new(), Vec::new());
        let mut body = Vec::new();
        encode_batch(&batch, &mut body);
        assert_eq!(decode(&body), Ok(Entry::Batch(batch)));
        body.clear();
        encode_ids(u64::MAX - 3, &mut body);
        assert_eq!(decode(&body), Ok(Entry::Ids(u64::MAX - 3)));
    }

    #[test]
    fn damaged_bodies_are_refused_with_a_reason() {
        let mut batch = Batch::default();
        batch.put(b"k".to_vec(), b"v".to_vec());
        let mut body = Vec::new();
        encode_batch(&batch, &mut body);
        for cut in 0..body.len() {
            assert!(decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err("1 bytes after the record".into()));
        assert_eq!(decode(&[9]), Err("unknown record kind 9".into()));
        let mut bad_op = body.clone();
        bad_op[5] = 7;
        assert_eq!(decode(&bad_op), Err("unknown write kind 7".into()));
        // A huge count in a tiny body is an error, not a huge allocation.
        assert!(decode(&[BATCH, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
