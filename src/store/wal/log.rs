//! The log's files: append-only segments of checksummed records, written through a
//! buffer and made durable by `fdatasync`.
//!
//! A segment is `<dir>/<first lsn, 16 hex digits>.wal`. A record is
//! `len: u32 | crc32(lsn ‖ body): u32 | lsn: u64 | body`, little-endian, and log sequence
//! numbers (LSNs) run without gaps across segments. Only the newest segment can end in a
//! torn record: a segment is synced whole, and the directory entry of the next one synced,
//! before anything is written to the next one. So reading stops quietly at a torn tail of
//! the newest segment (those writes were never synced, so never acknowledged) and
//! refuses anything else that does not check out.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of a record's header.
const HEADER: usize = 16;
/// No record is larger: a batch is at most a payload chunk or a handful of records.
pub(super) const MAX_BODY: usize = 256 * 1024 * 1024;
/// Buffered bytes written out without waiting for a sync.
const WRITE_OUT_AT: usize = 256 * 1024;

/// The appending end of the log. Not synchronised: the engine holds it under its lock, so
/// that the order of records is the order in which batches became visible.
pub(super) struct Appender {
    dir: PathBuf,
    segment_bytes: u64,
    file: Arc<File>,
    /// Bytes in the current segment, written and buffered.
    segment_len: u64,
    /// Bytes of the current segment handed to the kernel.
    written: u64,
    buffer: Vec<u8>,
    /// Set when the log can take no more writes, with the reason.
    broken: Option<String>,
    /// How far the log is in the files, for readers that do not take the log's lock.
    position: Arc<WrittenPosition>,
    /// The LSN the next record gets.
    next_lsn: u64,
    /// The first LSN of every segment on disk, oldest first; the last is being written.
    segments: Vec<u64>,
}

impl Appender {
    /// Continues the log in `dir` after `last_lsn` in a new segment, so that a segment
    /// that was cut short by a crash is never appended to.
    pub(super) fn start(
        dir: &Path,
        segment_bytes: u64,
        mut segments: Vec<u64>,
        last_lsn: u64,
    ) -> io::Result<Self> {
        let next_lsn = last_lsn + 1;
        let file = create_segment(dir, next_lsn)?;
        segments.retain(|&first| first < next_lsn);
        segments.push(next_lsn);
        Ok(Appender {
            dir: dir.to_path_buf(),
            segment_bytes,
            file: Arc::new(file),
            segment_len: 0,
            written: 0,
            buffer: Vec::with_capacity(WRITE_OUT_AT * 2),
            broken: None,
            position: Arc::new(WrittenPosition {
                written: AtomicU64::new(0),
                segment: AtomicU64::new(next_lsn),
            }),
            next_lsn,
            segments,
        })
    }

