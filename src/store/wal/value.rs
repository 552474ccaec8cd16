//! How a value is kept in the overlay and the index: small values in place, large ones
//! (payload chunks, message records) as a pointer to their bytes in the log, which already
//! holds them. The index then holds only keys and small values, so checkpoints move little
//! data and the index's memory does not grow with payloads (key-value separation).
//!
//! `0 | bytes` in place; `1 | segment: u64 | offset: u64 | len: u32 | crc32: u32` for a
//! pointer. The checksum is checked on every read, since a read through a pointer does
//! not go through the log record's own checksum.

/// Values of at least this many bytes stay in the log: records, chunks and the mailbox
/// index entries (about 300 bytes for a real label), while tx.id entries, jobs and markers
/// (tens of bytes) stay in place. sled's cost per write and its memory grow with the bytes
/// in its leaves: with the index entries in place, intake took about 15 % more CPU per
/// message (see `BENCHMARKS.md`); a listed entry costs a read from the log instead.
pub(super) const SEPARATE_AT: usize = 128;

const IN_PLACE: u8 = 0;
const POINTER: u8 = 1;
const POINTER_LEN: usize = 1 + 8 + 8 + 4 + 4;

/// Where a value's bytes are in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pointer {
    /// The segment, by its first LSN.
    pub(super) segment: u64,
    /// Byte offset in the segment file.
    pub(super) offset: u64,
    pub(super) len: u32,
    pub(super) crc: u32,
}

/// A value as stored, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stored<'a> {
    InPlace(&'a [u8]),
    InLog(Pointer),
}

/// The stored form of a small value.
pub(super) fn in_place(value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(1 + value.len());
    stored.push(IN_PLACE);
    stored.extend_from_slice(value);
    stored
}

/// The stored form of a pointer.
pub(super) fn in_log(pointer: Pointer) -> Vec<u8> {
    let mut stored = Vec::with_capacity(POINTER_LEN);
    stored.push(POINTER);
    stored.extend_from_slice(&pointer.segment.to_le_bytes());
    stored.extend_from_slice(&pointer.offset.to_le_bytes());
    stored.extend_from_slice(&pointer.len.to_le_bytes());
    stored.extend_from_slice(&pointer.crc.to_le_bytes());
    stored
}

/// Reads a stored value; the reason when it is neither form.
pub(super) fn decode(stored: &[u8]) -> Result<Stored<'_>, String> {
    match stored.split_first() {
        Some((&IN_PLACE, value)) => Ok(Stored::InPlace(value)),
        Some((&POINTER, rest)) if rest.len() == POINTER_LEN - 1 => {
            let u64_at = |at: usize| {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&rest[at..at + 8]);
                u64::from_le_bytes(bytes)
            };
            let u32_at = |at: usize| {
                let mut bytes = [0u8; 4];
                bytes.copy_from_slice(&rest[at..at + 4]);
                u32::from_le_bytes(bytes)
            };
            Ok(Stored::InLog(Pointer {
                segment: u64_at(0),
                offset: u64_at(8),
                len: u32_at(16),
                crc: u32_at(20),
            }))
        }
        Some((tag, _)) => Err(format!("stored value of unknown form {tag}")),
        None => Err("empty stored value".into()),
    }
}

/// The segment a stored value points into, if it does.
pub(super) fn segment_of(stored: &[u8]) -> Option<u64> {
    match decode(stored) {
        Ok(Stored::InLog(pointer)) => Some(pointer.segment),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_back() {
        let pointer = Pointer {
            segment: 42,
            offset: 1 << 40,
            len: 32768,
            crc: 0xdead_beef,
        };
        assert_eq!(decode(&in_log(pointer)), Ok(Stored::InLog(pointer)));
        assert_eq!(segment_of(&in_log(pointer)), Some(42));
        assert_eq!(decode(&in_place(b"abc")), Ok(Stored::InPlace(&b"abc"[..])));
        assert_eq!(decode(&in_place(b"")), Ok(Stored::InPlace(&b""[..])));
        assert_eq!(segment_of(&in_place(b"abc")), None);
        assert!(decode(&[]).is_err());
        assert!(decode(&[1, 2, 3]).is_err(), "a short pointer");
        assert!(decode(&[7, 0]).is_err());
    }
}
