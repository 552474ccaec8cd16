//! The store's side of housekeeping (spec §10): which messages are due, expiring an
//! unfetched one, removing a finished one. The policy (how many days) lives in the broker;
//! the store answers "what has waited since before this time", oldest first, in bounded
//! pages.

use super::record::{JobId, LocalId, MessageRecord, PayloadId};

/// The waiting classes housekeeping looks at, each ordered by the time its state began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// RECEIVED and never fetched: expires (spec §10, default 30 days).
    Unfetched,
    /// FETCHED but not acknowledged: removed after retention where acks are not used.
    Fetched,
    /// ACKNOWLEDGED, SENT or EXPIRED: removed after retention (default 14 days).
    Done,
}

/// The answer to [`super::Store::remove`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removal {
    /// The records removed: the message, and a fan-out parent that went with its last
    /// copy. Empty when the message was already gone.
    pub removed: Vec<LocalId>,
    /// The payload deleted with its last holder, if any.
    pub payload_deleted: Option<PayloadId>,
}

/// The answer to [`super::Store::expire`].
#[expect(
    clippy::large_enum_variant,
    reason = "one value per call, never stored in bulk: boxing would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// The message is EXPIRED and out of its mailbox; `notice` (the `error` to the
    /// sender) was stored in the same batch.
    Expired {
        /// The expired record.
        record: MessageRecord,
        /// The stored notice.
        notice: Option<MessageRecord>,
        /// Its routing job, when the notice goes to a remote sender.
        notice_job: Option<JobId>,
    },
    /// The message was fetched, acknowledged or removed meanwhile: nothing changed (the
    /// notice's payload was discarded).
    NotDue,
}
