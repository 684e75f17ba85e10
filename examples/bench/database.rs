//! The run's database: created fresh, shared by paymirror and the yardsticks, filled
//! with synced payments for the read pairs, and dropped at the end.

use anyhow::Context;
use sqlx::PgPool;

/// The merchant every payment belongs to and paymirror is configured with.
pub const MERCHANT: &str = "M1";

pub use crate::scratch_db::BenchDatabase;

/// The yardsticks' tables: for the receivers one row per callback, as plain as it
/// gets; for the bare reads, the documents paymirror serves, byte for byte.
const YARDSTICK_TABLES: [&str; 3] = [
    "create table bench_documents (id text primary key, position bigint not null unique,
       body text not null)",
    "create table bench_naive (id bigserial primary key, kind text not null,
       payment_id text, body jsonb not null, created_at timestamptz not null default now())",
    "create table bench_group_commit (id bigserial primary key, kind text not null,
       payment_id text, body jsonb not null, created_at timestamptz not null default now())",
];

/// Creates the yardsticks' tables beside paymirror's (migrated already).
pub async fn create_yardstick_tables(pool: &PgPool) -> anyhow::Result<()> {
    for sql in YARDSTICK_TABLES {
        sqlx::query(sql).execute(pool).await?;
    }
    Ok(())
}

/// Payins `P-1` … `P-n` as a sync leaves them: SUCCESS mostly, some FAILED (with
/// failure reasons) and some still PROCESSING, each with the platform's document in
/// the simulator's shape, amounts and fees, and ordered in commit order by creation.
const SEED_PAYMENTS: &str = r#"
with seed as (
  select 'P-' || g as id,
         case when g % 20 = 0 then 'FAILED' when g % 10 = 5 then 'PROCESSING' else 'SUCCESS' end as status,
         round(10 + ((g * 7919) % 100000) / 100.0, 2) as amount,
         now() - interval '2 days' + g * interval '7 seconds' as created
  from generate_series(1, $1::int) g
), shaped as (
  select *, round(amount * 0.01, 2) as fee,
         to_char(created at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_text,
         case when status <> 'PROCESSING' then
           to_char((created + interval '40 seconds') at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
         end as processed_text,
         to_char((created + interval '15 minutes') at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as expire_text
  from seed
)
insert into payments (merchant_code, kind, id, status, final, amount, currency_code,
    fee_amount, fee_currency_code, failure_code, failure_message, failed_at,
    payment_method_code, is_test, platform_created_at, platform_processed_at, platform,
    first_seen_at, synced_at, updated_at)
select $2, 'payin', id, status, status <> 'PROCESSING', amount, 'INR', fee, 'INR',
       case when status = 'FAILED' then 'INSUFFICIENT_FUNDS' end,
       case when status = 'FAILED' then 'The payer''s account has insufficient funds' end,
       case when status = 'FAILED' then processed_text end,
       'UPIQR', false, created_text, processed_text,
       jsonb_build_object(
         'paymentRequested', jsonb_build_object(
           'money', jsonb_build_object('amount', amount, 'currencyCode', 'INR'), 'idPayin', id),
         'process', jsonb_strip_nulls(jsonb_build_object(
           'status', status, 'createdAt', created_text, 'isTest', false,
           'processorStatus', case status when 'SUCCESS' then 'SETTLED' when 'FAILED' then 'DECLINED'
                                          else 'PENDING_AT_PROCESSOR' end,
           'processedAt', processed_text,
           'failureReasons', case when status = 'FAILED' then jsonb_build_object(
             'failedAt', processed_text, 'failureReasonCode', 'INSUFFICIENT_FUNDS',
             'message', 'The payer''s account has insufficient funds') end)),
         'fee', jsonb_build_object('amount', fee, 'currencyCode', 'INR'),
         'paymentMethodResponse', jsonb_build_object(
           'paymentMethodCode', 'UPIQR', 'idPayin', id,
           'idPayment', gen_random_uuid()::text, 'expireAt', expire_text)),
       created, created + interval '41 seconds', created + interval '41 seconds'
from shaped
order by created"#;

/// Each seeded payin's history (PROCESSING, then its final status) and its idle sync job.
const SEED_HISTORY_AND_JOBS: [&str; 3] = [
    "insert into payment_status_history (merchant_code, kind, payment_id, status, observed_at)
     select merchant_code, kind, id, 'PROCESSING', first_seen_at
     from payments where merchant_code = $1 and kind = 'payin' order by position",
    "insert into payment_status_history (merchant_code, kind, payment_id, status, previous_status, observed_at)
     select merchant_code, kind, id, status, 'PROCESSING', synced_at
     from payments where merchant_code = $1 and kind = 'payin' and final order by position",
    "insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at, attempts)
     select merchant_code, kind, id, 'idle', 0, synced_at, 0
     from payments where merchant_code = $1 and kind = 'payin'",
];

/// Fills the payments the read pairs ask for: `P-1` … `P-count`, synced. With
/// `analyze`, gathers statistics afterwards; without, the database stays as young as
/// one created a minute ago (the planner has no statistics).
pub async fn seed_payments(pool: &PgPool, count: u32, analyze: bool) -> anyhow::Result<()> {
    let count = i32::try_from(count).context("too many payments")?;
    sqlx::query(SEED_PAYMENTS)
        .bind(count)
        .bind(MERCHANT)
        .execute(pool)
        .await
        .context("seeding payments")?;
    // Without statistics, the foreign-key checks below may walk `payments` once per row.
    if analyze {
        sqlx::query("analyze payments").execute(pool).await?;
    }
    for sql in SEED_HISTORY_AND_JOBS {
        sqlx::query(sql)
            .bind(MERCHANT)
            .execute(pool)
            .await
            .context("seeding history and sync jobs")?;
    }
    if analyze {
        sqlx::query("analyze").execute(pool).await?;
    }
    Ok(())
}

/// The tables of the run's database.
async fn tables(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select relname::text from pg_class
         where relkind = 'r' and relnamespace = 'public'::regnamespace",
    )
    .fetch_all(pool)
    .await?)
}

/// Keeps the database young while the young pairs run: autovacuum off on every table,
/// so it does not analyze them a minute into the run, as it would in production.
pub async fn keep_young(pool: &PgPool) -> anyhow::Result<()> {
    for table in tables(pool).await? {
        // The names come from the catalogue: quoted, they cannot escape.
        sqlx::query(&format!(
            r#"alter table "{table}" set (autovacuum_enabled = false)"#
        ))
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// Returns whether any of paymirror's busiest tables has statistics.
pub async fn analyzed(pool: &PgPool) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select from pg_class where relname in ('payments', 'sync_jobs')
                        and reltuples >= 0)",
    )
    .fetch_one(pool)
    .await?)
}

