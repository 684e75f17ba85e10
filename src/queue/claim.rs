//! Claiming due jobs under a lease (`for update skip locked`), keeping the lease
//! while the fetch runs, and returning jobs whose worker vanished.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use super::batch::{in_batches, BATCH};
use crate::domain::{PaymentId, PaymentKind};

pub const CLAIM: &str = "with next as (
           select merchant_code, kind, payment_id from sync_jobs
           where merchant_code = $1 and state = 'pending' and run_at <= now()
           order by priority, run_at
           limit $2
           for update skip locked
         )
         update sync_jobs j set
           state = 'running', claim_token = gen_random_uuid(),
           lease_until = now() + make_interval(secs => $3), rerun_priority = null, updated_at = now()
         from next
         where j.merchant_code = next.merchant_code and j.kind = next.kind and j.payment_id = next.payment_id
         returning j.merchant_code, j.kind, j.payment_id, j.claim_token, j.attempts, j.priority";

/// [`CLAIM`] taking the newest due job of the most urgent priority first.
pub const CLAIM_NEWEST: &str = "with urgent as (
           select priority from sync_jobs
           where merchant_code = $1 and state = 'pending' and run_at <= now()
           order by priority, run_at
           limit 1
         ), next as (
           select merchant_code, kind, payment_id from sync_jobs
           where merchant_code = $1 and state = 'pending' and run_at <= now()
             and priority = (select priority from urgent)
           order by run_at desc
           limit $2
           for update skip locked
         )
         update sync_jobs j set
           state = 'running', claim_token = gen_random_uuid(),
           lease_until = now() + make_interval(secs => $3), rerun_priority = null, updated_at = now()
         from next
         where j.merchant_code = next.merchant_code and j.kind = next.kind and j.payment_id = next.payment_id
         returning j.merchant_code, j.kind, j.payment_id, j.claim_token, j.attempts, j.priority";

pub const EXTEND_LEASE: &str =
    "update sync_jobs set lease_until = now() + make_interval(secs => $5)
         where merchant_code = $1 and kind = $2 and payment_id = $3 and claim_token = $4";

pub const REAP: &str = r#"with expired as (
                 select merchant_code, kind, payment_id from sync_jobs
                 where state = 'running' and lease_until < now()
                 order by merchant_code, kind, payment_id collate "C"
                 limit $1
                 for update skip locked
               )
               update sync_jobs j set
                 state = 'pending', run_at = now(), claim_token = null, lease_until = null,
                 priority = least(priority, rerun_priority), rerun_priority = null,
                 last_error = 'lease expired: the worker holding this sync stopped', updated_at = now()
               from expired e
               where j.merchant_code = e.merchant_code and j.kind = e.kind and j.payment_id = e.payment_id"#;

/// A job leased to this worker; only the holder of `claim_token` may finish it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub merchant_code: String,
    pub kind: PaymentKind,
    #[sqlx(rename = "payment_id")]
    pub id: PaymentId,
    pub claim_token: Uuid,
    pub attempts: i32,
    pub priority: i16,
}

/// Which due job of the most urgent priority a claim takes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The one due longest: nothing waits without end.
    Oldest,
    /// The one due last: a callback that just came is not queued behind a flood of
    /// others (forged ones among them, which only a fetch can tell).
    Newest,
}

/// Leases up to `limit` due jobs, most urgent first, and returns them; within the
/// most urgent priority, the oldest due first.
///
/// `for update skip locked` lets replicas claim concurrently without waiting on each
/// other; once committed, `state = 'running'` keeps every other claimer away until
/// the lease ends, and the holder's heartbeat ([`extend_lease`]) keeps it from ending
/// while the holder lives: at most one fetch per payment is in flight across replicas.
pub async fn claim_due_jobs(
    pool: &PgPool,
    merchant_code: &str,
    limit: i64,
    lease: Duration,
) -> anyhow::Result<Vec<ClaimedJob>> {
    claim_picking(pool, merchant_code, limit, lease, Pick::Oldest).await
}

/// [`claim_due_jobs`], taking within the most urgent priority the jobs `pick` says.
pub async fn claim_picking(
    pool: &PgPool,
    merchant_code: &str,
    limit: i64,
    lease: Duration,
    pick: Pick,
) -> anyhow::Result<Vec<ClaimedJob>> {
    let statement = match pick {
        Pick::Oldest => CLAIM,
        Pick::Newest => CLAIM_NEWEST,
    };
    let mut jobs: Vec<ClaimedJob> = sqlx::query_as(statement)
        .bind(merchant_code)
        .bind(limit)
        .bind(lease.as_secs_f64())
        .fetch_all(pool)
        .await
        .context("claiming sync jobs")?;
    jobs.sort_by_key(|j| j.priority);
    Ok(jobs)
}

/// Extends the lease of a job its holder is still working on; returns false once the
/// lease was lost (reaped and perhaps claimed by another worker): the holder must stop.
pub async fn extend_lease(pool: &PgPool, job: &ClaimedJob, lease: Duration) -> sqlx::Result<bool> {
    let done = sqlx::query(EXTEND_LEASE)
        .bind(&job.merchant_code)
        .bind(job.kind.as_str())
        .bind(job.id.as_str())
        .bind(job.claim_token)
        .bind(lease.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Returns jobs whose worker vanished (lease expired) to `pending`, due now, and how
/// many there were; in bounded batches that skip rows another transaction holds.
///
/// A rerun requested meanwhile keeps its priority; the lost fetch is not counted as an attempt.
pub async fn reap_expired_leases(pool: &PgPool) -> sqlx::Result<u64> {
    in_batches(|| async {
        let done = sqlx::query(REAP).bind(BATCH).execute(pool).await?;
        Ok(done.rows_affected())
    })
    .await
}
