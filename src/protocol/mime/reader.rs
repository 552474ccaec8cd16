//! The push parser: bytes in as they arrive from the socket, events out, memory bounded by
//! one pushed chunk plus a boundary-length tail (and by the limits while a header block or
//! the label is being collected).
//!
//! Delimiters are found with one `memchr::memmem` search for `\n--boundary`; part bytes are
//! handed out as slices of the internal buffer, never copied again.

use std::ops::Range;

use super::Limits;
use super::decode::TransferDecoder;
use super::headers::{PartHeaders, TransferEncoding};
use super::scan::{Blank, Class, Delimiter, Scan, classify, find_blank_line};
use crate::protocol::ProtocolError;

/// Most blanks accepted between a boundary and its line break (RFC 2046 transport padding).
const MAX_PADDING: usize = 1024;

/// What the reader found next. Data parts are reported as a start, any number of raw data
/// chunks and an end, so that the broker can stream each part to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The first part, read whole (up to `max_label_bytes` on the wire) with its transfer
    /// encoding removed: the broker parses it before deciding anything.
    Label {
        /// The label part's header block.
        headers: PartHeaders,
        /// The label XML.
        body: Vec<u8>,
    },
    /// A data part begins.
    PartStart {
        /// 0-based position among the data parts (the label is not counted).
        index: usize,
        /// The part's header block, raw bytes kept for re-emission.
        headers: PartHeaders,
    },
    /// The next raw bytes of the current data part, still transfer-encoded, borrowed from
    /// the reader's buffer until the next call.
    PartData(&'a [u8]),
    /// The current data part ended at a boundary.
    PartEnd,
    /// The closing boundary was seen; the epilogue is ignored. Returned again on every call.
    End,
    /// Everything pushed so far is used: push more, or finish.
    NeedMore,
}

/// A sans-IO streaming reader for an SHS message body (spec §3.1, §4.1). The caller pushes
/// each chunk it reads and then calls [`MessageReader::next_event`] until
/// [`Event::NeedMore`]; after the last chunk it calls [`MessageReader::finish`], and a
/// message that stops early becomes an error rather than a short read.
pub struct MessageReader {
    limits: Limits,
    buf: Vec<u8>,
    /// Start of the bytes of `buf` not yet used.
    pos: usize,
    finished: bool,
    state: State,
    delimiter: Option<Delimiter>,
    message_headers: Option<PartHeaders>,
    /// Data parts started so far.
    data_parts: usize,
}

impl MessageReader {
    /// `http_content_type` is the HTTP Content-Type header. Two body forms (spec §3.1): a
    /// `multipart/*` header with `boundary=` means the body is a bare multipart body;
    /// `message/rfc822`, `multipart/*` without boundary, any other type or `None` mean the
    /// body starts with its own MIME header block (MIME-Version, a folded Content-Type with
    /// the boundary, maybe Subject), which gives the boundary.
    pub fn new(http_content_type: Option<&str>, limits: Limits) -> Result<Self, ProtocolError> {
        let mut reader = MessageReader {
            limits,
            buf: Vec::new(),
            pos: 0,
            finished: false,
            state: State::MessageHeaders { scanned: 0 },
            delimiter: None,
            message_headers: None,
            data_parts: 0,
        };
        if let Some(value) = http_content_type {
            let ct = super::ContentType::parse(value)?;
            if ct.media_type.starts_with("multipart/")
                && let Some(boundary) = ct.param("boundary")
            {
                reader.delimiter = Some(Delimiter::new(boundary.as_bytes())?);
                reader.state = State::Preamble { line_start: true };
            }
        }
        Ok(reader)
    }

