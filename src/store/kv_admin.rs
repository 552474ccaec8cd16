//! Administrator changes and the audit log for [`super::KvStore`]: each change is one
//! batch with its audit record, synced before the answer.

use chrono::Utc;

use super::StoreError;
use super::admin::{AdminChange, Administered, AuditNote, AuditRecord, ChangeEffect, apply_change};
use super::codec::encode;
use super::group_commit::Ticket;
use super::housekeeping::Removal;
use super::keys::{self, JobEntry};
use super::kv::{Direction, KvEngine};
use super::kv_store::Inner;
use super::lifecycle::{Staging, stage_listing, stage_unlisting};
use super::record::{JobId, LocalId};

impl<E: KvEngine> Inner<E> {
    /// Applies `change` to message `id` with its audit record. The ticket makes both
    /// durable; a deleted payload's chunks are returned for deletion after the sync.
    pub(super) fn administer(
        &self,
        id: LocalId,
        change: AdminChange,
        note: AuditNote,
    ) -> Result<((Administered, Removal), Option<Ticket>), StoreError> {
        let guard = self.lock_writes();
        let mut record = self.existing(id)?;
        let before = record.clone();
        let now = Utc::now();
        let mut staging = Staging::default();
        let mut job = None;
        let mut removal = Removal::default();
        let (effect, detail) = apply_change(&mut record, &change, now)?;
        match effect {
            ChangeEffect::NeedsJob => {
                let job_id = JobId(self.engine.next_id()?);
                let entry = JobEntry::new(id);
                staging.batch.put(keys::job(job_id.0), encode(&entry)?);
                job = Some(job_id);
            }
            ChangeEffect::Listed(_) => {
                stage_unlisting(&mut staging.batch, &before);
                stage_listing(&mut staging.batch, &record)?;
            }
            ChangeEffect::Remove => removal = self.stage_removal(&mut staging, &before)?,
        }
        let deleted = matches!(change, AdminChange::Delete);
        if !deleted {
            staging.batch.put(keys::message(id), encode(&record)?);
            staging.transition(Some(&before), Some(&record));
        }
        let audit = AuditRecord {
            seq: self.engine.next_id()?,
            at: super::record::stored_precision(note.at),
            actor: note.actor,
            action: change.name().to_owned(),
            local_id: id,
            tx_id: record.tx_id.clone(),
            from: before.state,
            to: (!deleted).then_some(record.state),
            detail,
        };
        staging.batch.put(keys::audit(audit.seq), encode(&audit)?);
        staging.apply(&*self.engine, &self.digest)?;
        let ticket = self.commit_ticket();
        drop(guard);
        let answer = Administered {
            record: (!deleted).then_some(record),
            job,
            audit,
        };
        Ok(((answer, removal), Some(ticket)))
    }

    /// The newest audit entries first, strictly older than `before` when given.
    pub(super) fn audit_log(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let after = before.map(keys::audit);
        self.engine
            .scan(
                keys::AUDIT_PREFIX,
                after.as_deref(),
                Direction::Reverse,
                limit,
            )?
            .into_iter()
            .map(|(_, value)| Ok(super::codec::decode(&value)?))
            .collect()
    }
}
