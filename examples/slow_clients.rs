//! Benchmark: honest callbacks answered while slow clients trickle their headers.
//!
//! ```sh
//! cargo run --example slow_clients -- [--slow-clients 300] [--seconds 8] \
//!     [--honest-workers 8] [--trickle-ms 500] [--header-timeout-ms 5000] \
//!     [--hostile-every-ms 0]
//! ```
//!
//! Starts the real app (sync disabled, so only the HTTP edge and the inbox work) on a
//! database of its own, created on `--database-url` and dropped afterwards. Opens
//! `--slow-clients` connections that each send one header byte every `--trickle-ms`
//! and never finish, and, beside them, `--honest-workers` loops posting callbacks for
//! `--seconds`. Prints how many honest callbacks were answered (and with what), their
//! p50/p99/max latency, and how many slow clients the server closed, and after how long.
//! With `--hostile-every-ms N`, one more client posts a callback `jsonb` cannot store
//! as received (a NUL) every N ms: no honest callback may lose its 200 to it.

#[path = "slow_clients/clients.rs"]
mod clients;
#[path = "common/scratch_db.rs"]
mod scratch_db;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use clients::{run_honest_worker, run_hostile_client, run_slow_client, Honest, Slow};
use paymirror::app::Application;
use paymirror::config::{LogSettings, Settings};
use scratch_db::{with_scratch_database, ServerArg};

#[derive(Parser, Debug)]
#[command(about = "Measures honest callbacks beside slow clients trickling headers")]
struct Args {
    /// Connections that trickle headers and never finish them.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    slow_clients: u32,
    /// How long honest callbacks run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Honest callback loops running at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    honest_workers: u32,
    /// Pause between two header bytes of a slow client.
    #[arg(long, default_value_t = 500)]
    trickle_ms: u64,
    /// The server's header-read timeout (server.header_read_timeout_ms).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_ms: u64,
    /// Every this many ms, a hostile client posts a callback with a NUL (0: none).
    #[arg(long, default_value_t = 0)]
    hostile_every_ms: u64,
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

/// Starts the app, runs slow and honest clients side by side, stops the app, prints.
async fn run(args: &Args, db_url: &Url) -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings =
        Settings::load_from(&dir)?.pointed_at(db_url.as_str(), "http://127.0.0.1:9", "M1", "-");
    settings.sync.enabled = false;
    settings.server.header_read_timeout = Duration::from_millis(args.header_timeout_ms);
    let app = Application::build(settings).await?;
    let address = format!("127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let serving = tokio::spawn(app.run_until_stopped(stop.clone()));

    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let trickle = Duration::from_millis(args.trickle_ms);
    let slow: Vec<_> = (0..args.slow_clients)
        .map(|_| tokio::spawn(run_slow_client(address.clone(), trickle, end)))
        .collect();
    let http = reqwest::Client::new();
    let honest: Vec<_> = (0..args.honest_workers)
        .map(|w| tokio::spawn(run_honest_worker(http.clone(), address.clone(), w, end)))
        .collect();

    let hostile = (args.hostile_every_ms > 0).then(|| {
        let every = Duration::from_millis(args.hostile_every_ms);
        tokio::spawn(run_hostile_client(
            http.clone(),
            address.clone(),
            every,
            end,
        ))
    });
    let mut answered = Honest::default();
    for worker in honest {
        answered.merge(worker.await.context("honest worker")?);
    }
    let mut cut = Vec::new();
    for client in slow {
        cut.push(client.await.context("slow client")?);
    }
    let hostile = match hostile {
        Some(task) => Some(task.await.context("hostile client")?),
        None => None,
    };
    stop.cancel();
    serving.await.context("app task")??;
    print_figures(args, started.elapsed(), &mut answered, &cut);
    if let Some(h) = hostile {
        println!(
            "  hostile callbacks (NUL)      {} sent: {} stored in safe form, {} refused 4xx, {} failed",
            h.sent, h.ok, h.rejected, h.failed
        );
    }
    Ok(())
}

fn print_figures(args: &Args, wall: Duration, honest: &mut Honest, slow: &[Slow]) {
    let closed: Vec<Duration> = slow.iter().filter_map(|s| s.closed_after).collect();
    let refused_connect = slow.iter().filter(|s| s.connect_failed).count();
    println!(
        "\nslow_clients — {} slow clients (a byte every {} ms), header timeout {} ms, {} honest workers, {:.1} s",
        args.slow_clients,
        args.trickle_ms,
        args.header_timeout_ms,
        args.honest_workers,
        wall.as_secs_f64()
    );
    println!("  honest callbacks answered    {}", honest.latencies.len());
    println!("    of which 200               {}", honest.ok);
    println!(
        "    other status / error       {} / {}",
        honest.other_status, honest.errors
    );
    println!(
        "    rate                       {:.0}/s",
        honest.latencies.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "    latency p50                {}",
        ms(honest.percentile(0.50))
    );
    println!(
        "    latency p99                {}",
        ms(honest.percentile(0.99))
    );
    println!(
        "    latency max                {}",
        ms(honest.percentile(1.0))
    );
    println!(
        "  slow clients closed by server {} of {} (connect failed: {refused_connect})",
        closed.len(),
        slow.len()
    );
    if let (Some(first), Some(last)) = (closed.iter().min(), closed.iter().max()) {
        println!(
            "    closed after               {} .. {}",
            ms(Some(*first)),
            ms(Some(*last))
        );
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}
