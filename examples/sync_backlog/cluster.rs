//! One benchmark run's moving parts: a fresh database, the simulator, and N
//! paymirror replicas sharing that database (and so the platform budget).

use std::path::Path;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use paymirror::app::Application;
use paymirror::config::Settings;
use paymirror::simulator::{Simulator, SimulatorConfig};

/// The merchant and secret the simulator accepts and every replica uses.
pub const MERCHANT: &str = "M1";
const SECRET: &str = "sim-secret";

pub use crate::scratch_db::BenchDatabase;

/// The simulator and the running replicas of one run.
pub struct Cluster {
    pub simulator: Simulator,
    /// `http://127.0.0.1:PORT/callbacks/payins` of each replica.
    pub callback_urls: Vec<String>,
    pub pool: PgPool,
    stop: CancellationToken,
    replicas: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Cluster {
    /// Builds `replicas` applications on `db` (each migrating; sqlx serialises that),
    /// then starts the simulator with the real throttle and no faults, then the replicas.
    pub async fn start(db: &BenchDatabase, replicas: u32, max_rps: u32) -> anyhow::Result<Self> {
        let sim_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the simulator's listener")?;
        let sim_url = format!("http://{}", sim_listener.local_addr()?);
        let mut apps = Vec::new();
        for n in 0..replicas {
            let app = Application::build(replica_settings(db, &sim_url, max_rps)?)
                .await
                .with_context(|| format!("building replica {n}"))?;
            apps.push(app);
        }
        let first = apps.first().context("at least one replica is needed")?;
        let pool = first.pool().clone();
        let callback_urls = apps
            .iter()
            .map(|app| format!("http://127.0.0.1:{}/callbacks/payins", app.port()))
            .collect();
        let config = SimulatorConfig {
            merchant_code: MERCHANT.into(),
            secret: SECRET.into(),
            max_rps,
            ..SimulatorConfig::default()
        };
        let simulator = Simulator::start(sim_listener, config).await?;
        let stop = CancellationToken::new();
        let replicas = apps
            .into_iter()
            .map(|app| tokio::spawn(app.run_until_stopped(stop.clone())))
            .collect();
        Ok(Cluster {
            simulator,
            callback_urls,
            pool,
            stop,
            replicas,
        })
    }

    /// Returns an error if a replica stopped on its own (the run is then meaningless).
    pub fn check_replicas(&self) -> anyhow::Result<()> {
        if self.replicas.iter().any(|r| r.is_finished()) {
            anyhow::bail!("a paymirror replica stopped unexpectedly");
        }
        Ok(())
    }

    /// Stops every replica (draining in-flight work), then the simulator.
    pub async fn shut_down(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let mut outcome = Ok(());
        for (n, replica) in self.replicas.into_iter().enumerate() {
            let stopped = replica
                .await
                .with_context(|| format!("replica {n} panicked"))
                .and_then(|r| r.with_context(|| format!("replica {n} failed")));
            if let Err(e) = stopped {
                outcome = Err(e);
            }
        }
        self.simulator.shutdown();
        self.pool.close().await;
        outcome
    }
}

/// The project's configuration, pointed at this run's database and simulator.
fn replica_settings(db: &BenchDatabase, sim_url: &str, max_rps: u32) -> anyhow::Result<Settings> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings =
        Settings::load_from(&dir)?.pointed_at(db.url.as_str(), sim_url, MERCHANT, SECRET);
    settings.platform.max_rps = max_rps;
    settings.platform.shared_budget = true;
    settings.sync.enabled = true;
    settings.log.level = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into());
    Ok(settings)
}
