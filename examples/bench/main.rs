//! Benchmark suite: paymirror's hot paths beside the simplest code that could serve
//! them, under the same wrk load, interleaved, with the ratios.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- \
//!     [--only naive,group-commit,by-id,page,noop] [--rounds 2] [--duration 10] \
//!     [--connections 32] [--threads 1] [--warmup 2] [--ids 5000] [--in-process]
//! ```
//!
//! As deployed (the default): the release binary runs as `paymirror serve`, a process
//! of its own, on its default configuration (`info` logs to a pipe this program
//! drains, sync on against `paymirror simulator`, the default pool), on a database
//! created for the run. The read pairs run twice: first on that young database
//! (never analyzed: autovacuum is held off while they run), then, after the ingest
//! pairs, on the settled one (vacuumed and analyzed). The yardsticks run in this
//! process, each on 127.0.0.1:0 against the same database; the read yardsticks serve
//! the very bytes paymirror serves. `--in-process` measures the older set-up instead:
//! the app in this process, sync off, `warn` logs, every pair on a settled database.
//! Ingest runs check that every 2xx left its row committed; every run records
//! paymirror's resident memory. Needs `wrk` on the PATH.

mod batches;
mod database;
mod deployed;
mod exposition;
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
    /// The app in this process (sync off, `warn` logs, settled database only) instead
    /// of the release binary as deployed.
    #[arg(long)]
    in_process: bool,
    /// Extra environment for `paymirror serve` as deployed (`KEY=VALUE`, repeatable),
    /// to measure a setting against the default: `--paymirror-env PAYMIRROR__INBOX__WRITERS=2`.
    #[arg(long, value_parser = parse_env_pair)]
    paymirror_env: Vec<(String, String)>,
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
    let binary = if args.in_process {
        // Warnings only: paymirror's access log (INFO) would write a line per request.
        paymirror::telemetry::init(&LogSettings {
            format: "text".into(),
            level: "warn".into(),
        });
        None
    } else {
        Some(deployed::binary()?)
    };
    let db = BenchDatabase::create(&args.server.database_url).await?;
    eprintln!("database {}", db.name);
    let measured = match &binary {
        Some(binary) => run_deployed(&args, &db, binary).await,
        None => run(&args, &db).await,
    };
    paymirror::telemetry::finish();
    let dropped = db.drop_now().await;
    let all_committed = measured?;
    dropped?;
    anyhow::ensure!(all_committed, "some 2xx answers have no committed row");
    Ok(())
}

/// In process: starts paymirror and the yardsticks, runs the pairs on a settled
/// database, stops everything, prints. Returns whether every ingest run committed a
/// row for every 2xx.
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
    database::seed_payments(&harness, args.ids, true).await?;
    let token = paymirror::tokens::create_token(&harness, "bench", &[], &[]).await?;
    database::capture_documents(&harness, &paymirror_base, &token, args.ids).await?;

    let yardsticks = Yardsticks::start(db, pool_size, &stop).await?;
    let endpoints = yardsticks.endpoints(paymirror_base, None, token);
    check_reads_answer(&endpoints).await?;

    let measured = run_pairs(args, &endpoints, &harness, false).await;
    stop.cancel();
    yardsticks.stop().await;
    serving.await.context("paymirror task")??;
    let results = measured?;
    println!(
        "\n## paymirror benchmark, in process — {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!("- paymirror: in the bench's process, sync off, `warn` logs; settled database");
    println!("- machine: {}", report::describe_machine());
    println!(
        "- load: {}",
        report::describe_shape(shape(args), args.rounds)
    );
    report::print_summary(&results);
    report::print_runs(&results);
    report::print_batches(&results);
    Ok(report::print_ingest_checks(&results))
}