    /// Appends the next chunk of the body. Drain [`MessageReader::next_event`] until
    /// [`Event::NeedMore`] first, or the buffer keeps what was not used yet. Input after
    /// [`MessageReader::finish`], after the end or after an error is ignored.
    pub fn push(&mut self, input: &[u8]) {
        if self.finished || matches!(self.state, State::Closed | State::Failed(_)) {
            return;
        }
        if self.pos > 0 {
            // What is left is a boundary-length tail (or a partial header block): cheap.
            self.buf.drain(..self.pos.min(self.buf.len()));
            self.pos = 0;
        }
        self.buf.extend_from_slice(input);
    }

    /// Marks the end of the input: from now on a message that is not complete is an error.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next event. An error is final: every later call returns it again.
    pub fn next_event(&mut self) -> Result<Event<'_>, ProtocolError> {
        let step = match self.step() {
            Ok(step) => step,
            Err(err) => {
                self.state = State::Failed(err.clone());
                self.buf = Vec::new();
                self.pos = 0;
                return Err(err);
            }
        };
        Ok(match step {
            Step::Label { headers, body } => Event::Label { headers, body },
            Step::PartStart { index, headers } => Event::PartStart { index, headers },
            Step::Data(range) => Event::PartData(self.buf.get(range).unwrap_or_default()),
            Step::PartEnd => Event::PartEnd,
            Step::End => Event::End,
            Step::NeedMore => Event::NeedMore,
        })
    }

    /// The multipart boundary (without the leading `--`), once known, so that a stored
    /// message can be re-emitted with it.
    pub fn boundary(&self) -> Option<&[u8]> {
        self.delimiter.as_ref().map(Delimiter::boundary)
    }

    /// The body's own header block, in the second body form (`message/rfc822`).
    pub fn message_headers(&self) -> Option<&PartHeaders> {
        self.message_headers.as_ref()
    }

    /// Bytes held in the internal buffer, for the memory-bound tests.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn avail(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn delimiter(&self) -> Result<&Delimiter, ProtocolError> {
        self.delimiter
            .as_ref()
            .ok_or_else(|| ProtocolError::mime("multipart boundary not known"))
    }

    fn step(&mut self) -> Result<Step, ProtocolError> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Closed);
            let (next, progress) = match state {
                State::Failed(err) => return Err(err),
                State::Closed => (State::Closed, Progress::Emit(Step::End)),
                State::MessageHeaders { scanned } => self.message_header_block(scanned)?,
                State::Preamble { line_start } => self.preamble(line_start)?,
                State::DelimiterLine { ended } => self.delimiter_line(ended)?,
                State::LabelHeaders { scanned } => self.label_header_block(scanned)?,
                State::Label {
                    headers,
                    encoding,
                    raw,
                    skip,
                } => self.label_body(headers, encoding, raw, skip)?,
                State::PartHeaders { scanned } => self.part_header_block(scanned)?,
                State::Data { skip } => self.data_body(skip)?,
            };
            self.state = next;
            match progress {
                Progress::Emit(step) => return Ok(step),
                Progress::Continue => {}
                Progress::Starved if self.finished => {
                    return Err(ProtocolError::mime(self.eof_reason()));
                }
                Progress::Starved => return Ok(Step::NeedMore),
            }
        }
    }

    fn message_header_block(&mut self, scanned: usize) -> Result<(State, Progress), ProtocolError> {
        let headers = match self.header_block(scanned, "message header")? {
            HeaderBlock::Incomplete(scanned) => {
                return Ok((State::MessageHeaders { scanned }, Progress::Starved));
            }
            HeaderBlock::Complete(headers) => headers,
        };
        let ct = headers.content_type().ok_or_else(|| {
            ProtocolError::mime("the message header block has no valid Content-Type")
        })?;
        if !ct.media_type.starts_with("multipart/") {
            return Err(ProtocolError::mime(format!(
                "the message is {}, not multipart",
                ct.media_type
            )));
        }
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| ProtocolError::mime("multipart Content-Type without a boundary"))?;
        self.delimiter = Some(Delimiter::new(boundary.as_bytes())?);
        self.message_headers = Some(headers);
        // The blank line's LF is still in the buffer: a delimiter may start with it.
        Ok((State::Preamble { line_start: false }, Progress::Continue))
    }

    fn preamble(&mut self, line_start: bool) -> Result<(State, Progress), ProtocolError> {
        let delimiter = self.delimiter()?;
        let hay = self.avail();
        let dash_boundary = delimiter.pattern.get(1..).unwrap_or_default();
        // The bare form may start with `--boundary` without a line break before it.
        let at_start = if !line_start {
            None
        } else if hay.len() < dash_boundary.len() {
            dash_boundary.starts_with(hay).then_some(Class::Undecided)
        } else if hay.starts_with(dash_boundary) {
            Some(classify(hay.get(dash_boundary.len()..).unwrap_or_default()))
        } else {
            None
        };
        let (used, found) = match at_start {
            Some(Class::Delimiter) => (dash_boundary.len(), true),
            Some(Class::Undecided) => (0, false),
            Some(Class::NotDelimiter) | None => match delimiter.scan(hay, 0) {
                Scan::Found { after, .. } => (after, true),
                Scan::NotFound { hold } => (hold, false),
            },
        };
        self.pos += used;
        Ok(if found {
            let ended = Ended::Preamble;
            (State::DelimiterLine { ended }, Progress::Continue)
        } else {
            let line_start = line_start && used == 0;
            (State::Preamble { line_start }, Progress::Starved)
        })
    }

    /// After `--boundary`: either `--` (the close delimiter), or transport padding and the
    /// line break. Then the part the delimiter ended is reported.
    fn delimiter_line(&mut self, ended: Ended) -> Result<(State, Progress), ProtocolError> {
        let hay = self.avail();
        let close = hay.starts_with(b"--");
        if close {
            // The epilogue is ignored, and nothing borrows the buffer any more.
            self.buf = Vec::new();
            self.pos = 0;
        } else {
            let blanks = hay
                .iter()
                .take(MAX_PADDING + 1)
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            if blanks > MAX_PADDING {
                return Err(ProtocolError::mime("too much padding after a boundary"));
            }
            let used = match hay.get(blanks..).unwrap_or_default() {
                [b'\n', ..] => blanks + 1,
                [b'\r', b'\n', ..] => blanks + 2,
                [] | [b'\r'] | [b'-'] => {
                    return Ok((State::DelimiterLine { ended }, Progress::Starved));
                }
                _ => return Err(ProtocolError::mime("unexpected text after a boundary")),
            };
            self.pos += used;
        }
        let next = if close {
            State::Closed
        } else {
            State::PartHeaders { scanned: 0 }
        };
        match ended {
            Ended::Preamble if close => Err(ProtocolError::mime("the message has no parts")),
            Ended::Preamble => Ok((State::LabelHeaders { scanned: 0 }, Progress::Continue)),
            Ended::Label {
                headers,
                encoding,
                raw,
            } => {
                let body = decode_label(encoding, raw)?;
                Ok((next, Progress::Emit(Step::Label { headers, body })))
            }
            Ended::Data => Ok((next, Progress::Emit(Step::PartEnd))),
        }
    }

    fn label_header_block(&mut self, scanned: usize) -> Result<(State, Progress), ProtocolError> {
        let headers = match self.header_block(scanned, "part header")? {
            HeaderBlock::Incomplete(scanned) => {
                return Ok((State::LabelHeaders { scanned }, Progress::Starved));
            }
            HeaderBlock::Complete(headers) => headers,
        };
        match headers.content_type() {
            Some(ct) if ct.is_xml() => {}
            Some(ct) => {
                return Err(ProtocolError::mime(format!(
                    "the first part is {}, not the XML label",
                    ct.media_type
                )));
            }
            None => {
                return Err(ProtocolError::mime(
                    "the first part has no valid Content-Type; the label must be text/xml",
                ));
            }
        }
        let encoding = headers.transfer_encoding()?;
        let label = State::Label {
            headers,
            encoding,
            raw: Vec::new(),
            skip: 1,
        };
        Ok((label, Progress::Continue))
    }

    fn label_body(
        &mut self,
        headers: PartHeaders,
        encoding: TransferEncoding,
        mut raw: Vec<u8>,
        skip: usize,
    ) -> Result<(State, Progress), ProtocolError> {
        let body = self.body_content(skip)?;
        let bytes = self.buf.get(body.content).unwrap_or_default();
        let limit = self.limits.max_label_bytes;
        if raw.len().saturating_add(bytes.len()) > limit {
            return Err(ProtocolError::TooLarge {
                what: "label",
                limit: u64::try_from(limit).unwrap_or(u64::MAX),
            });
        }
        raw.extend_from_slice(bytes);
        Ok(if body.found {
            let ended = Ended::Label {
                headers,
                encoding,
                raw,
            };
            (State::DelimiterLine { ended }, Progress::Continue)
        } else {
            let label = State::Label {
                headers,
                encoding,
                raw,
                skip: body.skip,
            };
            (label, Progress::Starved)
        })
    }

    fn part_header_block(&mut self, scanned: usize) -> Result<(State, Progress), ProtocolError> {
        if self.data_parts >= self.limits.max_parts {
            return Err(ProtocolError::mime(format!(
                "more than {} data parts",
                self.limits.max_parts
            )));
        }
        let headers = match self.header_block(scanned, "part header")? {
            HeaderBlock::Incomplete(scanned) => {
                return Ok((State::PartHeaders { scanned }, Progress::Starved));
            }
            HeaderBlock::Complete(headers) => headers,
        };
        headers.transfer_encoding()?;
        let index = self.data_parts;
        self.data_parts += 1;
        let start = Step::PartStart { index, headers };
        Ok((State::Data { skip: 1 }, Progress::Emit(start)))
    }

    fn data_body(&mut self, skip: usize) -> Result<(State, Progress), ProtocolError> {
        let body = self.body_content(skip)?;
        let (next, idle) = if body.found {
            let ended = Ended::Data;
            (State::DelimiterLine { ended }, Progress::Continue)
        } else {
            (State::Data { skip: body.skip }, Progress::Starved)
        };
        if body.content.is_empty() {
            Ok((next, idle))
        } else {
            Ok((next, Progress::Emit(Step::Data(body.content))))
        }
    }

    /// Scans the body of the current part from `pos` and consumes what it can: the content
    /// that is certainly not part of a delimiter and, if one was found, the delimiter up to
    /// the end of `--boundary`. `skip` is 1 while the LF of the blank line after the part's
    /// header block is still in the buffer: it is not content, but it is the line break of
    /// the next delimiter when the part is empty.
    fn body_content(&mut self, skip: usize) -> Result<Body, ProtocolError> {
        let scan = self.delimiter()?.scan(self.avail(), skip);
        let start = self.pos + skip;
        Ok(match scan {
            Scan::Found { content_end, after } => {
                let end = self.pos + content_end.max(skip);
                self.pos += after;
                Body {
                    content: start..end,
                    found: true,
                    skip: 0,
                }
            }
            Scan::NotFound { hold } if hold >= skip => {
                let end = self.pos + hold;
                self.pos = end;
                Body {
                    content: start..end,
                    found: false,
                    skip: 0,
                }
            }
            // Everything is held back, the blank line's LF included.
            Scan::NotFound { .. } => Body {
                content: start..start,
                found: false,
                skip,
            },
        })
    }

    fn header_block(
        &mut self,
        scanned: usize,
        what: &'static str,
    ) -> Result<HeaderBlock, ProtocolError> {
        let limit = self.limits.max_header_bytes;
        let too_large = || ProtocolError::TooLarge {
            what,
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
        };
        let hay = self.avail();
        match find_blank_line(hay, scanned) {
            Blank::Found { end, newline } => {
                if end > limit {
                    return Err(too_large());
                }
                let headers = PartHeaders::parse(hay.get(..end).unwrap_or_default())?;
                // The blank line's LF stays: it may be the line break of the next delimiter.
                self.pos += newline;
                Ok(HeaderBlock::Complete(headers))
            }
            Blank::Missing { scanned } => {
                if hay.len() > limit.saturating_add(2) {
                    return Err(too_large());
                }
                Ok(HeaderBlock::Incomplete(scanned))
            }
        }
    }

    fn eof_reason(&self) -> String {
        match &self.state {
            State::MessageHeaders { .. } => "input ended inside the message header block".into(),
            State::Preamble { .. } => "input ended before the first boundary".into(),
            State::DelimiterLine { .. } => "input ended inside a boundary line".into(),
            State::LabelHeaders { .. } => "input ended inside the label's header block".into(),
            State::Label { .. } => {
                "input ended inside the label part (no boundary after it)".into()
            }
            State::PartHeaders { .. } => format!(
                "input ended inside the header block of data part {}",
                self.data_parts + 1
            ),
            State::Data { .. } => format!(
                "input ended inside data part {} (no closing boundary)",
                self.data_parts
            ),
            State::Closed | State::Failed(_) => "input ended".into(),
        }
    }
}

