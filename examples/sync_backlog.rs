//! Benchmark: a backlog of payments pushed through the simulator at `max_rps`, with
//! one paymirror replica and then two sharing the budget through Postgres.
//!
//! ```sh
//! cargo run --release --example sync_backlog -- [--payments 1000] [--replicas N] [--max-rps 10]
//! ```
//!
//! Every payment is created already SUCCESS (created, then moved at once), so one
//! fetch per payment suffices; its callbacks go to replica `i % N`, as a load
//! balancer would spread them. Prints, per run, what the simulator and the database
//! measured: fetch rate, peak requests in any one-second window, 429s, and the time
//! from a payment's first stored callback to the sync that stored its final status.

#[path = "sync_backlog/cluster.rs"]
mod cluster;
#[path = "sync_backlog/figures.rs"]
mod figures;
#[path = "sync_backlog/requests.rs"]
mod requests;
#[path = "common/scratch_db.rs"]
mod scratch_db;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rust_decimal::Decimal;
use sqlx::PgPool;

use cluster::{BenchDatabase, Cluster, MERCHANT};
use figures::Figures;
use paymirror::config::LogSettings;
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::NewPayment;
use scratch_db::ServerArg;

const FINAL_STATUS: &str = "SUCCESS";
/// How often the database is checked for the backlog being stored.
const POLL: Duration = Duration::from_millis(100);
/// How often progress is printed (to stderr).
const PROGRESS: Duration = Duration::from_secs(10);
/// After the backlog is stored, how long to wait for re-fetches still queued to finish.
const SETTLE: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    about = "Pushes a backlog of payments through the simulator and reports the sync figures"
)]
struct Args {
    /// Payments in the backlog.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    payments: u32,
    /// Replicas sharing the budget; without it, runs 1 then 2.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=32))]
    replicas: Option<u32>,
    /// The platform's limit, enforced by the simulator and configured in paymirror.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_rps: u32,
    #[command(flatten)]
    server: ServerArg,
    /// Keep each run's database for inspection instead of dropping it.
    #[arg(long)]
    keep_database: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    paymirror::telemetry::init(&LogSettings {
        format: "text".into(),
        level: "warn".into(),
    });
    let plan = match args.replicas {
        Some(n) => vec![n],
        None => vec![1, 2],
    };
    let mut runs = Vec::new();
    for replicas in plan {
        let figures = bench(&args, replicas).await?;
        print_table(&figures);
        runs.push(figures);
    }
    if runs.len() > 1 {
        print_comparison(&runs);
    }
    if runs.iter().any(|r| !r.complete()) {
        anyhow::bail!("not every payment was stored within the timeout");
    }
    Ok(())
}

/// Runs one benchmark on a database of its own, dropped afterwards whatever happened.
async fn bench(args: &Args, replicas: u32) -> anyhow::Result<Figures> {
    let db = BenchDatabase::create(&args.server.database_url).await?;
    eprintln!("run: {replicas} replica(s), database {}", db.name);
    let measured = run_cluster(&db, args, replicas).await;
    if args.keep_database {
        eprintln!("kept database {}", db.name);
        return measured;
    }
    let dropped = db.drop_now().await;
    let figures = measured?;
    dropped?;
    Ok(figures)
}

async fn run_cluster(db: &BenchDatabase, args: &Args, replicas: u32) -> anyhow::Result<Figures> {
    let cluster = Cluster::start(db, replicas, args.max_rps).await?;
    let measured = drive(&cluster, args, replicas).await;
    let stopped = cluster.shut_down().await;
    let figures = measured?;
    stopped?;
    Ok(figures)
}

/// Creates the backlog, waits until it is stored (or the timeout), then measures.
async fn drive(cluster: &Cluster, args: &Args, replicas: u32) -> anyhow::Result<Figures> {
    let payments = args.payments as usize;
    let started = Instant::now();
    create_backlog(cluster, payments).await?;
    let created_in = started.elapsed();
    let expected: HashMap<String, String> = cluster
        .simulator
        .payments()
        .into_iter()
        .map(|(_, id, status)| (id.as_str().to_owned(), status))
        .collect();
    let timeout = Duration::from_secs(u64::from(args.payments / args.max_rps) * 3 + 60);
    let stored = wait_until_stored(cluster, &expected, started, timeout).await?;
    let wall = started.elapsed();
    wait_for_idle_queue(&cluster.pool, SETTLE).await?;

    let requests = requests::count_requests(&cluster.simulator.requests());
    let lag = figures::measure_lag(&cluster.pool, MERCHANT)
        .await
        .context("measuring callback → stored")?;
    let (callbacks_stored, dead) = figures::count_stored(&cluster.pool, MERCHANT)
        .await
        .context("counting callbacks and dead syncs")?;
    Ok(Figures {
        payments,
        replicas,
        max_rps: args.max_rps,
        stored,
        created_in,
        wall,
        requests,
        sim: cluster.simulator.stats(),
        lag,
        callbacks_stored,
        dead,
    })
}

