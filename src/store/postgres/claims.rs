//! Work shared between the nodes of one database: routing jobs claimed with
//! `FOR UPDATE SKIP LOCKED` under a lease, and node-wide duties (housekeeping) held by one
//! node at a time under a lease in `node_duties`.
//!
//! A lease is a time in the database's clock (`now()`), so the nodes' own clocks do not
//! matter. A node that dies holds nothing for longer than its lease; a node that lives
//! renews what it holds simply by claiming again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ops::unsynced;
use super::reads::{job_cursor, routing_job};
use super::{PgStore, cached, pg_error, to_i64};
use crate::store::record::JobId;
use crate::store::{RoutingJob, StoreError};

/// Who this node is in the lease columns, and how long what it takes stays its own.
#[derive(Debug, Clone)]
pub(crate) struct JobOwner {
    node: String,
    lease: Duration,
}

impl JobOwner {
    /// `node` names this process uniquely among the nodes of the database.
    pub(crate) fn new(node: String, lease: Duration) -> Self {
        JobOwner { node, lease }
    }

    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// The lease in seconds, as `make_interval(secs => …)` takes it.
    pub(crate) fn lease_secs(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}

impl PgStore {
    /// Claims due jobs that are free (never claimed, released, their lease run out) or
    /// already this node's, oldest first after `after`; rows another node is claiming at
    /// this moment are skipped, not waited for.
    pub(super) async fn claim(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        let after = job_cursor(after)?;
        let mut client = self.client().await?;
        let tx = unsynced(&mut client).await?;
        let rows = tx
            .query(
                &cached(
                    &tx,
                    "WITH taken AS (
                     SELECT job_id FROM routing_jobs
                      WHERE job_id > $1
                        AND (not_before IS NULL OR not_before <= now())
                        AND (claimed_until IS NULL OR claimed_until <= now()
                             OR claimed_by = $2)
                      ORDER BY job_id LIMIT $3
                      FOR UPDATE SKIP LOCKED)
                 UPDATE routing_jobs j
                    SET claimed_by = $2, claimed_until = now() + make_interval(secs => $4)
                   FROM taken, messages m
                  WHERE j.job_id = taken.job_id AND m.local_id = j.local_id
              RETURNING j.job_id, j.attempts, j.not_before, j.last_error, m.record",
                )
                .await?,
                &[
                    &after,
                    &self.owner.node(),
                    &to_i64(limit as u64)?,
                    &self.owner.lease_secs(),
                ],
            )
            .await
            .map_err(pg_error)?;
        tx.commit().await.map_err(pg_error)?;
        let mut jobs = rows
            .iter()
            .map(routing_job)
            .collect::<Result<Vec<_>, StoreError>>()?;
        jobs.sort_by_key(|job| job.id);
        Ok(jobs)
    }

    /// When the next job this node could claim becomes due: the earliest retry time or
    /// end of another node's lease.
    pub(super) async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT min(COALESCE(
                            GREATEST(not_before,
                                     CASE WHEN claimed_by = $1 THEN NULL ELSE claimed_until END),
                            now()))
                   FROM routing_jobs",
                &[&self.owner.node()],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get(0))
    }

    /// Takes or renews `duty` for this node unless another node holds it unexpired.
    pub(super) async fn duty(&self, duty: &str, ttl: Duration) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let held = client
            .query_opt(
                "INSERT INTO node_duties (duty, holder, until)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (duty) DO UPDATE
                    SET holder = EXCLUDED.holder, until = EXCLUDED.until
                  WHERE node_duties.holder = EXCLUDED.holder OR node_duties.until <= now()
                 RETURNING holder",
                &[&duty, &self.owner.node(), &ttl.as_secs_f64()],
            )
            .await
            .map_err(pg_error)?;
        Ok(held.is_some())
    }
}