    /// The LSN of the last record appended.
    pub(super) fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// Appends one record whose body `write_body` writes at the end of the buffer it is
    /// given, and returns where the record went with what `write_body` returned. Rolls to
    /// a new segment first when the current one is full (which costs a sync).
    pub(super) fn append<T>(
        &mut self,
        write_body: impl FnOnce(&mut Vec<u8>) -> T,
    ) -> io::Result<(Appended, T)> {
        if self.segment_len >= self.segment_bytes {
            self.roll()?;
        }
        let lsn = self.next_lsn;
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; HEADER]);
        let made = write_body(&mut self.buffer);
        let body_len = self.buffer.len() - start - HEADER;
        if body_len > MAX_BODY {
            self.buffer.truncate(start);
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                format!("a log record of {body_len} bytes is over the limit"),
            ));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&lsn.to_le_bytes());
        crc.update(&self.buffer[start + HEADER..]);
        let header = &mut self.buffer[start..start + HEADER];
        header[0..4].copy_from_slice(&(body_len as u32).to_le_bytes());
        header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        header[8..16].copy_from_slice(&lsn.to_le_bytes());
        if self.buffer.len() >= WRITE_OUT_AT
            && let Err(err) = self.write_out()
        {
            // Not appended after all: the caller's batch fails whole.
            self.buffer.truncate(start);
            return Err(err);
        }
        let appended = Appended {
            segment: self.current_segment(),
            body_offset: self.segment_len + HEADER as u64,
        };
        self.segment_len += (HEADER + body_len) as u64;
        self.next_lsn += 1;
        Ok((appended, made))
    }

    /// Where the log is in its files, shared with readers.
    pub(super) fn position(&self) -> Arc<WrittenPosition> {
        Arc::clone(&self.position)
    }

    /// The first LSN of the segment being written.
    fn current_segment(&self) -> u64 {
        self.segments.last().copied().unwrap_or(self.next_lsn)
    }

    /// Copies `len` bytes at `offset` of `segment` if they are still in the buffer (not
    /// yet handed to the kernel); `None` if they are in the file.
    pub(super) fn read_buffered(&self, segment: u64, offset: u64, len: usize) -> Option<Vec<u8>> {
        if segment != self.current_segment() || offset < self.written {
            return None;
        }
        let start = usize::try_from(offset - self.written).ok()?;
        self.buffer
            .get(start..start.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }

    /// Hands the buffered records to the kernel, and returns the file to sync: every
    /// record appended so far is durable once `sync_data` on it returns. A failed write
    /// (a full disk) is taken back, so that the file still ends on a record boundary and
    /// a later attempt can succeed; if even that fails, the log takes no more writes.
    pub(super) fn write_out(&mut self) -> io::Result<Arc<File>> {
        if let Some(reason) = &self.broken {
            return Err(io::Error::other(reason.clone()));
        }
        if !self.buffer.is_empty() {
            if let Err(err) = self.file.write_all_at(&self.buffer, self.written) {
                if let Err(undo) = self.file.set_len(self.written) {
                    self.broken = Some(format!(
                        "write-ahead log unusable after a failed write ({err}) could not be \
                         taken back: {undo}"
                    ));
                }
                return Err(err);
            }
            self.written += self.buffer.len() as u64;
            self.buffer.clear();
            self.position.written.store(self.written, Ordering::Release);
        }
        Ok(Arc::clone(&self.file))
    }

    /// Ends the current segment durably and starts the next. A failed sync leaves the
    /// log unusable: after it the kernel may have dropped the pages ("fsyncgate").
    fn roll(&mut self) -> io::Result<()> {
        let file = self.write_out()?;
        if let Err(err) = file.sync_data() {
            self.broken = Some(format!("write-ahead log sync failed: {err}"));
            return Err(err);
        }
        let file = create_segment(&self.dir, self.next_lsn)?;
        self.file = Arc::new(file);
        self.segments.push(self.next_lsn);
        self.segment_len = 0;
        self.written = 0;
        // In this order: a reader that sees the new segment sees its own byte count.
        self.position.written.store(0, Ordering::Release);
        self.position
            .segment
            .store(self.next_lsn, Ordering::Release);
        Ok(())
    }

    /// The segments that hold only records up to `lsn` (all in the durable index), which
    /// may go once no stored value points into them. Never the current segment.
    pub(super) fn replayed_segments(&self, lsn: u64) -> Vec<u64> {
        self.segments
            .windows(2)
            .filter(|pair| pair[1] <= lsn + 1)
            .map(|pair| pair[0])
            .collect()
    }

    /// Removes these segment files (never the current one).
    pub(super) fn remove_segments(&mut self, firsts: &[u64]) -> io::Result<usize> {
        let current = self.current_segment();
        let mut removed = 0;
        for &first in firsts.iter().filter(|&&first| first != current) {
            match std::fs::remove_file(segment_path(&self.dir, first)) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            self.segments.retain(|&kept| kept != first);
        }
        Ok(removed)
    }

    /// Number of segment files.
    pub(super) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// How far the log has been handed to the kernel: the segment being written and its bytes
/// written so far. Lets a reader through a pointer skip the log's lock when the bytes are
/// certainly in a file (the common case): every older segment was written whole before the
/// next one began.
#[derive(Debug)]
pub(super) struct WrittenPosition {
    written: AtomicU64,
    segment: AtomicU64,
}

impl WrittenPosition {
    /// True if `len` bytes at `offset` of `segment` are certainly in the file.
    pub(super) fn has(&self, segment: u64, offset: u64, len: u64) -> bool {
        let current = self.segment.load(Ordering::Acquire);
        let written = self.written.load(Ordering::Acquire);
        segment < current || (segment == current && offset.saturating_add(len) <= written)
    }
}

/// Where a record went.
#[derive(Debug, Clone, Copy)]
pub(super) struct Appended {
    /// Its segment, by first LSN.
    pub(super) segment: u64,
    /// Where its body starts in the segment file.
    pub(super) body_offset: u64,
}

/// Opens a segment for reading values out of it.
pub(super) fn open_segment(dir: &Path, first: u64) -> io::Result<File> {
    File::open(segment_path(dir, first))
}

/// The path of the segment whose first record is `first`.
fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:016x}.wal"))
}

