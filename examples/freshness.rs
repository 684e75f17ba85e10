//! Benchmark: how fresh a payment is with no backlog — from its callback being stored
//! to its new status being stored, with the platform answering in `--latency-ms`.
//!
//! ```sh
//! cargo run --release --example freshness -- [--payments 50] [--latency-ms 50]
//! ```
//!
//! Starts the simulator (that latency, the real throttle) and one paymirror replica
//! (sync enabled) on a database of its own, created on `--database-url` and dropped
//! afterwards. One payment at a time, one every `--pace-ms` at most: the simulator creates it PROCESSING and
//! paymirror stores that; then the simulator moves it to SUCCESS and sends its
//! callback, and the lag measured is from that callback's row (`callbacks.created_at`)
//! to the SUCCESS row of the payment's history (`observed_at`), both on the
//! database's clock. Prints p50, p99 and max.

#[path = "sync_backlog/cluster.rs"]
mod cluster;
#[path = "common/scratch_db.rs"]
mod scratch_db;

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rust_decimal::Decimal;
use sqlx::PgPool;

use cluster::{BenchDatabase, Cluster, MERCHANT};
use paymirror::config::LogSettings;
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::NewPayment;
use scratch_db::ServerArg;

#[derive(Parser, Debug)]
struct Args {
    /// Payments, one at a time.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    payments: u32,
    /// How long the platform takes to answer a fetch.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// One payment starts every this many milliseconds at most. Each costs two
    /// platform requests, and the budget is 10 a second (each counted until 1.01 s
    /// after its answer): below 250 ms the run builds a backlog and measures the
    /// rate limit instead.
    #[arg(long, default_value_t = 300)]
    pace_ms: u64,
    #[command(flatten)]
    server: ServerArg,
}

/// How long one payment may take to be stored before the run gives up.
const PER_PAYMENT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    paymirror::telemetry::init(&LogSettings {
        format: "text".into(),
        level: std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
    });
    let db = BenchDatabase::create(&args.server.database_url).await?;
    let measured = run(&db, &args).await;
    let dropped = db.drop_now().await;
    let lags = measured?;
    dropped?;
    print(&args, &lags);
    Ok(())
}

async fn run(db: &BenchDatabase, args: &Args) -> anyhow::Result<Vec<f64>> {
    let cluster = Cluster::start(db, 1, 10).await?;
    cluster
        .simulator
        .set_latency(Duration::from_millis(args.latency_ms));
    let measured = measure(&cluster, args.payments, Duration::from_millis(args.pace_ms)).await;
    let stopped = cluster.shut_down().await;
    let lags = measured?;
    stopped?;
    Ok(lags)
}

async fn measure(cluster: &Cluster, payments: u32, pace: Duration) -> anyhow::Result<Vec<f64>> {
    let url = cluster
        .callback_urls
        .first()
        .context("one replica")?
        .clone();
    let mut lags = Vec::new();
    let mut next = tokio::time::Instant::now();
    for i in 1..=payments {
        // Pacing, so that no payment waits for the rate limit (no backlog).
        tokio::time::sleep_until(next).await;
        next = tokio::time::Instant::now() + pace;
        let id = PaymentId::parse(&format!("FRESH-{i}"))?;
        cluster
            .simulator
            .create_payment(NewPayment {
                callback_url: Some(url.clone()),
                ..NewPayment::processing(PaymentKind::Payin, id.clone(), Decimal::new(1000, 2))
            })
            .await;
        wait_for_status(&cluster.pool, &id, "PROCESSING").await?;
        if !cluster
            .simulator
            .set_status(PaymentKind::Payin, &id, "SUCCESS")
            .await
        {
            anyhow::bail!("the simulator lost payment {id}");
        }
        wait_for_status(&cluster.pool, &id, "SUCCESS").await?;
        lags.push(lag(&cluster.pool, &id).await?);
        cluster.check_replicas()?;
    }
    Ok(lags)
}

/// Polls until paymirror stored the payment with `status`.
async fn wait_for_status(pool: &PgPool, id: &PaymentId, status: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + PER_PAYMENT;
    loop {
        let stored: Option<String> = sqlx::query_scalar(
            "select status from payments where merchant_code = $1 and kind = 'payin' and id = $2",
        )
        .bind(MERCHANT)
        .bind(id.as_str())
        .fetch_optional(pool)
        .await?
        .flatten();
        if stored.as_deref() == Some(status) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{id} was not stored as {status} within {PER_PAYMENT:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Seconds from the payment's last callback row to its SUCCESS history row.
async fn lag(pool: &PgPool, id: &PaymentId) -> anyhow::Result<f64> {
    let secs: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from h.observed_at - c.at)::float8
         from (select max(created_at) as at from callbacks_on_record
               where merchant_code = $1 and kind = 'payin' and payment_id = $2) c,
              payment_status_history h
         where h.merchant_code = $1 and h.kind = 'payin' and h.payment_id = $2
           and h.status = 'SUCCESS'",
    )
    .bind(MERCHANT)
    .bind(id.as_str())
    .fetch_optional(pool)
    .await?;
    secs.context("no SUCCESS row in the history")
}

fn print(args: &Args, lags: &[f64]) {
    let mut sorted = lags.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(i).map_or(f64::NAN, |s| s * 1000.0)
    };
    println!(
        "callback → stored, platform answering in {} ms, {} payments one at a time, \
         one every {} ms at most: p50 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
        args.latency_ms,
        sorted.len(),
        args.pace_ms,
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
