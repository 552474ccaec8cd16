//! What a log record says: a batch of writes, or a reservation of ids.
//!
//! `1 | count: u32 | (1 | klen: u32 | key | vlen: u32 | value  or  2 | klen: u32 | key)*`
//! for a batch, `2 | ceiling: u64` for ids, little-endian. Every write is absolute (a value
//! or a removal, never a change relative to what was there), so replaying a record twice,
//! or over an index that already has part of it, gives the same result.

use std::ops::Range;

use crate::store::kv::{Batch, Op};

const BATCH: u8 = 1;
const IDS: u8 = 2;
const PUT: u8 = 1;
const DELETE: u8 = 2;

/// A decoded record, borrowing from its body.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Entry<'a> {
    /// Writes applied together: each key with where its value is in the body, or `None`
    /// for a removal.
    Batch(Vec<(&'a [u8], Option<Range<usize>>)>),
    /// Every id up to this one may have been handed out.
    Ids(u64),
}

/// Writes `batch` as a record body at the end of `out`; returns, for each write, where
/// its value starts, counted from the start of the body (`None` for a removal).
pub(super) fn encode_batch(batch: &Batch, out: &mut Vec<u8>) -> Vec<Option<usize>> {
    let base = out.len();
    let mut starts = Vec::with_capacity(batch.ops.len());
    out.push(BATCH);
    out.extend_from_slice(&(batch.ops.len() as u32).to_le_bytes());
    for op in &batch.ops {
        match op {
            Op::Put(key, value) => {
                out.push(PUT);
                put_bytes(out, key);
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                starts.push(Some(out.len() - base));
                out.extend_from_slice(value);
            }
            Op::Delete(key) => {
                out.push(DELETE);
                put_bytes(out, key);
                starts.push(None);
            }
        }
    }
    starts
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
pub(super) fn decode(body: &[u8]) -> Result<Entry<'_>, String> {
    let mut reader = Reader { body, at: 0 };
    let entry = match reader.byte()? {
        BATCH => {
            let count = reader.u32()? as usize;
            // Each op takes at least 5 bytes: do not trust `count` for the allocation.
            let mut writes = Vec::with_capacity(count.min(reader.left() / 5));
            for _ in 0..count {
                match reader.byte()? {
                    PUT => {
                        let key = reader.bytes()?;
                        let value = reader.range()?;
                        writes.push((key, Some(value)));
                    }
                    DELETE => writes.push((reader.bytes()?, None)),
                    other => return Err(format!("unknown write kind {other}")),
                }
            }
            Entry::Batch(writes)
        }
        IDS => Entry::Ids(reader.u64()?),
        other => return Err(format!("unknown record kind {other}")),
    };
    if reader.left() > 0 {
        return Err(format!("{} bytes after the record", reader.left()));
    }
    Ok(entry)
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.body.len() - self.at
    }

    fn range(&mut self) -> Result<Range<usize>, String> {
        let len = self.u32()? as usize;
        if self.left() < len {
            return Err("record ends early".into());
        }
        self.at += len;
        Ok(self.at - len..self.at)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.left() < n {
            return Err("record ends early".into());
        }
        self.at += n;
        Ok(&self.body[self.at - n..self.at])
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

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        self.take(len)
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
        let mut body = vec![9; 5];
        let starts = encode_batch(&batch, &mut body);
        let body = body.split_off(5);
        assert_eq!(starts, [Some(17), None, Some(334)]);
        let Ok(Entry::Batch(writes)) = decode(&body) else {
            panic!("not a batch");
        };
        let read_back: Vec<_> = writes
            .iter()
            .map(|(key, value)| (key.to_vec(), value.clone().map(|v| body[v].to_vec())))
            .collect();
        assert_eq!(
            read_back,
            [
                (b"m/1".to_vec(), Some(vec![7; 300])),
                (b"u/2".to_vec(), None),
                (Vec::new(), Some(Vec::new()))
            ]
        );
        assert_eq!(writes[0].1.as_ref().map(|r| r.start), starts[0]);
        let mut body = Vec::new();
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
