//! Confirm and error correlation (spec §4.4): a management message delivered to a local
//! organisation is noted on the messages it answers — only those that the **same pair of
//! organisations** exchanged with its corr.id and content.id — so the admin API and the
//! console show whether (and how) the receiver answered.

use crate::protocol::ErrorCode;
use crate::protocol::management::{ManagementBody, ManagementDocument};
use crate::protocol::urn::{Address, OrgNumber};
use crate::store::{Answer, ErrorInfo, LocalId, MessageRecord, NewMessage, Route};

use super::Broker;

/// The most messages one corr.id is looked up for: a conversation, not a mailbox.
const MAX_CANDIDATES: usize = 1000;

/// The longest management document read (one chunk holds any real one).
const MAX_DOCUMENT_CHUNKS: u32 = 4;

impl Broker {
    /// Notes `notice` (a delivered confirm or error) on the messages it answers. Failures
    /// are logged: the notice itself is delivered either way.
    pub(super) async fn correlate(&self, notice: &MessageRecord) {
        self.correlate_except(notice, None).await;
    }

    /// As [`Broker::correlate`], leaving out `noted`: the acknowledged message whose
    /// answer the ack noted already ([`answer_at_ack`]).
    pub(super) async fn correlate_except(&self, notice: &MessageRecord, noted: Option<LocalId>) {
        let product = crate::protocol::urn::strip_prefix(&notice.summary.product);
        if notice.summary.sequence_type != "adm" || !matches!(product, "confirm" | "error") {
            return;
        }
        if let Err(err) = self
            .note_on_originals(notice, product == "error", noted)
            .await
        {
            tracing::warn!(shs.txid = %notice.tx_id, error = %err, "could not correlate a management message");
        }
    }

    /// As [`Broker::correlate_except`] for the confirm that acknowledging `acknowledged`
    /// made. Skipped when the store knows `acknowledged` is the only indexed message with
    /// the confirm's corr.id: the look-up would find only it, and it is either `noted`
    /// already or not a message the confirm answers ([`answer_at_ack`] decided that).
    pub(super) async fn correlate_ack_confirm(
        &self,
        acknowledged: &MessageRecord,
        confirm: &MessageRecord,
        noted: Option<LocalId>,
    ) {
        let alone = !acknowledged.summary.is_management()
            && acknowledged.summary.corr_id == confirm.summary.corr_id
            && !self.store.corr_id_may_be_shared(&confirm.summary.corr_id);
        if !alone {
            self.correlate_except(confirm, noted).await;
        }
    }

    async fn note_on_originals(
        &self,
        notice: &MessageRecord,
        is_error: bool,
        noted: Option<LocalId>,
    ) -> Result<(), crate::store::StoreError> {
        let parties = Parties::of_record(notice);
        if parties.answered.is_none() {
            return Ok(());
        }
        let error = if is_error {
            Some(self.error_of(notice).await?)
        } else {
            None
        };
        let except: Vec<LocalId> = std::iter::once(notice.local_id).chain(noted).collect();
        let candidates = self
            .store
            .with_corr_id(&notice.summary.corr_id, MAX_CANDIDATES, &except)
            .await?;
        for original in candidates {
            if !parties.answers(&original) {
                continue;
            }
            let answer = Answer {
                error: error.clone(),
                tx_id: notice.tx_id.clone(),
                at: crate::clock::now(),
            };
            self.store.note_answer(original.local_id, answer).await?;
            tracing::info!(shs.txid = %original.tx_id, answer = %notice.tx_id,
                kind = if is_error { "error" } else { "confirm" }, "answer noted");
        }
        Ok(())
    }

    /// The code and text of an `error` notice, from its management document.
    async fn error_of(
        &self,
        notice: &MessageRecord,
    ) -> Result<ErrorInfo, crate::store::StoreError> {
        let mut document = Vec::new();
        for chunk in 0..MAX_DOCUMENT_CHUNKS {
            match self.store.read_chunk(notice.payload.id, 0, chunk).await? {
                Some(bytes) => document.extend_from_slice(&bytes),
                None => break,
            }
        }
        let unreadable = || ErrorInfo {
            code: ErrorCode::OtherError,
            text: "the error document could not be read".to_owned(),
        };
        Ok(match ManagementDocument::parse(&document) {
            Ok(ManagementDocument {
                body: ManagementBody::Error { code, info, .. },
                ..
            }) => ErrorInfo {
                code: code.as_str().parse().unwrap_or(ErrorCode::OtherError),
                text: info.unwrap_or_default(),
            },
            _ => unreadable(),
        })
    }
}

/// The answer to note on `acknowledged` in the same batch as its acknowledgement, when
/// `confirm` (generated by that ack) answers it and is delivered here at once — what
/// correlating the delivered confirm would note, without reading and writing the record a
/// second time.
pub(super) fn answer_at_ack(acknowledged: &MessageRecord, confirm: &NewMessage) -> Option<Answer> {
    let Route::Mailbox(mailbox) = &confirm.route else {
        return None;
    };
    let parties = Parties {
        id: confirm.local_id,
        answering: confirm.sender,
        answered: receiver(confirm.summary.to.as_deref(), Some(mailbox)),
        content_id: &confirm.summary.content_id,
    };
    parties.answers(acknowledged).then(|| Answer {
        error: None,
        tx_id: confirm.summary.tx_id.clone(),
        at: crate::clock::now(),
    })
}

/// What decides which messages a confirm or error answers (spec §4.4).
struct Parties<'a> {
    /// The notice itself, which answers nothing of its own.
    id: LocalId,
    /// The organisation that answers: the original's receiver.
    answering: OrgNumber,
    /// The organisation answered: the original's sender.
    answered: Option<OrgNumber>,
    /// The conversation's content.id, the same in the original and the notice.
    content_id: &'a str,
}

impl<'a> Parties<'a> {
    fn of_record(notice: &'a MessageRecord) -> Parties<'a> {
        Parties {
            id: notice.local_id,
            answering: notice.sender,
            answered: receiver(notice.summary.to.as_deref(), notice.mailbox.as_ref()),
            content_id: &notice.summary.content_id,
        }
    }

    /// True if the notice answers `original`: a message (not a management one) the same
    /// pair of organisations exchanged the other way, about the same content.
    fn answers(&self, original: &MessageRecord) -> bool {
        original.local_id != self.id
            && !original.summary.is_management()
            && original.summary.content_id == self.content_id
            && Some(original.sender) == self.answered
            && receiver(original.summary.to.as_deref(), original.mailbox.as_ref())
                == Some(self.answering)
    }
}

/// The organisation a message went to: its `to`, or the mailbox it was delivered to.
fn receiver(to: Option<&str>, mailbox: Option<&Address>) -> Option<OrgNumber> {
    to.and_then(|to| to.parse::<Address>().ok())
        .or_else(|| mailbox.cloned())
        .map(|address| address.org())
}
