//! Mailbox operations (spec §3.3–§3.5): list, fetch (streamed, re-fetchable until
//! acknowledged) and acknowledge (with the confirm to the sender).

use std::io;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::metrics::NoticeKind;
use crate::protocol::label::Label;
use crate::protocol::message_list::MessageList;
use crate::protocol::mime::{MessageWriter, PartHeaders, new_boundary};
use crate::protocol::urn::Address;
use crate::store::{AckOutcome, MailboxQuery, MessageRecord, State};

use super::answers::answer_at_ack;
use super::notice::{self, Notice};
use super::summary::listed;
use super::{Broker, BrokerError, Caller};

impl Broker {
    /// The `shs.message-list` of a mailbox for `query` (spec §3.3).
    pub async fn list(
        &self,
        caller: &Caller,
        mailbox: &Address,
        mut query: MailboxQuery,
    ) -> Result<MessageList, BrokerError> {
        caller.authorise_read(mailbox)?;
        if !caller.products.is_empty() {
            if query.products.is_empty() {
                query.products = caller.products.clone();
            } else {
                query
                    .products
                    .retain(|product| caller.products.contains(product));
                if query.products.is_empty() {
                    return Ok(MessageList {
                        messages: Vec::new(),
                    });
                }
            }
        }
        let summaries = self.store.list_summaries(mailbox, &query).await?;
        Ok(MessageList {
            messages: summaries.iter().map(listed).collect(),
        })
    }

