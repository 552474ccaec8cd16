//! Intake (spec §3.1, §5.1): a message body streams in, is checked, stored durably with its
//! routing job, and only then answered with a receipt (the HTTP layer's 202).
//!
//! The label is the first MIME part, so it is parsed, validated and authorised before any
//! data part is read: a refused message costs one label, not a gigabyte of upload. Data
//! parts flow to the store chunk by chunk; on any failure the partial upload is removed.

use std::future::Future;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::clock;
use crate::metrics::{Limit, Received};
use crate::protocol::ProtocolError;
use crate::protocol::label::{
    ContentParts, History, HistorySplice, Label, TransferType, append_history_at,
};
use crate::protocol::mime::{self, Event, MessageReader};
use crate::protocol::validate::{Envelope, check_label, check_part_count};
use crate::store::{
    Acceptance, LocalId, MessageRecord, NewMessage, PayloadInfo, PayloadWriter, Retry, Route,
    RoutingJob, State,
};

use super::signatures::{PartCheck, signer_text};
use super::summary::summarize;
use super::{Broker, BrokerError, Caller};

/// The largest MIME header block of one part: generous for real headers, bounded for
/// hostile ones.
const MAX_PART_HEADER_BYTES: usize = 64 * 1024;

/// A request body, chunk by chunk: implemented by the HTTP layer over hyper, by tests over
/// byte slices.
pub trait BodySource: Send {
    /// The next chunk; `None` at the end of the body.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Bytes, BodyError>>> + Send;
}

/// Why a body could not be read to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The client went away or the connection broke.
    #[error("the request body broke off: {0}")]
    Broken(String),
    /// The client paused longer than the idle body timeout.
    #[error("the request body stalled for longer than {0} seconds")]
    IdleTimeout(u64),
}

/// The corr.id and content.id of a label, for the error document of a refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelIds {
    /// `corr.id`.
    pub corr_id: String,
    /// `content.id`.
    pub content_id: String,
}

/// A refused or failed intake, with the label's ids when the label could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeError {
    /// What went wrong.
    pub error: BrokerError,
    /// The label's ids, if it was read.
    pub ids: Option<LabelIds>,
}

/// What the sender is told on acceptance (the `X-shs-*` headers of the 202).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `tx.id`.
    pub tx_id: String,
    /// `corr.id`.
    pub corr_id: String,
    /// `content.id`.
    pub content_id: String,
    /// The node's id for the message.
    pub local_id: LocalId,
    /// When it arrived (for a duplicate: when the original arrived).
    pub arrival: DateTime<Utc>,
    /// True when the same sender sent this tx.id before and nothing new was stored.
    pub duplicate: bool,
}

/// What intake has built up while reading, so a failure can clean up after itself and
/// name the label in its error document.
#[derive(Default)]
struct Upload {
    ids: Option<LabelIds>,
    writer: Option<Box<dyn PayloadWriter>>,
}

/// A label that passed the intake checks, with its original bytes.
pub(super) struct CheckedLabel {
    pub(super) label: Label,
    pub(super) original: Vec<u8>,
    /// Where the history entry goes in `original`, found while parsing it.
    pub(super) splice: HistorySplice,
    pub(super) envelope: Envelope,
}

/// What intake answers: a receipt for a stored asynchronous message (202), or the reply
/// to a synchronous request (200).
pub enum Answer {
    /// Stored durably (or a duplicate).
    Stored(Receipt),
    /// The reply of a synchronous exchange, streaming.
    Reply(super::synch::SynchReply),
}

impl Broker {
    /// Takes in one message from `caller`. Returns once the message is durable (or was a
    /// duplicate); the HTTP layer answers 202 with the receipt.
    pub async fn intake<S: BodySource>(
        &self,
        caller: &Caller,
        content_type: Option<&str>,
        body: S,
    ) -> Result<Answer, IntakeError> {
        let mut upload = Upload::default();
        let result = self
            .intake_inner(caller, content_type, body, &mut upload)
            .await;
        self.count_intake(&result);
        if let Some(writer) = upload.writer.take() {
            // Only left here on failure: remove the partial upload.
            if let Err(err) = writer.abort().await {
                tracing::warn!(error = %err, "could not remove a partial upload; it is removed at the next start");
            }
        }
        result.map_err(|error| IntakeError {
            error,
            ids: upload.ids,
        })
    }