/// Creates an empty segment and makes its directory entry durable.
fn create_segment(dir: &Path, first: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(segment_path(dir, first))?;
    file.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// The first LSNs of the segments in `dir`, oldest first (the directory is created if
/// missing).
pub(super) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    std::fs::create_dir_all(dir)?;
    let mut firsts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(first) = u64::from_str_radix(hex, 16) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Why a log cannot be read back.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("write-ahead log {path}: {reason}")]
    Corrupt { path: String, reason: String },
}

/// Reads every record after `after` in LSN order and hands it to `replay` with where it
/// is (segment and body offset); returns the last LSN seen (`after` if none). A torn tail
/// of the newest segment after `after` is cut off (and the cut synced), since no sync ever
/// covered it; any other damage, or a gap in the LSNs after `after`, is an error.
pub(super) fn read_after(
    dir: &Path,
    segments: &[u64],
    after: u64,
    mut replay: impl FnMut(Appended, &[u8]) -> Result<(), String>,
) -> Result<u64, ReadError> {
    let mut last = after;
    for (index, &first) in segments.iter().enumerate() {
        let newest = index + 1 == segments.len();
        if segments
            .get(index + 1)
            .is_some_and(|&next| next <= after + 1)
        {
            continue; // wholly in the index already
        }
        let path = segment_path(dir, first);
        let corrupt = |reason: String| ReadError::Corrupt {
            path: path.display().to_string(),
            reason,
        };
        let mut reader = SegmentReader::open(&path)?;
        let mut expected = first;
        loop {
            let body_offset = reader.offset + HEADER as u64;
            let record = match reader.next_record()? {
                Next::Record(lsn, body) => (lsn, body),
                Next::End => break,
                // Only records after the index's mark can be unsynced: the log is synced
                // before a checkpoint puts the mark.
                Next::Torn(offset, reason) if newest && expected > after => {
                    truncate(&path, offset)?;
                    tracing::warn!(
                        segment = %path.display(),
                        offset,
                        reason,
                        "cut the unsynced tail off the write-ahead log"
                    );
                    break;
                }
                Next::Torn(offset, reason) => {
                    return Err(corrupt(format!(
                        "damaged record at byte {offset}: {reason}"
                    )));
                }
            };
            let (lsn, body) = record;
            if lsn != expected {
                return Err(corrupt(format!("record {lsn} where {expected} belongs")));
            }
            expected += 1;
            if lsn <= after {
                continue;
            }
            if lsn != last + 1 {
                return Err(corrupt(format!(
                    "records {} to {} are missing",
                    last + 1,
                    lsn - 1
                )));
            }
            let at = Appended {
                segment: first,
                body_offset,
            };
            replay(at, &body).map_err(|reason| corrupt(format!("record {lsn}: {reason}")))?;
            last = lsn;
        }
    }
    Ok(last)
}

/// Shortens a segment to `len` bytes, durably.
fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

enum Next {
    Record(u64, Vec<u8>),
    End,
    /// Something that is not a whole, intact record at this offset.
    Torn(u64, String),
}

struct SegmentReader {
    reader: BufReader<File>,
    offset: u64,
}

impl SegmentReader {
    fn open(path: &Path) -> io::Result<Self> {
        Ok(SegmentReader {
            reader: BufReader::with_capacity(1 << 20, File::open(path)?),
            offset: 0,
        })
    }

    fn next_record(&mut self) -> io::Result<Next> {
        let mut header = [0u8; HEADER];
        let got = read_full(&mut self.reader, &mut header)?;
        if got == 0 {
            return Ok(Next::End);
        }
        let at = self.offset;
        if got < HEADER {
            return Ok(Next::Torn(at, "short header".into()));
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let mut lsn_bytes = [0u8; 8];
        lsn_bytes.copy_from_slice(&header[8..16]);
        let lsn = u64::from_le_bytes(lsn_bytes);
        if len == 0 || len > MAX_BODY {
            return Ok(Next::Torn(at, format!("impossible length {len}")));
        }
        let mut body = vec![0u8; len];
        if read_full(&mut self.reader, &mut body)? < len {
            return Ok(Next::Torn(at, "short body".into()));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&lsn_bytes);
        hasher.update(&body);
        if hasher.finalize() != crc {
            return Ok(Next::Torn(at, "checksum mismatch".into()));
        }
        self.offset += (HEADER + len) as u64;
        Ok(Next::Record(lsn, body))
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
pub(super) fn path_of(dir: &Path, first: u64) -> PathBuf {
    segment_path(dir, first)
}
