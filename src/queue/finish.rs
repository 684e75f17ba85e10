//! How a claimed job ends: synced, failed (backoff, `dead` past its age), or put back
//! without an attempt; and every backoff cut short when an outage ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::batch::{in_batches, BATCH};
use super::{ClaimedJob, Priority};
use crate::domain::JobState;

pub const FINISH: &str = "update sync_jobs set
           state = case when rerun_priority is null then 'idle' else 'pending' end,
           priority = coalesce(rerun_priority, priority),
           run_at = now(), attempts = 0, last_error = null, failing_since = null,
           reconcile_at = $5,
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         where merchant_code = $1 and kind = $2 and payment_id = $3 and claim_token = $4";

/// A failed attempt of the job `$1`/`$2`/`$3` claimed as `$4`: backoff, or `dead`
/// past its age, with a reconciliation if the payment is not final. The payment is
/// read by its key from the parameters (once, not per row of a join), and first seen
/// is the job's creation (see [`PROMOTE`](super::dead::PROMOTE)).
pub const FAIL: &str = "with cur as (
           select j.merchant_code, j.kind, j.payment_id,
                  coalesce((select p.final from payments p
                            where p.merchant_code = $1 and p.kind = $2 and p.id = $3), false) as final,
                  j.created_at as first_seen_at,
                  j.rerun_priority is null
                    and coalesce(j.failing_since, now()) <= now() - make_interval(secs => $8) as dies
           from sync_jobs j
           where j.merchant_code = $1 and j.kind = $2 and j.payment_id = $3 and j.claim_token = $4
           for update
         )
         update sync_jobs j set
           attempts = j.attempts + 1,
           last_error = $5,
           failing_since = coalesce(j.failing_since, now()),
           state = case when cur.dies then 'dead' else 'pending' end,
           priority = case when $10::smallint is null then least(j.priority, j.rerun_priority)
             else coalesce(j.rerun_priority, $10::smallint) end,
           run_at = now() + make_interval(secs =>
             ($6 + random() * least($7, $6 * power(2, least(j.attempts, 30)))) / 1000.0),
           reconcile_at = case
             when not cur.dies then j.reconcile_at
             when not cur.final and $9::float8 is not null
                  and now() + make_interval(secs => $9) <= cur.first_seen_at + make_interval(secs => $11)
               then now() + make_interval(secs => $9)
           end,
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         from cur
         where j.merchant_code = cur.merchant_code and j.kind = cur.kind and j.payment_id = cur.payment_id
         returning j.state";

pub const REQUEUE: &str = "update sync_jobs set
           state = 'pending', priority = least(priority, rerun_priority),
           run_at = now() + make_interval(secs => $5), last_error = $6,
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         where merchant_code = $1 and kind = $2 and payment_id = $3 and claim_token = $4";

pub const RESUME: &str = r#"with waiting as (
                 select merchant_code, kind, payment_id from sync_jobs
                 where merchant_code = $1 and state = 'pending' and failing_since is not null and run_at > now()
                 order by kind, payment_id collate "C"
                 limit $2
                 for update skip locked
               )
               update sync_jobs j set run_at = now(), updated_at = now()
               from waiting w
               where j.merchant_code = w.merchant_code and j.kind = w.kind and j.payment_id = w.payment_id"#;

/// How failed fetches are retried: capped exponential backoff with full jitter,
/// bounded by age, not by a count: `dead` once the sync has been failing for
/// `max_age`. A dead sync of a payment that is not final is reconciled again
/// `dead_reconcile_after` later, unless that is `None` (the platform does not know the
/// payment) or falls past `reconcile_max_age` after paymirror first saw the payment.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub max_age: Duration,
    pub dead_reconcile_after: Option<Duration>,
    pub reconcile_max_age: Duration,
    /// The priority retries run at; `None`: the job's own. A rerun asked for while the
    /// fetch was in flight keeps its own priority either way.
    pub retry_priority: Option<Priority>,
}

/// Marks a successful sync done, in the caller's transaction, with the time of the
/// next reconciliation fetch (none for a final payment). Returns false if the lease
/// was lost (another worker took the job over): the caller must then roll back.
/// A rerun requested during the fetch makes the job pending again, now.
pub async fn finish_job(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    reconcile_at: Option<DateTime<Utc>>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(FINISH)
        .bind(&job.merchant_code)
        .bind(job.kind.as_str())
        .bind(job.id.as_str())
        .bind(job.claim_token)
        .bind(reconcile_at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: retried after a jittered backoff, or `dead` once the
/// sync has been failing for the policy's age (unless a sync was requested meanwhile).
/// Returns the new state, or `None` if the lease was lost.
pub async fn fail_job(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    error: &str,
    policy: &RetryPolicy,
) -> sqlx::Result<Option<JobState>> {
    sqlx::query_scalar(FAIL)
        .bind(&job.merchant_code)
        .bind(job.kind.as_str())
        .bind(job.id.as_str())
        .bind(job.claim_token)
        .bind(error)
        .bind(policy.backoff_base.as_millis() as f64)
        .bind(policy.backoff_cap.as_millis() as f64)
        .bind(policy.max_age.as_secs_f64())
        .bind(policy.dead_reconcile_after.map(|d| d.as_secs_f64()))
        .bind(policy.retry_priority.map(Priority::as_i16))
        .bind(policy.reconcile_max_age.as_secs_f64())
        .fetch_optional(conn)
        .await
}

/// Puts a job back without counting an attempt (the platform throttled us, refused
/// our configuration, or is down: not the payment's fault), due after `delay`,
/// noting `reason`. Returns false if the lease was lost.
pub async fn requeue_job(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    delay: Duration,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(REQUEUE)
        .bind(&job.merchant_code)
        .bind(job.kind.as_str())
        .bind(job.id.as_str())
        .bind(job.claim_token)
        .bind(delay.as_secs_f64())
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The platform answers again after an outage: every sync waiting out a backoff is
/// due now. Returns how many.
pub async fn resume_after_outage(pool: &PgPool, merchant_code: &str) -> sqlx::Result<u64> {
    in_batches(|| async {
        let done = sqlx::query(RESUME)
            .bind(merchant_code)
            .bind(BATCH)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
    .await
}
