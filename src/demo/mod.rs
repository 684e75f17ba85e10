//! `paymirror demo`: the simulator, the service and sample traffic on this machine,
//! then a summary of whether the mirror ended up equal to the platform.

mod database;
mod report;
mod traffic;

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::Application;
use crate::config::{MerchantEntry, Settings};
use crate::domain::PaymentKind;
use crate::simulator::{Faults, NewPayment, SimMerchant, Simulator, SimulatorConfig};

pub use report::{Comparison, DemoReport, Mismatch};

/// The secret the demo's simulator accepts and its paymirror uses.
const SECRET: &str = "sim-secret";
/// The second merchant's secret, and the variable its `[[merchants]]` entry names.
const SECOND_SECRET: &str = "sim-secret-2";
const SECOND_SECRET_ENV: &str = "PAYMIRROR_DEMO_SECOND_SECRET";
/// Payments are created over this long at the start.
const RAMP: Duration = Duration::from_secs(3);
/// How often the demo creates payments and compares the mirror with the simulator.
const TICK: Duration = Duration::from_millis(100);

/// Flags of `paymirror demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// How many payments to create (60 % payins, 40 % payouts).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub payments: u32,
    /// Postgres URL; the database is created if missing and may be reused across runs.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/paymirror_demo",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Give up waiting for the mirror to match the simulator after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Each payment turns final 1 s to this many seconds after it is created.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub finalize_within_secs: u64,
}

/// Runs the whole demo and returns what it measured; the caller decides what a
/// mismatch means (the CLI exits non-zero). Prints one progress line per second.
pub async fn run(args: DemoArgs) -> anyhow::Result<DemoReport> {
    database::ensure_database(&args.database_url).await?;
    let prefix = traffic::run_prefix();
    // A merchant of its own per run: workers claim only their merchant's sync jobs, so
    // jobs an interrupted earlier run left in a reused database are never fetched here.
    let merchant_code = format!("M1-{prefix}");
    // And a second merchant code, as a business enrolled twice runs them: its own
    // secret, limit, callbacks URL and workers.
    let second = format!("M2-{prefix}");
    let merchants = [merchant_code.clone(), second.clone()];
    let plan = traffic::plan_payments(
        &prefix,
        args.payments as usize,
        Duration::from_secs(args.finalize_within_secs),
    )?;
    // The simulator's address must be known before the app's settings, and the
    // app's before the simulator's callbacks: bind first, start the simulator last.
    let sim_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulator's listener")?;
    let sim_url = format!("http://{}", sim_listener.local_addr()?);
    let app = Application::build(demo_settings(&args, &sim_url, &merchant_code, &second)?)
        .await
        .context("starting paymirror")?;
    let app_url = format!("http://127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let simulator = Simulator::start(
        sim_listener,
        simulator_config(&app_url, &merchant_code, &second),
    )
    .await?;
    let stop = CancellationToken::new();
    let app_task = tokio::spawn(app.run_until_stopped(stop.clone()));
    println!(
        "simulator at {sim_url}, paymirror at {app_url}, run {prefix}: {} payments",
        plan.len()
    );

    let started = Instant::now();
    let planned = plan.len();
    let driving = Drive {
        app: &app_task,
        pool: &pool,
        merchants: &merchants,
        simulator: &simulator,
        prefix: &prefix,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let outcome = driving.run(plan).await;

    // Stop paymirror first (its fetches would fail against a stopped simulator);
    // callbacks it already accepted are committed before it returns.
    stop.cancel();
    let stopped = app_task.await;
    simulator.shutdown();
    let (comparison, consistent_at) = outcome?;
    stopped.context("the paymirror task failed")??;

    let stats = simulator.stats();
    let (mut received, mut unknown) = (0, 0);
    for merchant in &merchants {
        let (r, u) = report::count_callbacks(&pool, merchant, &prefix).await?;
        received += r;
        unknown += u;
    }
    // Each payment is announced once on creation and once when it turns final.
    let announcements = (comparison.total + comparison.final_in_simulator) as i64;
    let mut by_status = std::collections::BTreeMap::new();
    let mut payins = 0;
    let created: Vec<_> = merchants
        .iter()
        .flat_map(|m| simulator.payments_as(m))
        .collect();
    for (kind, _, status) in &created {
        payins += usize::from(*kind == PaymentKind::Payin);
        *by_status.entry(status.clone()).or_default() += 1;
    }
    Ok(DemoReport {
        prefix,
        planned,
        payins,
        payouts: created.len() - payins,
        by_status,
        callbacks_received: received,
        unknown_event_callbacks: unknown,
        repeated_callbacks: (received - unknown - announcements).max(0),
        last_callback_to_consistent: consistent_at.map(|at| {
            stats
                .last_callback_sent_at
                .map_or(Duration::ZERO, |last| at.saturating_duration_since(last))
        }),
        simulator: stats,
        timed_out: consistent_at.is_none(),
        comparison,
        elapsed: started.elapsed(),
    })
}

/// The project's configuration, pointed at the demo's database and simulator.
fn demo_settings(
    args: &DemoArgs,
    sim_url: &str,
    merchant_code: &str,
    second: &str,
) -> anyhow::Result<Settings> {
    let mut settings =
        base_settings()?.pointed_at(&args.database_url, sim_url, merchant_code, SECRET);
    settings.sync.enabled = true;
    // The second merchant as a `[[merchants]]` entry would be, its secret as if read
    // from the variable it names.
    settings.merchants.push(MerchantEntry {
        code: second.to_owned(),
        secret_env: SECOND_SECRET_ENV.into(),
        max_rps: 10,
        base_url: None,
    });
    settings
        .merchant_secrets
        .insert(SECOND_SECRET_ENV.into(), SECOND_SECRET.to_owned().into());
    Ok(settings)
}

/// The layered configuration: files where they exist, else the compiled-in defaults,
/// so the demo runs from any directory.
fn base_settings() -> anyhow::Result<Settings> {
    Settings::load()
}

/// A platform with the real throttle, quick callback retries and some untidy callbacks.
fn simulator_config(app_url: &str, merchant_code: &str, second: &str) -> SimulatorConfig {
    SimulatorConfig {
        merchant_code: merchant_code.into(),
        secret: SECRET.into(),
        merchants: vec![SimMerchant {
            code: second.into(),
            secret: SECOND_SECRET.into(),
            max_rps: 10,
        }],
        callback_base_url: Some(app_url.into()),
        callback_retry_interval: Duration::from_millis(500),
        faults: Faults {
            duplicate_callback_rate: 0.2,
            unknown_event_rate: 0.1,
            ..Faults::default()
        },
        ..SimulatorConfig::default()
    }
}

/// The traffic loop's view of the running demo.
struct Drive<'a> {
    app: &'a JoinHandle<anyhow::Result<()>>,
    pool: &'a PgPool,
    /// The default merchant first; payments alternate between them.
    merchants: &'a [String],
    simulator: &'a Simulator,
    prefix: &'a str,
    timeout: Duration,
}

