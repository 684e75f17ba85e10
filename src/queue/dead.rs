//! Syncs that gave up: listing and retrying them, and the reconciliation fetches of
//! idle and dead payments that are not final yet.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::batch::{in_batches, BATCH};
use super::{Priority, NOTIFY_CHANNEL};
use crate::domain::{PaymentId, PaymentKind};

pub const LIST_DEAD: &str = "select kind, payment_id as id, attempts, last_error, failing_since, updated_at as dead_since
         from sync_jobs
         where merchant_code = $1 and state = 'dead' and ($2::timestamptz is null or updated_at >= $2)
         order by updated_at, kind, payment_id
         limit $3";

pub const RETRY_DEAD: &str = r#"with dead as (
                 select merchant_code, kind, payment_id from sync_jobs
                 where merchant_code = $1 and state = 'dead' and ($2::timestamptz is null or updated_at >= $2)
                 order by kind, payment_id collate "C"
                 limit $4
                 for update skip locked
               )
               update sync_jobs j set
                 state = 'pending', priority = $3, run_at = now(), attempts = 0,
                 failing_since = null, reconcile_at = null, updated_at = now()
               from dead d
               where j.merchant_code = d.merchant_code and j.kind = d.kind and j.payment_id = d.payment_id"#;

/// Reconciliations due for payments first seen within the last `$4` seconds: made
/// pending at priority `$2`, at most `$3`.
///
/// A payment is first seen when its sync job is created: the callback, refresh or
/// reconciliation that made the payment's row made its job in the same statement, so
/// `sync_jobs.created_at` is `payments.first_seen_at`. Reading it from the job keeps
/// this statement on one table: joined to `payments`, a database without statistics
/// would walk the merchant's payments once per job.
pub const PROMOTE: &str = r#"with due as (
                 select j.merchant_code, j.kind, j.payment_id from sync_jobs j
                 where j.merchant_code = $1 and j.state in ('idle', 'dead') and j.reconcile_at <= now()
                   and j.created_at > now() - make_interval(secs => $4)
                 order by j.kind, j.payment_id collate "C"
                 limit $3
                 for update skip locked
               )
               update sync_jobs j set
                 state = 'pending', priority = $2, run_at = now(), reconcile_at = null,
                 attempts = case when j.state = 'dead' then 0 else j.attempts end,
                 failing_since = case when j.state = 'dead' then null else j.failing_since end,
                 updated_at = now()
               from due d
               where j.merchant_code = d.merchant_code and j.kind = d.kind and j.payment_id = d.payment_id"#;

/// Reconciliations due for payments first seen longer ago than `$2` seconds: dropped
/// (no payment is chased past `reconcile.max_age_hours`, whatever its state, even one a
/// release before this one scheduled). First seen is the job's creation, as in [`PROMOTE`].
pub const FORGET_OLD: &str = r#"with old as (
                 select j.merchant_code, j.kind, j.payment_id from sync_jobs j
                 where j.merchant_code = $1 and j.state in ('idle', 'dead') and j.reconcile_at <= now()
                   and j.created_at <= now() - make_interval(secs => $2)
                 order by j.kind, j.payment_id collate "C"
                 limit $3
                 for update skip locked
               )
               update sync_jobs j set reconcile_at = null, updated_at = now()
               from old o
               where j.merchant_code = o.merchant_code and j.kind = o.kind and j.payment_id = o.payment_id"#;

/// A sync that gave up, as operators see it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadSync {
    pub kind: PaymentKind,
    #[schema(value_type = String)]
    pub id: PaymentId,
    pub attempts: i32,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(required = true)]
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
    sqlx::query_as(LIST_DEAD)
        .bind(merchant_code)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Makes dead syncs pending again, due now with fresh attempts (all, or those that
/// died at or after `since`), in bounded batches; returns how many.
pub async fn retry_dead_syncs(
    pool: &PgPool,
    merchant_code: &str,
    since: Option<DateTime<Utc>>,
) -> sqlx::Result<u64> {
    let revived = in_batches(|| async {
        let done = sqlx::query(RETRY_DEAD)
            .bind(merchant_code)
            .bind(since)
            .bind(Priority::Manual.as_i16())
            .bind(BATCH)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
    .await?;
    notify_workers(pool).await?;
    Ok(revived)
}

/// Makes idle or dead payments whose reconciliation is due pending at reconciliation
/// priority (due now, fresh attempts), in bounded batches; returns how many.
/// Callbacks and refreshes still go first. A payment first seen more than `max_age`
/// ago is not reconciled: its due reconciliation is dropped.
pub async fn promote_due_reconciliations(
    pool: &PgPool,
    merchant_code: &str,
    max_age: Duration,
) -> sqlx::Result<u64> {
    in_batches(|| async {
        let done = sqlx::query(FORGET_OLD)
            .bind(merchant_code)
            .bind(max_age.as_secs_f64())
            .bind(BATCH)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
    .await?;
    in_batches(|| async {
        let done = sqlx::query(PROMOTE)
            .bind(merchant_code)
            .bind(Priority::Reconcile.as_i16())
            .bind(BATCH)
            .bind(max_age.as_secs_f64())
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
    .await
}

async fn notify_workers(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query("select pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}
