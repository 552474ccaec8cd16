//! Confirm and error correlation (spec §4.4): a management message delivered to a local
//! organisation is noted on the messages it answers — only those that the **same pair of
//! organisations** exchanged with its corr.id and content.id — so the admin API and the
//! console show whether (and how) the receiver answered.

use crate::protocol::ErrorCode;
use crate::protocol::management::{ManagementBody, ManagementDocument};
use crate::protocol::urn::{Address, OrgNumber};
use crate::store::{Answer, ErrorInfo, MessageRecord};

use super::Broker;

/// The most messages one corr.id is looked up for: a conversation, not a mailbox.
const MAX_CANDIDATES: usize = 1000;

/// The longest management document read (one chunk holds any real one).
const MAX_DOCUMENT_CHUNKS: u32 = 4;

impl Broker {
    /// Notes `notice` (a delivered confirm or error) on the messages it answers. Failures
    /// are logged: the notice itself is delivered either way.
    pub(super) async fn correlate(&self, notice: &MessageRecord) {
        let product = crate::protocol::urn::strip_prefix(&notice.summary.product);
        if notice.summary.sequence_type != "adm" || !matches!(product, "confirm" | "error") {
            return;
        }
        if let Err(err) = self.note_on_originals(notice, product == "error").await {
            tracing::warn!(shs.txid = %notice.tx_id, error = %err, "could not correlate a management message");
        }
    }

    async fn note_on_originals(
        &self,
        notice: &MessageRecord,
        is_error: bool,
    ) -> Result<(), crate::store::StoreError> {
        // The notice goes from the original receiver back to the original sender.
        let answering = notice.sender;
        let Some(original_sender) = receiver_org(notice) else {
            return Ok(());
        };
        let error = if is_error {
            Some(self.error_of(notice).await?)
        } else {
            None
        };
        let candidates = self
            .store
            .with_corr_id(&notice.summary.corr_id, MAX_CANDIDATES)
            .await?;
        for original in candidates {
            let answers_it = original.local_id != notice.local_id
                && original.summary.sequence_type != "adm"
                && original.summary.content_id == notice.summary.content_id
                && original.sender == original_sender
                && receiver_org(&original) == Some(answering);
            if !answers_it {
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

/// The organisation a message went to: its `to`, or the mailbox it was delivered to.
fn receiver_org(record: &MessageRecord) -> Option<OrgNumber> {
    record
        .summary
        .to
        .as_deref()
        .and_then(|to| to.parse::<Address>().ok())
        .or_else(|| record.mailbox.clone())
        .map(|address| address.org())
}
