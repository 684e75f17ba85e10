use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::{Priority, NOTIFY_CHANNEL};

/// A sync that gave up, as operators see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct DeadSync {
    pub kind: String,
    pub id: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub dead_since: DateTime<Utc>,
}

/// Returns dead syncs, those that died at or after `since` if given, oldest first.
pub async fn list_dead_syncs(
    pool: &PgPool,
    merchant_code: &str,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> sqlx::Result<Vec<DeadSync>> {
    sqlx::query_as(
        "select kind, payment_id as id, attempts, last_error, failing_since, updated_at as dead_since
         from sync_jobs
         where merchant_code = $1 and state = 'dead' and ($2::timestamptz is null or updated_at >= $2)
         order by updated_at, kind, payment_id
         limit $3",
    )
    .bind(merchant_code)
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Makes dead syncs pending again with fresh attempts (all, or those that died at or
/// after `since`), and returns how many.
pub async fn retry_dead_syncs(
    pool: &PgPool,
    merchant_code: &str,
    since: Option<DateTime<Utc>>,
) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let revived = sqlx::query(
        "update sync_jobs set
           state = 'pending', priority = $3, run_at = now(), attempts = 0,
           failing_since = null, updated_at = now()
         where merchant_code = $1 and state = 'dead' and ($2::timestamptz is null or updated_at >= $2)",
    )
    .bind(merchant_code)
    .bind(since)
    .bind(Priority::Manual.as_i16())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("select pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(revived)
}

/// Makes idle, not-final payments whose reconciliation is due pending at reconciliation
/// priority, and returns how many. Callbacks and refreshes still go first.
pub async fn promote_due_reconciliations(pool: &PgPool, merchant_code: &str) -> sqlx::Result<u64> {
    let promoted = sqlx::query(
        "update sync_jobs set
           state = 'pending', priority = $2, run_at = now(), reconcile_at = null, updated_at = now()
         where merchant_code = $1 and state = 'idle' and reconcile_at <= now()",
    )
    .bind(merchant_code)
    .bind(Priority::Reconcile.as_i16())
    .execute(pool)
    .await?;
    Ok(promoted.rows_affected())
}