/// Creates `count` payins, each moved to SUCCESS right after creation, with its
/// callbacks going to replica `i % N`.
async fn create_backlog(cluster: &Cluster, count: usize) -> anyhow::Result<()> {
    let urls = &cluster.callback_urls;
    // Each payment is announced twice, milliseconds apart (creation, then SUCCESS).
    // paymirror coalesces the pair, except when the second lands while the first one's
    // fetch is in flight, which only happens in the first ~0.1 s, before the queue has
    // filled up: then exactly one more fetch follows (SPEC §5), counted as a repeat.
    for i in 0..count {
        let id = PaymentId::parse(&format!("BENCH-{}", i + 1))?;
        cluster
            .simulator
            .create_payment(NewPayment {
                callback_url: Some(urls[i % urls.len()].clone()),
                ..NewPayment::processing(
                    PaymentKind::Payin,
                    id.clone(),
                    Decimal::new(1000 + i as i64, 2),
                )
            })
            .await;
        let moved = cluster
            .simulator
            .set_status(PaymentKind::Payin, &id, FINAL_STATUS)
            .await;
        if !moved {
            anyhow::bail!("the simulator lost payment {id}");
        }
    }
    Ok(())
}

/// Polls the database until every payment is stored with the simulator's status, or
/// `timeout` after `started`; returns how many were.
async fn wait_until_stored(
    cluster: &Cluster,
    expected: &HashMap<String, String>,
    started: Instant,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let mut next_progress = started + PROGRESS;
    loop {
        cluster.check_replicas()?;
        let stored = count_matching(&cluster.pool, expected).await?;
        if stored == expected.len() || started.elapsed() >= timeout {
            return Ok(stored);
        }
        if Instant::now() >= next_progress {
            let stats = cluster.simulator.stats();
            eprintln!(
                "[{:>4}s] stored {stored}/{} · platform requests {} · 429s {}",
                started.elapsed().as_secs(),
                expected.len(),
                stats.requests,
                stats.by_status.get(&429).copied().unwrap_or(0),
            );
            next_progress += PROGRESS;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Returns how many payments are stored with the status the simulator has.
async fn count_matching(
    pool: &PgPool,
    expected: &HashMap<String, String>,
) -> anyhow::Result<usize> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select id, status from payments where merchant_code = $1 and kind = 'payin' and status is not null",
    )
    .bind(MERCHANT)
    .fetch_all(pool)
    .await
    .context("reading stored payments")?;
    Ok(rows
        .iter()
        .filter(|(id, status)| expected.get(id) == Some(status))
        .count())
}

/// Waits until no sync is pending or running (re-fetches requested by late callbacks
/// still count toward the figures), at most `limit`.
async fn wait_for_idle_queue(pool: &PgPool, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let busy: i64 = sqlx::query_scalar(
            "select count(*) from sync_jobs where merchant_code = $1 and state in ('pending', 'running')",
        )
        .bind(MERCHANT)
        .fetch_one(pool)
        .await
        .context("reading the sync queue")?;
        if busy == 0 || Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn print_table(figures: &Figures) {
    println!("\nsync_backlog — {}", figures.title());
    for (label, value) in figures.rows() {
        println!("  {label:<28} {value}");
    }
}

/// Prints every figure of every run side by side.
fn print_comparison(runs: &[Figures]) {
    let rows: Vec<Vec<(&str, String)>> = runs.iter().map(Figures::rows).collect();
    let width = rows
        .iter()
        .flatten()
        .map(|(_, value)| value.chars().count() + 3)
        .max()
        .unwrap_or(0);
    println!("\nsync_backlog — side by side");
    let header: Vec<String> = runs
        .iter()
        .map(|r| format!("{:<width$}", format!("{} replica(s)", r.replicas)))
        .collect();
    println!("  {:<28} {}", "", header.join("").trim_end());
    for (i, (label, _)) in rows[0].iter().enumerate() {
        let values: Vec<String> = rows.iter().map(|r| format!("{:<width$}", r[i].1)).collect();
        println!("  {label:<28} {}", values.join("").trim_end());
    }
}