/// Stores the document paymirror serves for each of `P-1` … `P-count` (read with
/// `token` from `paymirror`), with its payment's position, for the bare reads.
pub async fn capture_documents(
    pool: &PgPool,
    paymirror: &str,
    token: &str,
    count: u32,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let http = reqwest::Client::new();
    let documents: Vec<anyhow::Result<(String, String)>> = futures_util::stream::iter(1..=count)
        .map(|n| {
            let http = http.clone();
            async move {
                let id = format!("P-{n}");
                let body = http
                    .get(format!("{paymirror}/v1/payins/{id}"))
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                Ok((id, body))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let (mut ids, mut bodies) = (Vec::new(), Vec::new());
    for document in documents {
        let (id, body) = document.context("reading paymirror's document")?;
        ids.push(id);
        bodies.push(body);
    }
    sqlx::query(
        "insert into bench_documents (id, position, body)
         select d.id, p.position, d.body from unnest($1::text[], $2::text[]) as d(id, body)
         join payments p on p.merchant_code = $3 and p.kind = 'payin' and p.id = d.id",
    )
    .bind(&ids)
    .bind(&bodies)
    .bind(MERCHANT)
    .execute(pool)
    .await
    .context("storing the documents")?;
    Ok(())
}

/// Vacuums and analyzes the run's database, then checkpoints, so that each pair starts
/// from a settled database instead of beside the previous pair's autovacuum and
/// checkpoint (the ingest pairs leave a million rows or more behind them). Autovacuum
/// is on again afterwards, if [`keep_young`] switched it off.
pub async fn settle(pool: &PgPool) -> anyhow::Result<()> {
    for table in tables(pool).await? {
        sqlx::query(&format!(
            r#"alter table "{table}" reset (autovacuum_enabled)"#
        ))
        .execute(pool)
        .await?;
    }
    sqlx::query("vacuum (analyze)")
        .execute(pool)
        .await
        .context("vacuum")?;
    // Needs superuser or pg_checkpoint; without it the pair starts unsettled, no worse.
    if let Err(e) = sqlx::query("checkpoint").execute(pool).await {
        eprintln!("  (no checkpoint before the pair: {e})");
    }
    Ok(())
}

/// Rows in a table the ingest runs write to (its name comes from this program).
pub async fn count_rows(pool: &PgPool, table: &str) -> anyhow::Result<i64> {
    let count = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(pool)
        .await
        .with_context(|| format!("counting {table}"))?;
    Ok(count)
}
