//! Benchmark suite: paymirror's hot paths beside the simplest code that could serve
//! them, under the same wrk load, interleaved, with the ratios.
//!
//! ```sh
//! cargo run --release --example bench -- [--only naive,group-commit,by-id,page,noop] \
//!     [--rounds 2] [--duration 10] [--connections 32] [--threads 1] [--warmup 2] [--ids 5000]
//! ```
//!
//! Creates a database of its own on `--database-url` (dropped afterwards), starts the
//! real app in this process with `Application::build` (sync disabled: ingest is
//! measured alone, and the read pairs read payments filled beforehand) and the
//! yardsticks beside it, each on 127.0.0.1:0 against the same database. Then, per pair,
//! runs wrk against paymirror and its yardstick in turn, `--rounds` times each, and
//! prints every run and the means with the ratio paymirror / yardstick. Ingest runs
//! check that every 2xx left its row committed, and every run records this process's
//! resident memory. Needs `wrk` on the PATH.

mod database;
mod load;
mod memory;
mod pairs;
mod report;
#[path = "../common/scratch_db.rs"]
mod scratch_db;
mod yardsticks;

use std::path::Path;

/// The allocator of the product binary (`src/main.rs`), so paymirror is measured as
/// it runs; the yardsticks share this process and so the allocator too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use database::{BenchDatabase, MERCHANT};
use load::Shape;
use pairs::{pair, run_pair, Endpoints, PairName};
use paymirror::app::Application;
use paymirror::config::{LogSettings, Settings};
use scratch_db::ServerArg;

#[derive(Parser, Debug)]
#[command(about = "Runs paymirror beside its yardsticks under wrk and prints the ratios")]
struct Args {
    /// Pairs to run (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<PairName>,
    /// Rounds per side; the sides alternate.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Seconds per run (wrk -d).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Connections held open by wrk (wrk -c).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// wrk threads (wrk -t); at most the connections.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// Seconds of unreported warm-up per side before each pair's rounds (0: none).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Distinct ids: callbacks cycle over BENCH-1…N, reads over the N payments filled.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    ids: u32,
    #[command(flatten)]
    server: ServerArg,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.threads <= args.connections,
        "--threads must not exceed --connections"
    );
    load::ensure_wrk().await?;
    // Warnings only: paymirror's access log (INFO) would write a line per request.
    paymirror::telemetry::init(&LogSettings {
        format: "text".into(),
        level: "warn".into(),
    });
    let db = BenchDatabase::create(&args.server.database_url).await?;
    eprintln!("database {}", db.name);
    let measured = run(&args, &db).await;
    let dropped = db.drop_now().await;
    let all_committed = measured?;
    dropped?;
    anyhow::ensure!(all_committed, "some 2xx answers have no committed row");
    Ok(())
}

/// Starts paymirror and the yardsticks, runs the pairs, stops everything, prints.
/// Returns whether every ingest run committed a row for every 2xx.
async fn run(args: &Args, db: &BenchDatabase) -> anyhow::Result<bool> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings =
        Settings::load_from(&dir)?.pointed_at(db.url.as_str(), "http://127.0.0.1:9", MERCHANT, "-");
    settings.sync.enabled = false;
    settings.log.level = "warn".into();
    let pool_size = settings.database.max_connections;
    let app = Application::build(settings).await?;
    let paymirror_base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let serving = tokio::spawn(app.run_until_stopped(stop.clone()));

    // The harness's own connections, so that counting rows takes none of the apps'.
    let harness = connect(db, 2).await?;
    database::create_yardstick_tables(&harness).await?;
    database::seed_payments(&harness, args.ids).await?;
    let token = paymirror::tokens::create_token(&harness, "bench", &[]).await?;

    // One pool for the yardsticks (only one runs at a time), as large as paymirror's.
    let pool = connect(db, pool_size).await?;
    let (group_commit, group_writer) = yardsticks::group_commit_receiver(pool.clone());
    let served = [
        yardsticks::serve(yardsticks::naive_receiver(pool.clone()), stop.clone()).await?,
        yardsticks::serve(group_commit, stop.clone()).await?,
        yardsticks::serve(yardsticks::bare_reads(pool.clone()), stop.clone()).await?,
        yardsticks::serve(yardsticks::noop(), stop.clone()).await?,
    ];
    let endpoints = Endpoints {
        paymirror: paymirror_base,
        token,
        naive: served[0].base.clone(),
        group_commit: served[1].base.clone(),
        reads: served[2].base.clone(),
        noop: served[3].base.clone(),
    };
    check_reads_answer(&endpoints).await?;

    let measured = run_pairs(args, &endpoints, &harness).await;
    stop.cancel();
    for s in served {
        let _ = s.task.await;
    }
    group_writer.abort();
    serving.await.context("paymirror task")??;
    let results = measured?;
    println!(
        "\n## paymirror benchmark — {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!("- machine: {}", report::describe_machine());
    println!(
        "- load: {}",
        report::describe_shape(shape(args), args.rounds)
    );
    report::print_summary(&results);
    report::print_runs(&results);
    Ok(report::print_ingest_checks(&results))
}

/// Runs each selected pair in turn.
async fn run_pairs(
    args: &Args,
    endpoints: &Endpoints,
    harness: &PgPool,
) -> anyhow::Result<Vec<(pairs::Pair, Vec<pairs::Run>)>> {
    let selected = if args.only.is_empty() {
        PairName::ALL.to_vec()
    } else {
        PairName::ALL
            .into_iter()
            .filter(|p| args.only.contains(p))
            .collect()
    };
    let warmup = Shape {
        duration: Duration::from_secs(args.warmup),
        ..shape(args)
    };
    let mut results = Vec::new();
    for name in selected {
        eprintln!("pair {name}");
        database::settle(harness).await?;
        let pair = pair(name, endpoints);
        let runs = run_pair(&pair, harness, shape(args), args.rounds, warmup).await?;
        results.push((pair, runs));
    }
    Ok(results)
}

fn shape(args: &Args) -> Shape {
    Shape {
        threads: args.threads,
        connections: args.connections,
        duration: Duration::from_secs(args.duration),
        ids: args.ids,
    }
}

async fn connect(db: &BenchDatabase, size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(size)
        .connect(db.url.as_str())
        .await
        .context("connecting to the run's database")
}

/// Fails unless both read sides answer a filled payment with its document: a read
/// pair measured against 404s would measure nothing.
async fn check_reads_answer(at: &Endpoints) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let ours: serde_json::Value = http
        .get(format!("{}/v1/payins/P-1", at.paymirror))
        .bearer_auth(&at.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    anyhow::ensure!(
        ours["status"] == "SUCCESS" && ours["platform"]["process"]["status"] == "SUCCESS",
        "paymirror did not serve the filled payment P-1: {ours}"
    );
    let bare: serde_json::Value = http
        .get(format!("{}/v1/payins/P-1", at.reads))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    anyhow::ensure!(
        bare == ours["platform"],
        "the bare read serves another document"
    );
    Ok(())
}
