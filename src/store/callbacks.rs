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

/// A payment's callbacks, oldest first: batches found through their GIN index (the
/// index narrows to batches naming the id; the kind is checked per element), and rows
/// of the older one-row-per-callback table.
pub(crate) const LIST_FOR_PAYMENT: &str = "select received_at, outcome, body from (
       select b.created_at as received_at, t.outcome, t.body, b.id, t.n
         from callback_batches b,
              unnest(b.kinds, b.payment_ids, b.outcomes, b.bodies) with ordinality
                as t(kind, payment_id, outcome, body, n)
        where b.merchant_code = $1 and b.payment_ids @> array[$3::text]
          and t.kind = $2 and t.payment_id = $3
       union all
       select created_at, outcome, body, id, 0
         from callbacks
        where merchant_code = $1 and kind = $2 and payment_id = $3
     ) r
     order by received_at, id, n";

/// Callbacks without `idEntity` received at or after `$2`, oldest first, at most `$3`.
pub(crate) const LIST_IGNORED: &str = "select received_at, kind, body from (
       select b.created_at as received_at, t.kind, t.body, b.id, t.n
         from callback_batches b,
              unnest(b.kinds, b.outcomes, b.bodies) with ordinality as t(kind, outcome, body, n)
        where b.merchant_code = $1 and 'ignored' = any (b.outcomes)
          and ($2::timestamptz is null or b.created_at >= $2)
          and t.outcome = 'ignored'
       union all
       select created_at, kind, body, id, 0
         from callbacks
        where merchant_code = $1 and outcome = 'ignored'
          and ($2::timestamptz is null or created_at >= $2)
     ) r
     order by received_at, id, n
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

/// Deletes callbacks older than `retention`, a thousand rows (batches, or callbacks of
/// the older table) at a time, oldest first; returns how many callbacks. Each statement
/// looks only at the oldest rows (ids grow with time), skips rows another pruner holds,
/// and never waits on ingest.
pub async fn prune_callbacks(pool: &PgPool, retention: Duration) -> sqlx::Result<u64> {
    let mut total = 0;
    // Each table with what one of its rows holds, in callbacks.
    for (table, callbacks) in [
        ("callback_batches", "cardinality(kinds)"),
        ("callbacks", "1"),
    ] {
        let statement = prune_statement(table, callbacks);
        loop {
            let (rows, callbacks): (i64, i64) = sqlx::query_as(&statement)
                .bind(retention.as_secs_f64())
                .bind(PRUNE_BATCH)
                .fetch_one(pool)
                .await?;
            total += u64::try_from(callbacks).unwrap_or(0);
            if rows < PRUNE_BATCH {
                break;
            }
        }
    }
    Ok(total)
}

/// Deletes up to `$2` rows of `table` older than `$1` seconds; returns the rows and the
/// callbacks they held (`callbacks`: how many one row holds).
fn prune_statement(table: &str, callbacks: &str) -> String {
    format!(
        "with gone as (
           delete from {table} where id in (
             select id from (
               select id, created_at from {table} order by id limit $2 for update skip locked
             ) oldest
             where created_at < now() - make_interval(secs => $1)
           )
           returning {callbacks} as callbacks
         )
         select count(*), coalesce(sum(callbacks), 0)::bigint from gone"
    )
}

/// Merges the pending list of the batches' GIN index into the index proper (what
/// ingest would otherwise do inline when the list grows past its limit, holding up a
/// batch for tens of milliseconds); returns the index pages merged.
pub async fn merge_pending(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("select gin_clean_pending_list('callback_batches_by_payment')")
        .fetch_one(pool)
        .await
}

/// Merges the batches' pending index entries every `every` until `cancel` fires.
pub async fn merge_pending_periodically(pool: PgPool, every: Duration, cancel: CancellationToken) {
    repeat(every, cancel, || async {
        if let Err(e) = merge_pending(&pool).await {
            tracing::warn!(error = %e, "could not merge the callbacks' pending index entries");
        }
    })
    .await;
}

/// Prunes callbacks older than `retention` every `every` until `cancel` fires.
pub async fn prune_periodically(
    pool: PgPool,
    retention: Duration,
    every: Duration,
    cancel: CancellationToken,
) {
    repeat(every, cancel, || async {
        match prune_callbacks(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(callbacks = n, "pruned callbacks past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune old callbacks"),
        }
    })
    .await;
}

/// Runs `work` now and then every `every` after it finished, until `cancel` fires.
async fn repeat<F, Fut>(every: Duration, cancel: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        work().await;
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = cancel.cancelled() => return,
        }
    }
}