impl std::fmt::Debug for MessageReader {
    /// A summary: the buffer may hold a whole chunk or label, which has no place in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("state", &self.state.name())
            .field("boundary", &self.boundary().map(String::from_utf8_lossy))
            .field("buffered", &self.avail().len())
            .field("data_parts", &self.data_parts)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

fn decode_label(encoding: TransferEncoding, raw: Vec<u8>) -> Result<Vec<u8>, ProtocolError> {
    if encoding.is_identity() {
        return Ok(raw);
    }
    let mut decoder = TransferDecoder::new(encoding);
    let mut xml = Vec::with_capacity(raw.len());
    decoder.decode(&raw, &mut xml)?;
    decoder.finish(&mut xml)?;
    Ok(xml)
}

enum State {
    /// Second body form: reading the body's own header block.
    MessageHeaders {
        scanned: usize,
    },
    /// Before the first delimiter; `line_start` while nothing was skipped in the bare form.
    Preamble {
        line_start: bool,
    },
    /// Just after `--boundary`.
    DelimiterLine {
        ended: Ended,
    },
    LabelHeaders {
        scanned: usize,
    },
    Label {
        headers: PartHeaders,
        encoding: TransferEncoding,
        raw: Vec<u8>,
        skip: usize,
    },
    PartHeaders {
        scanned: usize,
    },
    Data {
        skip: usize,
    },
    Closed,
    Failed(ProtocolError),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::MessageHeaders { .. } => "message headers",
            State::Preamble { .. } => "preamble",
            State::DelimiterLine { .. } => "boundary line",
            State::LabelHeaders { .. } => "label headers",
            State::Label { .. } => "label",
            State::PartHeaders { .. } => "part headers",
            State::Data { .. } => "part data",
            State::Closed => "closed",
            State::Failed(_) => "failed",
        }
    }
}

/// What a delimiter ends.
enum Ended {
    Preamble,
    Label {
        headers: PartHeaders,
        encoding: TransferEncoding,
        raw: Vec<u8>,
    },
    Data,
}

/// An [`Event`] before it borrows the buffer.
enum Step {
    Label { headers: PartHeaders, body: Vec<u8> },
    PartStart { index: usize, headers: PartHeaders },
    Data(Range<usize>),
    PartEnd,
    End,
    NeedMore,
}

enum Progress {
    Emit(Step),
    /// The state changed without anything to report: go on.
    Continue,
    /// More input is needed.
    Starved,
}

struct Body {
    content: Range<usize>,
    found: bool,
    skip: usize,
}

enum HeaderBlock {
    Complete(PartHeaders),
    Incomplete(usize),
}