/// Runs each selected pair in turn. With `young_first`, the read pairs run first on
/// the young database (kept from autovacuum), before anything settles it.
async fn run_pairs(
    args: &Args,
    endpoints: &Endpoints,
    harness: &PgPool,
    young_first: bool,
) -> anyhow::Result<Vec<(pairs::Pair, Vec<pairs::Run>)>> {
    let selected: Vec<PairName> = if args.only.is_empty() {
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
    if young_first {
        for name in selected
            .iter()
            .copied()
            .filter(|p| matches!(p, PairName::ById | PairName::Page))
        {
            // paymirror analyzes tables Postgres never analyzed within seconds of
            // their first rows (`store::statistics`); autovacuum is held off.
            let analyzed = database::analyzed(harness).await?;
            eprintln!("pair {name} (young database; analyzed by paymirror: {analyzed})");
            let mut pair = pair(name, endpoints);
            pair.label = format!("{name}, young database");
            let runs = run_pair(&pair, harness, shape(args), args.rounds, warmup).await?;
            results.push((pair, runs));
        }
    }
    for name in selected {
        eprintln!("pair {name}");
        database::settle(harness).await?;
        let mut pair = pair(name, endpoints);
        if young_first && matches!(name, PairName::ById | PairName::Page) {
            pair.label = format!("{name}, settled database");
        }
        let runs = run_pair(&pair, harness, shape(args), args.rounds, warmup).await?;
        results.push((pair, runs));
    }
    Ok(results)
}

/// The yardsticks, served in this process: one pool for all of them (only one runs
/// at a time), as large as paymirror's and, like a bare app's, not pinging a
/// connection before each use.
struct Yardsticks {
    served: Vec<yardsticks::Served>,
    group_writer: tokio::task::JoinHandle<()>,
    group_tally: std::sync::Arc<batches::Tally>,
}

impl Yardsticks {
    async fn start(
        db: &BenchDatabase,
        size: u32,
        stop: &CancellationToken,
    ) -> anyhow::Result<Yardsticks> {
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .test_before_acquire(false)
            .connect(db.url.as_str())
            .await
            .context("connecting the yardsticks")?;
        let group_tally = std::sync::Arc::new(batches::Tally::default());
        let (group_commit, group_writer) =
            yardsticks::group_commit_receiver(pool.clone(), group_tally.clone());
        let served = vec![
            yardsticks::serve(yardsticks::naive_receiver(pool.clone()), stop.clone()).await?,
            yardsticks::serve(group_commit, stop.clone()).await?,
            yardsticks::serve(yardsticks::bare_reads(pool.clone()), stop.clone()).await?,
            yardsticks::serve(yardsticks::noop(), stop.clone()).await?,
        ];
        Ok(Yardsticks {
            served,
            group_writer,
            group_tally,
        })
    }

    fn endpoints(&self, paymirror: String, paymirror_pid: Option<u32>, token: String) -> Endpoints {
        Endpoints {
            paymirror,
            paymirror_pid,
            token,
            naive: self.served[0].base.clone(),
            group_commit: self.served[1].base.clone(),
            group_commit_tally: self.group_tally.clone(),
            reads: self.served[2].base.clone(),
            noop: self.served[3].base.clone(),
        }
    }

    /// Waits for the yardsticks to stop (the stop token must have fired).
    async fn stop(self) {
        for s in self.served {
            let _ = s.task.await;
        }
        self.group_writer.abort();
    }
}

/// As deployed: the simulator and `paymirror serve` from the release binary, the
/// yardsticks in this process; the read pairs on the young database, then every pair
/// on the settled one. Returns whether every ingest run committed a row for every 2xx.
async fn run_deployed(
    args: &Args,
    db: &BenchDatabase,
    binary: &std::path::Path,
) -> anyhow::Result<bool> {
    let simulator = deployed::start_simulator(binary, MERCHANT).await?;
    let paymirror = deployed::start_paymirror(
        binary,
        db.url.as_str(),
        &simulator.base,
        MERCHANT,
        &args.paymirror_env,
    )
    .await?;
    eprintln!(
        "paymirror serve (pid {}) at {}",
        paymirror.pid, paymirror.base
    );
    let harness = connect(db, 2).await?;
    database::keep_young(&harness).await?;
    database::create_yardstick_tables(&harness).await?;
    database::seed_payments(&harness, args.ids, false).await?;
    let token = paymirror::tokens::create_token(&harness, "bench", &[], &[]).await?;
    database::capture_documents(&harness, &paymirror.base, &token, args.ids).await?;

    let stop = CancellationToken::new();
    // paymirror's default pool size, so the yardsticks hold as many connections.
    let pool_size = Settings::load_from(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config"))?
        .database
        .max_connections;
    let yardsticks = Yardsticks::start(db, pool_size, &stop).await?;
    let endpoints = yardsticks.endpoints(paymirror.base.clone(), Some(paymirror.pid), token);
    check_reads_answer(&endpoints).await?;

    let measured = run_pairs(args, &endpoints, &harness, true).await;
    let dropped = dropped_log_lines(&paymirror.base).await;
    stop.cancel();
    yardsticks.stop().await;
    let logged = paymirror.stop().await?;
    simulator.stop().await?;
    let results = measured?;
    println!(
        "\n## paymirror benchmark, as deployed — {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "- paymirror: `{} serve`, its own process, default configuration (info logs, sync on \
         against `paymirror simulator`, pool {pool_size}); it logged {} lines ({:.1} MiB) to the \
         pipe this bench drained, and dropped {}",
        binary.display(),
        logged.lines,
        logged.bytes as f64 / 1024.0 / 1024.0,
        dropped.map_or("? (no answer from /metrics)".into(), |d| d.to_string())
    );
    println!("- machine: {}", report::describe_machine());
    println!(
        "- load: {}",
        report::describe_shape(shape(args), args.rounds)
    );
    report::print_summary(&results);
    report::print_runs(&results);
    report::print_batches(&results);
    Ok(report::print_ingest_checks(&results))
}

fn parse_env_pair(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{pair:?} is not KEY=VALUE"))
}

/// paymirror's `paymirror_log_lines_dropped_total`, from its `/metrics`.
async fn dropped_log_lines(base: &str) -> Option<u64> {
    exposition::Exposition::scrape(base)
        .await?
        .value("paymirror_log_lines_dropped_total")
        .map(|v| v as u64)
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

/// Fails unless both read sides answer with the same bytes, a filled payment's
/// document and the first page: a read pair measured against 404s, or against a
/// smaller answer, would measure nothing.
async fn check_reads_answer(at: &Endpoints) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for path in ["/v1/payins/P-1", "/v1/payins?limit=100"] {
        let ours = http
            .get(format!("{}{path}", at.paymirror))
            .bearer_auth(&at.token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let bare = http
            .get(format!("{}{path}", at.reads))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        anyhow::ensure!(
            ours == bare,
            "the bare read serves other bytes for {path}:\n{}\n{}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&bare)
        );
    }
    let document: serde_json::Value = http
        .get(format!("{}/v1/payins/P-1", at.paymirror))
        .bearer_auth(&at.token)
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        document["status"] == "SUCCESS",
        "paymirror did not serve the filled payment P-1: {document}"
    );
    Ok(())
}
