use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::ClaimedJob;

/// How failed fetches are retried: capped exponential backoff with full jitter,
/// then `dead` after `max_attempts`, or once the sync has been failing for `max_age`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub max_age: Duration,
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
    let done = sqlx::query(
        "update sync_jobs set
           state = case when rerun_priority is null then 'idle' else 'pending' end,
           priority = coalesce(rerun_priority, priority),
           run_at = now(), attempts = 0, last_error = null, failing_since = null,
           reconcile_at = $4,
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         where kind = $1 and payment_id = $2 and claim_token = $3",
    )
    .bind(job.kind.as_str())
    .bind(job.id.as_str())
    .bind(job.claim_token)
    .bind(reconcile_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: retried after a jittered backoff, or `dead` once the
/// attempts or the age are spent (unless a sync was requested meanwhile).
/// Returns the new state, or `None` if the lease was lost.
pub async fn fail_job(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    error: &str,
    policy: &RetryPolicy,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "update sync_jobs set
           attempts = attempts + 1,
           last_error = $4,
           failing_since = coalesce(failing_since, now()),
           state = case when rerun_priority is null and (attempts + 1 >= $5
               or coalesce(failing_since, now()) < now() - make_interval(secs => $8))
             then 'dead' else 'pending' end,
           priority = least(priority, rerun_priority),
           run_at = now() + make_interval(secs =>
             ($6 + random() * least($7, $6 * power(2, attempts))) / 1000.0),
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         where kind = $1 and payment_id = $2 and claim_token = $3
         returning state",
    )
    .bind(job.kind.as_str())
    .bind(job.id.as_str())
    .bind(job.claim_token)
    .bind(error)
    .bind(policy.max_attempts)
    .bind(policy.backoff_base.as_millis() as f64)
    .bind(policy.backoff_cap.as_millis() as f64)
    .bind(policy.max_age.as_secs_f64())
    .fetch_optional(conn)
    .await
}

/// Puts a job back without counting an attempt (the platform throttled us, or refused
/// our configuration: not the payment's fault), due after `delay`, noting `reason`.
pub async fn requeue_job(
    conn: &mut PgConnection,
    job: &ClaimedJob,
    delay: Duration,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update sync_jobs set
           state = 'pending', priority = least(priority, rerun_priority),
           run_at = now() + make_interval(secs => $4), last_error = $5,
           claim_token = null, lease_until = null, rerun_priority = null, updated_at = now()
         where kind = $1 and payment_id = $2 and claim_token = $3",
    )
    .bind(job.kind.as_str())
    .bind(job.id.as_str())
    .bind(job.claim_token)
    .bind(delay.as_secs_f64())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
