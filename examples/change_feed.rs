//! Benchmark: how fast a waiting `GET /v1/changes` is woken after a change commits,
//! and how fast a consumer drains a backlog of changes.
//!
//! ```sh
//! cargo run --release --example change_feed -- [--changes 100] [--backlog 10000]
//! ```
//!
//! Starts the real app (sync disabled) on a database of its own, created on
//! `--database-url` and dropped afterwards. A consumer long-polls the feed
//! (`wait=30`) while this program commits `--changes` status changes one at a time,
//! each as a sync does (upsert, then positions and NOTIFY at commit); it prints the
//! p50/p99/max time from each commit to the consumer holding the change. Then it
//! commits `--backlog` more changes and times a consumer paging through them
//! (`limit=1000`).

#[path = "common/scratch_db.rs"]
mod scratch_db;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use paymirror::app::Application;
use paymirror::config::{LogSettings, Settings};
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::platform::PlatformPayment;
use paymirror::store::{publish_changes, upsert_payment};
use reqwest::Url;
use scratch_db::{with_scratch_database, ServerArg};
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
struct Args {
    /// Changes committed one at a time while a consumer waits.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Changes committed before a consumer drains them.
    #[arg(long, default_value_t = 10_000)]
    backlog: usize,
    #[command(flatten)]
    server: ServerArg,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    paymirror::telemetry::init(&LogSettings {
        format: "text".into(),
        level: "warn".into(),
    });
    let server = args.server.database_url.clone();
    with_scratch_database(&server, |url| async move { run(&args, &url).await }).await
}

async fn run(args: &Args, db_url: &Url) -> anyhow::Result<()> {
    let mut settings =
        Settings::load()?.pointed_at(db_url.as_str(), "http://127.0.0.1:9", "M1", "-");
    settings.sync.enabled = false;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let stop = CancellationToken::new();
    let serving = tokio::spawn(app.run_until_stopped(stop.clone()));
    let token = paymirror::tokens::create_token(&pool, "bench", &[], &[]).await?;
    let http = reqwest::Client::new();

    // Wake-up latency: the consumer waits; each change is committed while it waits.
    let mut cursor = "c0".to_owned();
    let mut latencies = Vec::with_capacity(args.changes);
    for n in 0..args.changes {
        let waiting = tokio::spawn(page(
            http.clone(),
            base.clone(),
            token.clone(),
            cursor.clone(),
            30,
            100,
        ));
        // Let the request reach its wait (it registers before querying, so a commit
        // racing it is still seen; this only keeps the figure about waking up).
        tokio::time::sleep(Duration::from_millis(20)).await;
        commit_change(&pool, &format!("W-{n}")).await?;
        let committed = Instant::now();
        let (items, next) = waiting.await??;
        latencies.push(committed.elapsed());
        anyhow::ensure!(items == 1, "expected one change, got {items}");
        cursor = next;
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "wake-up after commit over {} changes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );

    // Backlog: commit many, then drain.
    let started = Instant::now();
    for n in 0..args.backlog {
        commit_change(&pool, &format!("B-{n}")).await?;
    }
    let committing = started.elapsed();
    let drained_at = Instant::now();
    let mut drained = 0;
    loop {
        let (items, next) = page(
            http.clone(),
            base.clone(),
            token.clone(),
            cursor.clone(),
            0,
            1000,
        )
        .await?;
        drained += items;
        cursor = next;
        if items == 0 {
            break;
        }
    }
    let draining = drained_at.elapsed();
    println!(
        "backlog of {}: committed in {:.1} s; drained {drained} in {:.2} s ({:.0} changes/s)",
        args.backlog,
        committing.as_secs_f64(),
        draining.as_secs_f64(),
        drained as f64 / draining.as_secs_f64()
    );
    stop.cancel();
    serving.await??;
    Ok(())
}

/// Commits one status change the way a sync does.
async fn commit_change(pool: &PgPool, id: &str) -> anyhow::Result<()> {
    let pid = PaymentId::parse(id)?;
    let mut tx = pool.begin().await?;
    sqlx::query("insert into payments (merchant_code, kind, id) values ('M1', 'payin', $1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let body = format!(
        r#"{{"process": {{"status": "SUCCESS"}}, "paymentMethodResponse": {{"idPayin": "{id}"}}}}"#
    );
    let answer = PlatformPayment::parse(body.as_bytes(), PaymentKind::Payin, &pid)?;
    let upserted = upsert_payment(&mut tx, "M1", PaymentKind::Payin, &pid, &answer)
        .await?
        .context("row")?;
    publish_changes(&mut tx, "M1", PaymentKind::Payin, &pid, &upserted).await?;
    tx.commit().await?;
    Ok(())
}

/// One feed request; returns how many items and the next cursor.
async fn page(
    http: reqwest::Client,
    base: String,
    token: String,
    cursor: String,
    wait: u64,
    limit: u64,
) -> anyhow::Result<(usize, String)> {
    let page: Value = http
        .get(format!(
            "{base}/v1/changes?after={cursor}&wait={wait}&limit={limit}"
        ))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let items = page["items"].as_array().map_or(0, Vec::len);
    let next = page["nextCursor"]
        .as_str()
        .context("nextCursor")?
        .to_owned();
    Ok((items, next))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
