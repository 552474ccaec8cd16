//! What administrators may do to a stored message, and the audit log that records every
//! such change with who made it (spec §11). The broker decides what an action means
//! (which mailbox a release goes to); the store applies it atomically with its audit
//! record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::codec::as_timestamp;
use super::lifecycle::{mailbox_of, wrong_state};
use super::record::{JobId, LocalId, MessageRecord, State};
use crate::protocol::urn::Address;

/// A change an administrator makes to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    /// QUARANTINED → NEW with a fresh routing job: route again with the current
    /// configuration (after the cause was fixed).
    Requeue,
    /// QUARANTINED → RECEIVED in `mailbox`, without routing again: the administrator
    /// overrides the check that failed.
    Release {
        /// The local mailbox the message is put in.
        mailbox: Address,
    },
    /// RECEIVED, FETCHED, ACKNOWLEDGED or EXPIRED → RECEIVED in the mailbox it was
    /// delivered to: listed and fetchable again (a business system lost it).
    Resend,
    /// Removes the message for good: record, indexes, and its payload unless a fan-out
    /// copy still holds it. Not for NEW messages (routing is under way) nor for a
    /// fan-out parent whose copies remain.
    Delete,
}

impl AdminChange {
    /// The action's name in the audit log and the API.
    pub fn name(&self) -> &'static str {
        match self {
            AdminChange::Requeue => "requeue",
            AdminChange::Release { .. } => "release",
            AdminChange::Resend => "resend",
            AdminChange::Delete => "delete",
        }
    }
}

/// Who makes a change and when: the caller's part of an audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditNote {
    /// The admin identity, as the admin listener established it.
    pub actor: String,
    /// When the change was asked for.
    pub at: DateTime<Utc>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log; grows with every entry, also across restarts.
    pub seq: u64,
    /// When.
    #[serde(with = "as_timestamp")]
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// The action ([`AdminChange::name`]).
    pub action: String,
    /// The message.
    pub local_id: LocalId,
    /// Its tx.id, kept here because a deleted message has no record left.
    pub tx_id: String,
    /// Its state before.
    pub from: State,
    /// Its state after; `None` when it was deleted.
    pub to: Option<State>,
    /// For a release, the mailbox it went to.
    pub detail: Option<String>,
}

/// The answer to [`super::Store::administer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administered {
    /// The record after the change; `None` when deleted.
    pub record: Option<MessageRecord>,
    /// The new routing job of a requeue: hand it to the router.
    pub job: Option<JobId>,
    /// The audit entry written with the change.
    pub audit: AuditRecord,
}

/// What an admin change asks of an engine besides writing the changed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChangeEffect {
    /// The record is NEW again: add a routing job for it.
    NeedsJob,
    /// The record is RECEIVED in this mailbox: (re)list it there.
    Listed(Address),
    /// Remove the record (and its payload with the last holder).
    Remove,
}

/// The rules of every admin change, shared by the engines so they cannot drift: checks
/// that `change` applies to `record` in its state and changes the record (state, error,
/// mailbox); returns what else the engine must do and the audit detail.
pub(super) fn apply_change(
    record: &mut MessageRecord,
    change: &AdminChange,
    now: DateTime<Utc>,
) -> Result<(ChangeEffect, Option<String>), StoreError> {
    let allowed: &[State] = match change {
        AdminChange::Requeue | AdminChange::Release { .. } => &[State::Quarantined],
        AdminChange::Resend => &[
            State::Received,
            State::Fetched,
            State::Acknowledged,
            State::Expired,
        ],
        AdminChange::Delete => &[
            State::Received,
            State::Fetched,
            State::Acknowledged,
            State::Quarantined,
            State::Sent,
            State::FannedOut,
            State::Expired,
        ],
    };
    if !allowed.contains(&record.state) {
        let action = match change {
            AdminChange::Delete => "delete while routing is under way",
            other => other.name(),
        };
        return Err(wrong_state(record, action));
    }
    Ok(match change {
        AdminChange::Requeue => {
            record.error = None;
            record.enter(State::New, now);
            (ChangeEffect::NeedsJob, None)
        }
        AdminChange::Release { mailbox } => {
            record.error = None;
            record.enter(State::Received, now);
            record.mailbox = Some(mailbox.clone());
            (
                ChangeEffect::Listed(mailbox.clone()),
                Some(mailbox.to_string()),
            )
        }
        AdminChange::Resend => {
            let mailbox = mailbox_of(record)?;
            record.enter(State::Received, now);
            (ChangeEffect::Listed(mailbox), None)
        }
        AdminChange::Delete => (ChangeEffect::Remove, None),
    })
}
