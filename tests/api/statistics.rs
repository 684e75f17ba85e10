//! A young database gets statistics as soon as it holds rows: without them, Postgres
//! may serve a payment by id through `payments_by_position`, reading every payment of
//! the merchant's kind per read.

use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use crate::helpers::{eventually, TestApp};

/// The index the generic plan of a read by key takes.
async fn index_of_a_read_by_key(app: &TestApp) -> String {
    let mut conn = app.pool.acquire().await.expect("a connection");
    sqlx::raw_sql(
        "set plan_cache_mode = force_generic_plan;
         deallocate all;
         prepare by_key as select id from payments where merchant_code = $1 and kind = $2 and id = $3",
    )
    .execute(&mut *conn)
    .await
    .expect("prepare");
    let row = sqlx::query("explain (format json) execute by_key('M1', 'payin', 'P-77')")
        .fetch_one(&mut *conn)
        .await
        .expect("explain");
    let plan: Value = row.try_get(0).expect("a JSON plan");
    plan[0]["Plan"]["Index Name"]
        .as_str()
        .unwrap_or("no index")
        .to_owned()
}

/// Waits until Postgres has statistics for every table of `tables`: its row count
/// and its columns' statistics. ANALYZE writes `pg_class.reltuples` in place, visible
/// at once, but the column statistics only when its transaction commits; a plan made
/// in between has the count without the columns (seen under load: a read by key
/// planned through `payments_by_position`).
async fn analyzed(app: &TestApp, tables: &[&str]) -> Vec<String> {
    eventually(Duration::from_secs(30), || async {
        let analyzed: Vec<String> = sqlx::query_scalar(
            "select relname::text from pg_class c
             where relname = any($1) and reltuples >= 0
               and exists (select from pg_statistic s where s.starelid = c.oid)
             order by relname",
        )
        .bind(tables)
        .fetch_all(&app.pool)
        .await
        .ok()?;
        (analyzed.len() == tables.len()).then_some(analyzed)
    })
    .await
}

#[tokio::test]
async fn tables_filled_before_autovacuum_gets_to_them_are_analyzed_within_seconds() {
    let app = TestApp::spawn().await;
    // Autovacuum off, so only paymirror can analyze the tables in this test.
    sqlx::raw_sql(
        "alter table payments set (autovacuum_enabled = false);
         alter table sync_jobs set (autovacuum_enabled = false);
         insert into payments (merchant_code, kind, id)
         select 'M1', case when g % 2 = 0 then 'payin' else 'payout' end, 'P-' || g
         from generate_series(1, 20000) g",
    )
    .execute(&app.pool)
    .await
    .expect("a young database with 20,000 payments");
    assert_eq!(analyzed(&app, &["payments"]).await, ["payments"]);
    assert_eq!(index_of_a_read_by_key(&app).await, "payments_pkey");

    // The foreign-key check of each job is a read by key: before the payments had
    // statistics, this statement walked 10,000 payments per job (minutes).
    sqlx::raw_sql(
        "set statement_timeout = '20s';
         insert into sync_jobs (merchant_code, kind, payment_id, state, priority)
         select merchant_code, kind, id, 'idle', 0 from payments",
    )
    .execute(&app.pool)
    .await
    .expect("20,000 jobs");
    assert_eq!(
        analyzed(&app, &["payments", "sync_jobs"]).await,
        ["payments", "sync_jobs"]
    );
}

/// Log output captured for the current thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut held) = self.0.lock() {
            held.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Replicas started together all find the same young tables: the one that gets a
/// table's lock analyzes it, the others skip it. Skipping is expected, so it must not
/// reach the operators' logs as Postgres's "lock not available" warning.
#[tokio::test]
async fn a_table_another_replica_is_analyzing_is_skipped_without_a_warning() {
    let db = crate::helpers::TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(db.url.as_str())
        .await
        .expect("a pool");
    paymirror::migrations::migrator()
        .run(&pool)
        .await
        .expect("migrated");
    sqlx::raw_sql(
        "alter table payments set (autovacuum_enabled = false);
         insert into payments (merchant_code, kind, id) values ('M1', 'payin', 'P-1')",
    )
    .execute(&pool)
    .await
    .expect("a payment");
    // The statistics collector reports the row within a second or so.
    eventually(Duration::from_secs(30), || async {
        let live: i64 = sqlx::query_scalar(
            "select n_live_tup from pg_stat_user_tables where relname = 'payments'",
        )
        .fetch_one(&pool)
        .await
        .ok()?;
        (live > 0).then_some(())
    })
    .await;
    // Another replica's analyze, as far as locks go.
    let mut other = pool.begin().await.expect("a transaction");
    sqlx::query("lock table payments in share update exclusive mode")
        .execute(&mut *other)
        .await
        .expect("the lock analyze takes");

    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    let analyzed = {
        let _default = tracing::subscriber::set_default(subscriber);
        paymirror::store::analyze_young_tables(&pool).await
    };
    other.rollback().await.expect("rolled back");

    assert!(analyzed.is_ok(), "{analyzed:?}");
    let logged = captured
        .0
        .lock()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    assert!(
        !logged.contains("skipping analyze"),
        "the skip reached the logs:\n{logged}"
    );
    let analyzed_since: Option<f32> =
        sqlx::query_scalar("select reltuples from pg_class where relname = 'payments'")
            .fetch_one(&pool)
            .await
            .expect("reltuples");
    assert_eq!(analyzed_since, Some(-1.0), "the locked table was skipped");
}
