//! The upkeep of the callbacks on record: pruning those past their retention, and
//! merging the batches' pending index entries, each as a background loop.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::background::every;

/// How many old callbacks one pruning statement deletes: short, never blocking ingest.
const PRUNE_BATCH: i64 = 1000;

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

/// Merges the batches' pending index entries every `interval` until `cancel` fires.
pub async fn merge_pending_periodically(
    pool: PgPool,
    interval: Duration,
    cancel: CancellationToken,
) {
    every(interval, &cancel, || async {
        if let Err(e) = merge_pending(&pool).await {
            tracing::warn!(error = %e, "could not merge the callbacks' pending index entries");
        }
    })
    .await;
}

/// Prunes callbacks older than `retention` now and every `interval` until `cancel` fires.
pub async fn prune_periodically(
    pool: PgPool,
    retention: Duration,
    interval: Duration,
    cancel: CancellationToken,
) {
    let prune = || async {
        match prune_callbacks(&pool, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(callbacks = n, "pruned callbacks past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune old callbacks"),
        }
    };
    // At once too: a replica restarted more often than the interval still prunes.
    prune().await;
    every(interval, &cancel, prune).await;
}