    async fn intake_inner<S: BodySource>(
        &self,
        caller: &Caller,
        content_type: Option<&str>,
        mut body: S,
        upload: &mut Upload,
    ) -> Result<Answer, BrokerError> {
        let limits = &self.config.limits;
        let mut reader = MessageReader::new(
            content_type,
            mime::Limits {
                max_label_bytes: limits.max_label_bytes,
                max_header_bytes: MAX_PART_HEADER_BYTES,
                max_parts: limits.max_data_parts,
            },
        )?;
        let mut checked = None;
        let mut received: u64 = 0;
        let mut parts = 0usize;
        // Signatures (spec §7) are checked against the time the message came in.
        let started = clock::now();
        let mut part_check: Option<PartCheck> = None;
        let mut signer: Option<String> = None;
        loop {
            let event = reader
                .next_event()
                .inspect_err(|err| self.count_reader_limit(err, parts))?;
            match event {
                Event::NeedMore => self.pull(&mut reader, &mut body, &mut received).await?,
                Event::Label { body: original, .. } => {
                    let (label, splice) = Label::parse_for_history(&original)?;
                    upload.ids = Some(LabelIds {
                        corr_id: label.corr_id.clone(),
                        content_id: label.content.content_id.clone(),
                    });
                    let envelope = self.check_intake(caller, &label)?;
                    let synch = label.transfer_type == TransferType::Synch;
                    let label = CheckedLabel {
                        label,
                        original,
                        splice,
                        envelope,
                    };
                    if synch {
                        // Boxed, as is inline routing below: both are off the common
                        // path and would otherwise make every intake's future larger.
                        let reply =
                            Box::pin(self.synch(label, &mut reader, &mut body, &mut received))
                                .await?;
                        return Ok(Answer::Reply(reply));
                    }
                    checked = Some(label);
                    upload.writer = Some(self.store.begin_payload().await?);
                }
                Event::PartStart { headers, .. } => {
                    parts += 1;
                    if let (Some(checks), Some(checked)) = (&self.signatures, &checked) {
                        let kind = datapart_type(&checked.label, parts - 1);
                        let product = &checked.label.product.value;
                        part_check = checks.start(product, parts - 1, kind, &headers)?;
                    }
                    writer(upload)?.start_part(headers.raw().to_vec()).await?;
                }
                Event::PartData(bytes) => {
                    if let (Some(checks), Some(check)) = (&self.signatures, part_check.as_mut()) {
                        check.feed(checks, bytes)?;
                    }
                    writer(upload)?.write(bytes).await?
                }
                Event::PartEnd => {
                    if let (Some(checks), Some(check)) = (&self.signatures, part_check.take())
                        && let Some(verified) = check.finish(checks, started)?
                        && signer.is_none()
                    {
                        signer = Some(signer_text(&verified));
                    }
                    writer(upload)?.end_part().await?
                }
                Event::End => break,
            }
        }

        let checked =
            checked.ok_or_else(|| BrokerError::Internal("message without label".to_owned()))?;
        let writer = upload
            .writer
            .take()
            .ok_or_else(|| BrokerError::Internal("message without payload".to_owned()))?;
        let payload = writer.finish().await?;
        if let Err(err) = check_part_count(&checked.label, parts) {
            self.store.discard_payload(payload.id).await?;
            return Err(err.into());
        }
        self.store_message(caller, checked, payload, signer)
            .await
            .map(Answer::Stored)
    }

    /// Feeds the reader the next chunk of the body (or its end), enforcing the message
    /// size limit and counting the limits hit.
    pub(super) async fn pull<S: BodySource>(
        &self,
        reader: &mut MessageReader,
        body: &mut S,
        received: &mut u64,
    ) -> Result<(), BrokerError> {
        let limit = self.config.limits.max_message_bytes;
        match body.next_chunk().await {
            Some(Ok(chunk)) => {
                *received = received.saturating_add(chunk.len() as u64);
                if *received > limit {
                    self.metrics.limit_hit(Limit::MessageSize);
                    return Err(ProtocolError::TooLarge {
                        what: "message",
                        limit,
                    }
                    .into());
                }
                reader.push(&chunk);
            }
            Some(Err(err)) => {
                if let BodyError::IdleTimeout(_) = err {
                    self.metrics.limit_hit(Limit::BodyIdle);
                }
                return Err(ProtocolError::mime(err.to_string()).into());
            }
            None => reader.finish(),
        }
        Ok(())
    }

