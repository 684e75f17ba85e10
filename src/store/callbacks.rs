//! The callbacks on record (written by the inbox): what the platform sent for a
//! payment, the callbacks that named none, and their retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::domain::{PaymentId, PaymentKind};

/// How many old callbacks one pruning statement deletes: short, never blocking ingest.
const PRUNE_BATCH: i64 = 1000;

/// A callback as received (`body` in its stored form: NUL made U+FFFD, numbers
/// `numeric` cannot hold made strings).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRecord {
    pub received_at: DateTime<Utc>,
    /// `accepted` (a sync was scheduled) or `ignored` (no `idEntity`).
    pub outcome: String,
    #[schema(value_type = Object)]
    pub body: Value,
}

/// A callback that named no payment.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredCallback {
    pub received_at: DateTime<Utc>,
    pub kind: PaymentKind,
    #[schema(value_type = Object)]
    pub body: Value,
}

pub(crate) const LIST_FOR_PAYMENT: &str = "select created_at as received_at, outcome, body
     from callbacks
     where merchant_code = $1 and kind = $2 and payment_id = $3
     order by id";

pub(crate) const LIST_IGNORED: &str = "select created_at as received_at, kind, body
     from callbacks
     where merchant_code = $1 and outcome = 'ignored'
       and ($2::timestamptz is null or created_at >= $2)
     order by id
     limit $3";

/// Returns the callbacks received for the payment, oldest first.
pub async fn list_callbacks(
    pool: &PgPool,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Vec<CallbackRecord>> {
    sqlx::query_as(LIST_FOR_PAYMENT)
        .bind(merchant_code)
        .bind(kind.as_str())
        .bind(id.as_str())
        .fetch_all(pool)
        .await
}

/// Returns up to `limit` callbacks without `idEntity`, received at or after `since`, oldest first.
pub async fn list_ignored(
    pool: &PgPool,
    merchant_code: &str,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> sqlx::Result<Vec<IgnoredCallback>> {
    sqlx::query_as(LIST_IGNORED)
        .bind(merchant_code)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Deletes callbacks older than `retention`, a thousand at a time, oldest first;
/// returns how many. Each batch looks only at the oldest rows (ids grow with time),
/// skips rows another pruner holds, and never waits on ingest.
pub async fn prune_callbacks(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "delete from callbacks where id in (
               select id from (
                 select id, created_at from callbacks order by id limit $2 for update skip locked
               ) oldest
               where created_at < now() - make_interval(secs => $1)
             )",
        )
        .bind(retention.as_secs_f64())
        .bind(PRUNE_BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Prunes callbacks older than `retention` every `every` until `cancel` fires.
pub async fn prune_periodically(
    pool: PgPool,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        match prune_callbacks(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(callbacks = n, "pruned callbacks past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune old callbacks"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = cancel.cancelled() => return,
        }
    }
}
