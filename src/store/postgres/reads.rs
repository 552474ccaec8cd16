//! The read paths of [`super::PgStore`]: single records, mailbox lists, admin search,
//! jobs, housekeeping candidates, the audit log, corr.id lookups and mailbox depths.
//!
//! Lists and searches page through an index in bounded steps and apply the reference
//! semantics ([`MailboxQuery::matches`], [`AdminSearch::matches`]) to the decoded records,
//! so they agree with every other engine by construction; the indexed columns narrow the
//! scan (mailbox and listed states; state, arrival window and corr.id for a search).

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{PgStore, decode_record, pg_error, to_i64, to_u64};
use crate::protocol::urn::Address;
use crate::store::codec::decode;
use crate::store::housekeeping::Due;
use crate::store::query::ListHits;
use crate::store::record::{JobId, LocalId, MessageRecord, PayloadId};
use crate::store::{AdminSearch, AuditRecord, MailboxQuery, Retry, RoutingJob, StoreError};

/// How many rows a list or search reads per statement; tiny in tests, so that small
/// mailboxes already cross page boundaries.
const PAGE: i64 = if cfg!(test) { 7 } else { 256 };

impl PgStore {
    pub(super) async fn record(&self, id: LocalId) -> Result<Option<MessageRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT record FROM messages WHERE local_id = $1", &[&id.0])
            .await
            .map_err(pg_error)?;
        row.map(|row| decode_record(row.get(0))).transpose()
    }

    pub(super) async fn in_mailbox(
        &self,
        mailbox: &Address,
        tx_id: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM messages WHERE mailbox = $1 AND tx_id = $2",
                &[&mailbox.to_string(), &tx_id],
            )
            .await
            .map_err(pg_error)?;
        row.map(|row| decode_record(row.get(0))).transpose()
    }

    pub(super) async fn list_mailbox(
        &self,
        mailbox: &Address,
        query: &MailboxQuery,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut hits = ListHits::new(query);
        if hits.done() {
            return Ok(hits.finish());
        }
        let descending = hits.walks_descending();
        let sql = if descending {
            "SELECT record, arrival_seq FROM messages
              WHERE mailbox = $1 AND state IN ('RECEIVED', 'FETCHED') AND arrival_seq < $2
              ORDER BY arrival_seq DESC LIMIT $3"
        } else {
            "SELECT record, arrival_seq FROM messages
              WHERE mailbox = $1 AND state IN ('RECEIVED', 'FETCHED') AND arrival_seq > $2
              ORDER BY arrival_seq LIMIT $3"
        };
        let mailbox = mailbox.to_string();
        let mut after: i64 = if descending { i64::MAX } else { -1 };
        let client = self.client().await?;
        loop {
            let rows = client
                .query(sql, &[&mailbox, &after, &PAGE])
                .await
                .map_err(pg_error)?;
            let full = rows.len() as i64 == PAGE;
            for row in rows {
                after = row.get(1);
                hits.offer(decode_record(row.get(0))?);
                if hits.done() {
                    return Ok(hits.finish());
                }
            }
            if !full {
                break;
            }
        }
        Ok(hits.finish())
    }

    pub(super) async fn search_all(
        &self,
        search: &AdminSearch,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let limit = search.limit();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        if let Some(tx_id) = &search.tx_id {
            let row = client
                .query_opt("SELECT record FROM messages WHERE tx_id = $1", &[tx_id])
                .await
                .map_err(pg_error)?;
            let found = row.map(|row| decode_record(row.get(0))).transpose()?;
            return Ok(found.into_iter().filter(|r| search.matches(r)).collect());
        }
        let state = search.state.map(|s| s.as_str());
        let mut before = i64::MAX;
        let mut hits = Vec::new();
        loop {
            let rows = client
                .query(
                    "SELECT record, arrival_seq FROM messages
                      WHERE arrival_seq < $1
                        AND ($2::TEXT IS NULL OR state = $2)
                        AND ($3::TIMESTAMPTZ IS NULL OR arrival >= $3)
                        AND ($4::TIMESTAMPTZ IS NULL OR arrival < $4)
                        AND ($5::TEXT IS NULL OR corr_id = $5)
                      ORDER BY arrival_seq DESC LIMIT $6",
                    &[
                        &before,
                        &state,
                        &search.arrived_from,
                        &search.arrived_until,
                        &search.corr_id,
                        &PAGE,
                    ],
                )
                .await
                .map_err(pg_error)?;
            let full = rows.len() as i64 == PAGE;
            for row in rows {
                before = row.get(1);
                let record = decode_record(row.get(0))?;
                if search.matches(&record) {
                    hits.push(record);
                    if hits.len() >= limit {
                        return Ok(hits);
                    }
                }
            }
            if !full {
                return Ok(hits);
            }
        }
    }

    pub(super) async fn chunk(
        &self,
        payload: PayloadId,
        part: u32,
        index: u32,
    ) -> Result<Option<Bytes>, StoreError> {
        let (Ok(part), Ok(index)) = (i32::try_from(part), i32::try_from(index)) else {
            return Ok(None);
        };
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT c.bytes FROM payload_chunks c JOIN payloads p USING (payload_id)
                  WHERE c.payload_id = $1 AND c.part = $2 AND c.chunk = $3 AND NOT p.pending",
                &[&payload.0, &part, &index],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.map(|row| Bytes::from(row.get::<_, Vec<u8>>(0))))
    }

    pub(super) async fn jobs(
        &self,
        after: Option<JobId>,
        limit: usize,
    ) -> Result<Vec<RoutingJob>, StoreError> {
        let after = job_cursor(after)?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT j.job_id, j.attempts, j.not_before, j.last_error, m.record
                   FROM routing_jobs j JOIN messages m USING (local_id)
                  WHERE j.job_id > $1 ORDER BY j.job_id LIMIT $2",
                &[&after, &to_i64(limit as u64)?],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(routing_job).collect()
    }

    pub(super) async fn due_ids(
        &self,
        due: Due,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LocalId>, StoreError> {
        let states: &[&str] = match due {
            Due::Unfetched => &["RECEIVED"],
            Due::Fetched => &["FETCHED"],
            Due::Done => &["ACKNOWLEDGED", "SENT", "EXPIRED"],
        };
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT local_id FROM messages
                  WHERE state = ANY($1) AND state_since < $2
                  ORDER BY state_since, local_id LIMIT $3",
                &[&states, &before, &to_i64(limit as u64)?],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.into_iter().map(|row| LocalId(row.get(0))).collect())
    }

    pub(super) async fn audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let before = match before {
            Some(seq) => to_i64(seq)?,
            None => i64::MAX,
        };
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&before, &to_i64(limit as u64)?],
            )
            .await
            .map_err(pg_error)?;
        rows.into_iter()
            .map(|row| Ok(decode(row.get::<_, &[u8]>(0))?))
            .collect()
    }

    pub(super) async fn by_corr_id(
        &self,
        corr_id: &str,
        limit: usize,
        except: &[LocalId],
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let client = self.client().await?;
        let except: Vec<uuid::Uuid> = except.iter().map(|id| id.0).collect();
        let rows = client
            .query(
                "SELECT record FROM messages WHERE corr_id = $1 AND local_id <> ALL($3)
                  ORDER BY local_id LIMIT $2",
                &[&corr_id, &to_i64(limit as u64)?, &except],
            )
            .await
            .map_err(pg_error)?;
        let mut records = rows
            .into_iter()
            .map(|row| decode_record(row.get(0)))
            .collect::<Result<Vec<_>, _>>()?;
        records.retain(|record| !record.summary.is_management());
        Ok(records)
    }

    /// Counted through the partial index of listed messages: one index-only pass, not a
    /// table scan.
    pub(super) async fn depths(&self) -> Result<Vec<(Address, u64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT mailbox, count(*) FROM messages
                  WHERE state IN ('RECEIVED', 'FETCHED') AND mailbox IS NOT NULL
                  GROUP BY mailbox ORDER BY mailbox",
                &[],
            )
            .await
            .map_err(pg_error)?;
        let mut depths = Vec::with_capacity(rows.len());
        for row in rows {
            let mailbox: &str = row.get(0);
            let mailbox = mailbox
                .parse::<Address>()
                .map_err(|_| StoreError::Corrupt(format!("malformed mailbox {mailbox:?}")))?;
            depths.push((mailbox, to_u64(row.get(1))?));
        }
        depths.sort();
        Ok(depths)
    }
}

/// A routing job from a row of (job_id, attempts, not_before, last_error, record).
pub(super) fn routing_job(row: &tokio_postgres::Row) -> Result<RoutingJob, StoreError> {
    let attempts: i32 = row.get(1);
    Ok(RoutingJob {
        id: JobId(to_u64(row.get(0))?),
        message: decode_record(row.get(4))?,
        retry: Retry {
            attempts: u32::try_from(attempts).unwrap_or_default(),
            not_before: row.get(2),
            last_error: row.get(3),
        },
    })
}

/// A job-id cursor as SQL compares it: after `after`, or from the start.
pub(super) fn job_cursor(after: Option<JobId>) -> Result<i64, StoreError> {
    after.map_or(Ok(-1), |job| to_i64(job.0))
}