impl Drive<'_> {
    /// Creates the planned payments over [`RAMP`], comparing the mirror with the
    /// simulator every [`TICK`]; returns the last comparison and when it first
    /// found everything consistent (`None`: the timeout came first).
    async fn run(&self, plan: Vec<NewPayment>) -> anyhow::Result<(Comparison, Option<Instant>)> {
        let total = plan.len();
        let ticks = (RAMP.as_millis() / TICK.as_millis()).max(1) as usize;
        let per_tick = total.div_ceil(ticks);
        let mut pending = plan.into_iter();
        let mut created = 0;
        let started = Instant::now();
        let mut next_progress = started + Duration::from_secs(1);
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if self.app.is_finished() {
                anyhow::bail!("paymirror stopped unexpectedly");
            }
            for payment in pending.by_ref().take(per_tick) {
                let merchant = &self.merchants[created % self.merchants.len()];
                self.simulator.create_payment_as(merchant, payment).await?;
                created += 1;
            }
            let comparison =
                report::compare(self.pool, self.merchants, self.prefix, self.simulator)
                    .await
                    .context("comparing the mirror with the simulator")?;
            let now = Instant::now();
            if created == total && comparison.consistent() {
                return Ok((comparison, Some(now)));
            }
            if now >= next_progress {
                self.print_progress(started, created, total, &comparison)
                    .await?;
                next_progress += Duration::from_secs(1);
            }
            if now.duration_since(started) >= self.timeout {
                return Ok((comparison, None));
            }
        }
    }

    /// Prints `[ 12s] created 300/300 · callbacks 412 · platform requests 187 (429s: 0) · mirrored final 120/300`.
    async fn print_progress(
        &self,
        started: Instant,
        created: usize,
        total: usize,
        comparison: &Comparison,
    ) -> anyhow::Result<()> {
        let mut callbacks = 0;
        for merchant in self.merchants {
            let (n, _) = report::count_callbacks(self.pool, merchant, self.prefix)
                .await
                .context("counting callbacks")?;
            callbacks += n;
        }
        let stats = self.simulator.stats();
        println!(
            "[{:>3}s] created {created}/{total} · callbacks {callbacks} · platform requests {} (429s: {}) · mirrored final {}/{total}",
            started.elapsed().as_secs(),
            stats.requests,
            stats.by_status.get(&429).copied().unwrap_or(0),
            comparison.mirrored_final,
        );
        Ok(())
    }
}