    /// The message `tx_id` of `mailbox`, if the caller may fetch it: delivered and not yet
    /// acknowledged (spec §3.4).
    pub async fn fetchable(
        &self,
        caller: &Caller,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<MessageRecord, BrokerError> {
        caller.authorise_read(mailbox)?;
        let record = self
            .store
            .find_in_mailbox(mailbox, tx_id)
            .await?
            .filter(|record| caller.may_see_product(&record.summary.product));
        match record {
            Some(record) if record.state.in_mailbox() => Ok(record),
            Some(record) if record.state == State::Acknowledged => Err(BrokerError::NotFound(
                format!("message {tx_id} in {mailbox} is already acknowledged"),
            )),
            _ => Err(BrokerError::NotFound(format!(
                "no message {tx_id} in {mailbox}"
            ))),
        }
    }

    /// Streams a stored message as `message/rfc822` into `out`, chunk by chunk from the
    /// store, then marks it FETCHED. A store error mid-way is sent as an `Err`, which
    /// aborts the response so the client never takes a short body for a whole one.
    pub async fn stream_message(
        &self,
        record: MessageRecord,
        out: mpsc::Sender<io::Result<Bytes>>,
    ) {
        match self.write_message(&record, &mut Sink::Channel(&out)).await {
            Ok(true) => self.mark_fetched(&record).await,
            Ok(false) => tracing::info!(shs.txid = %record.tx_id, "fetch abandoned by the client"),
            Err(err) => {
                tracing::error!(shs.txid = %record.tx_id, error = %err, "fetch failed mid-stream");
                let _ = out
                    .send(Err(io::Error::other(
                        "the store failed while reading the message",
                    )))
                    .await;
            }
        }
    }

    /// A small stored message as `message/rfc822` in one buffer, marked FETCHED: no task
    /// and channel per fetch, the answer has a length, and a store error is an error
    /// answer instead of an aborted body. (Throughput measured the same as streaming; see
    /// `BENCHMARKS.md`.)
    pub async fn whole_message(&self, record: &MessageRecord) -> Result<Bytes, BrokerError> {
        let capacity = usize::try_from(record.payload.size)
            .unwrap_or(0)
            .saturating_add(record.label.len() + 1024);
        let mut buffer = Vec::with_capacity(capacity);
        self.write_message(record, &mut Sink::Buffer(&mut buffer))
            .await?;
        self.mark_fetched(record).await;
        Ok(buffer.into())
    }

    /// Notes a fetch: the message is FETCHED (it stays fetchable until acknowledged).
    async fn mark_fetched(&self, record: &MessageRecord) {
        self.metrics.message_fetched();
        if let Err(err) = self.store.mark_fetched(record.local_id).await {
            tracing::warn!(shs.txid = %record.tx_id, error = %err, "could not mark fetched");
        }
    }

    /// Writes the message as `message/rfc822` into `out`; `Ok(false)` when the receiver
    /// went away. Used by fetch and by push.
    pub(super) async fn write_message(
        &self,
        record: &MessageRecord,
        out: &mut Sink<'_>,
    ) -> Result<bool, BrokerError> {
        let writer = MessageWriter::new(new_boundary());
        let label_headers = PartHeaders::from_fields(&[
            ("Content-Type", "text/xml"),
            ("Content-Transfer-Encoding", "binary"),
        ]);
        let mut head = writer.message_head();
        head.extend(writer.label_part(&label_headers, &record.label));
        if !out.put(head.into()).await {
            return Ok(false);
        }
        for (index, part) in record.payload.parts.iter().enumerate() {
            let headers = PartHeaders::parse(&part.raw_headers)
                .map_err(|err| BrokerError::Internal(format!("stored part headers: {err}")))?;
            if !out.put(writer.part_head(&headers).into()).await {
                return Ok(false);
            }
            let part_index = u32::try_from(index)
                .map_err(|_| BrokerError::Internal("too many parts".to_owned()))?;
            for chunk in 0..part.chunks {
                let bytes = self
                    .store
                    .read_chunk(record.payload.id, part_index, chunk)
                    .await?
                    .ok_or_else(|| {
                        BrokerError::Internal(format!(
                            "chunk {chunk} of part {index} of {} is missing",
                            record.local_id
                        ))
                    })?;
                if !out.put(bytes).await {
                    return Ok(false);
                }
            }
        }
        Ok(out.put(writer.end().into()).await)
    }

    /// Acknowledges `tx_id` in `mailbox` (spec §3.5): idempotent; the first acknowledgement
    /// of a non-management message stores a confirm for its sender, in the same durable
    /// batch.
    pub async fn acknowledge(
        &self,
        caller: &Caller,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<(), BrokerError> {
        caller.authorise_read(mailbox)?;
        let record = self
            .store
            .find_in_mailbox(mailbox, tx_id)
            .await?
            .filter(|record| caller.may_see_product(&record.summary.product))
            .filter(|record| record.state.in_mailbox() || record.state == State::Acknowledged)
            .ok_or_else(|| BrokerError::NotFound(format!("no message {tx_id} in {mailbox}")))?;
        let confirm = if record.state == State::Acknowledged {
            None
        } else {
            let label = Label::parse(&record.label).map_err(|err| {
                BrokerError::Internal(format!(
                    "stored label of {} does not parse: {err}",
                    record.local_id
                ))
            })?;
            if self.confirm_wanted(&record, &label).await {
                notice::build(self.store.as_ref(), &self.config, &label, Notice::Confirm).await?
            } else {
                None
            }
        };
        let answer = confirm
            .as_ref()
            .and_then(|confirm| answer_at_ack(&record, confirm));
        let noted = answer.as_ref().map(|_| record.local_id);
        match self
            .store
            .acknowledge(record.local_id, confirm, answer)
            .await?
        {
            AckOutcome::Acknowledged {
                record,
                generated,
                generated_job,
            } => {
                self.metrics.message_acknowledged();
                if let Some(confirm) = &generated {
                    self.metrics.notice_generated(NoticeKind::Confirm);
                    if generated_job.is_none() {
                        // For a local sender: stored straight in its mailbox.
                        self.metrics.message_delivered();
                        if noted.is_some() {
                            tracing::info!(shs.txid = %record.tx_id, answer = %confirm.tx_id,
                                kind = "confirm", "answer noted");
                        }
                        self.correlate_ack_confirm(&record, confirm, noted).await;
                    }
                }
                tracing::info!(
                    shs.txid = %record.tx_id,
                    confirm = generated.as_ref().map(|g| g.tx_id.as_str()).unwrap_or("none"),
                    "acknowledged"
                );
                if generated_job.is_some() {
                    self.nudge_router();
                }
            }
            AckOutcome::AlreadyAcknowledged(record) => {
                tracing::debug!(shs.txid = %record.tx_id, "acknowledged again");
            }
        }
        Ok(())
    }
}

/// Where [`Broker::write_message`] puts the pieces of a message.
pub(super) enum Sink<'a> {
    /// A streamed response or push request body.
    Channel(&'a mpsc::Sender<io::Result<Bytes>>),
    /// One buffer, for a small message.
    Buffer(&'a mut Vec<u8>),
}

impl Sink<'_> {
    /// Hands on one piece; false once the receiver went away.
    async fn put(&mut self, piece: Bytes) -> bool {
        match self {
            Sink::Channel(out) => out.send(Ok(piece)).await.is_ok(),
            Sink::Buffer(buffer) => {
                buffer.extend_from_slice(&piece);
                true
            }
        }
    }
}