    /// Counts intake's verdict: accepted, duplicate, refused (by code) or failed.
    fn count_intake(&self, result: &Result<Answer, BrokerError>) {
        let metrics = &self.metrics;
        match result {
            Ok(Answer::Stored(receipt)) if receipt.duplicate => {
                metrics.message_received(Received::Duplicate, None)
            }
            Ok(_) => metrics.message_received(Received::Accepted, None),
            Err(error) if error.status().is_server_error() => {
                metrics.message_received(Received::Failed, None)
            }
            Err(error) => metrics.message_received(Received::Refused, Some(error.code())),
        }
    }

    /// Counts the limits the MIME reader enforces (spec §12): the label's size, and the
    /// number of data parts (the reader refuses the part after the last allowed one).
    fn count_reader_limit(&self, err: &ProtocolError, parts: usize) {
        match err {
            ProtocolError::TooLarge { what: "label", .. } => {
                self.metrics.limit_hit(Limit::LabelSize)
            }
            ProtocolError::Mime(_) if parts >= self.config.limits.max_data_parts => {
                self.metrics.limit_hit(Limit::Parts)
            }
            _ => {}
        }
    }

    /// The checks that need only the label: intake rules, the caller's right to send as
    /// the sender, and what this node can take.
    fn check_intake(&self, caller: &Caller, label: &Label) -> Result<Envelope, BrokerError> {
        let envelope = check_label(label)?;
        caller.authorise_send(&envelope.sender)?;
        Ok(envelope)
    }

    /// Stores the message with its history entry and routing job, durably, then runs the
    /// job so that a local delivery is listed by the time the sender has its receipt.
    async fn store_message(
        &self,
        caller: &Caller,
        checked: CheckedLabel,
        payload: PayloadInfo,
        signer: Option<String>,
    ) -> Result<Receipt, BrokerError> {
        let CheckedLabel {
            label,
            original,
            splice,
            envelope,
        } = checked;
        let local_id = LocalId::random();
        let arrival = clock::now();
        let mut history = History::received(
            &label,
            self.config.node_id.clone(),
            local_id.0.to_string(),
            clock::shs_datetime(arrival),
        );
        if let Some(signer) = &signer {
            history.comment = Some(format!("Received; signature verified: {signer}"));
        }
        let mut message = NewMessage {
            local_id,
            sender: envelope.sender.org(),
            arrival,
            summary: summarize(&label, payload.size),
            label: append_history_at(&original, &splice, &[history])?,
            payload,
            signer,
            route: Route::Job,
        };
        message.route = self.route_at_intake(&message).await;
        let receipt = |record: &MessageRecord, duplicate| Receipt {
            tx_id: label.tx_id.clone(),
            corr_id: label.corr_id.clone(),
            content_id: label.content.content_id.clone(),
            local_id: record.local_id,
            arrival: record.arrival,
            duplicate,
        };
        match self.store.accept(message).await? {
            Acceptance::Accepted { record, job } => {
                tracing::info!(
                    shs.txid = %record.tx_id,
                    shs.corrid = %label.corr_id,
                    local_id = %record.local_id,
                    caller = %caller.org,
                    size = record.payload.size,
                    "accepted"
                );
                let answer = receipt(&record, false);
                if record.state == State::Received {
                    self.delivered_at_intake(&record).await;
                }
                if let Some(id) = job {
                    let job = RoutingJob {
                        id,
                        message: record,
                        retry: Retry::default(),
                    };
                    if let Err(err) = Box::pin(self.run_job_inline(&job)).await {
                        tracing::warn!(shs.txid = %job.message.tx_id, error = %err, "routing deferred to the router task");
                        self.nudge_router();
                    }
                }
                Ok(answer)
            }
            Acceptance::Duplicate(original) => {
                tracing::info!(shs.txid = %original.tx_id, local_id = %original.local_id, "duplicate");
                Ok(receipt(&original, true))
            }
            Acceptance::TxIdTakenByOtherSender => Err(BrokerError::Conflict(format!(
                "tx.id {} is already used by another sender",
                label.tx_id
            ))),
        }
    }
}

fn writer(upload: &mut Upload) -> Result<&mut Box<dyn PayloadWriter>, BrokerError> {
    upload
        .writer
        .as_mut()
        .ok_or_else(|| BrokerError::Internal("data part before the label".to_owned()))
}

/// The `datapartType` the label gives data part `index` (0-based), if any.
fn datapart_type(label: &Label, index: usize) -> Option<&str> {
    match &label.content.parts {
        ContentParts::Data(data) => data.get(index)?.datapart_type.as_deref(),
        ContentParts::Compound { .. } => None,
    }
}
