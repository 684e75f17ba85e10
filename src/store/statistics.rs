//! Planner statistics for a young database: paymirror's tables analyzed as soon as
//! they hold rows, not a minute or more later when autovacuum first gets to them.
//!
//! Without statistics Postgres estimates one row for `merchant_code = $1 and kind =
//! $2` below about 40,000 rows, so a lookup of one payment by its key costs the same
//! through `payments_pkey` as through `payments_by_position`; when it takes the
//! latter it reads every entry of the merchant's kind, per lookup. No form of the
//! statement avoids that (every qual costs the same as an index condition or a
//! filter at one estimated row), so the statistics are made to exist instead. The
//! statements that join by the key hold without them (`tests/explain.rs`).

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::background::every;

/// paymirror's tables that hold rows and that Postgres has never analyzed.
const NEVER_ANALYZED: &str = "select c.relname::text from pg_class c
     join pg_stat_user_tables s on s.relid = c.oid
     where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
       and c.reltuples < 0 and s.n_live_tup > 0 and c.relname not like '\\_sqlx%'
     order by c.relname";

/// Analyzes every table that holds rows and was never analyzed; returns their names.
/// A table another session is analyzing (another replica) is skipped, quietly:
/// replicas started together all find the same young tables, and Postgres's "lock
/// not available" warning would reach every other replica's log as a WARN line.
pub async fn analyze_young_tables(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(NEVER_ANALYZED).fetch_all(pool).await?;
    for table in &tables {
        // The name comes from the catalogue, quoted: it cannot escape.
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let analyze = format!("analyze (skip_locked) {quoted}");
        let mut tx = pool.begin().await?;
        sqlx::query("set local client_min_messages = error")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&analyze)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(tables)
}

/// Runs [`analyze_young_tables`] every `interval` until `cancel` fires.
pub async fn analyze_young_tables_periodically(
    pool: PgPool,
    interval: Duration,
    cancel: CancellationToken,
) {
    every(interval, &cancel, || async {
        match analyze_young_tables(&pool).await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::info!(?tables, "analyzed tables Postgres had no statistics for"),
            Err(e) => tracing::warn!(error = %e, "could not analyze the young tables"),
        }
    })
    .await;
}
