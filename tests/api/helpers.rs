use std::time::Duration;

use paymirror::app::Application;
use paymirror::config::Settings;
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Faults, NewPayment, Simulator, SimulatorConfig};
use paymirror::sync::SyncWorker;
use reqwest::{Response, Url};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// The server every test database is created on: `DATABASE_URL` or the local default.
pub fn server_url() -> Url {
    let raw = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = Url::parse(&raw).expect("DATABASE_URL is a URL");
    url.set_path("/postgres");
    url
}

/// A fresh database that is dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: Url,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let name = format!("paymirror_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(server_url().as_str())
            .await
            .expect("Postgres is reachable");
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut conn)
            .await
            .expect("create database");
        let mut url = server_url();
        url.set_path(&format!("/{name}"));
        TestDatabase { name, url }
    }

    /// Runs `sql` against the server's maintenance database (for ALTER DATABASE and the like).
    pub async fn admin(&self, sql: &str) {
        let mut conn = PgConnection::connect(server_url().as_str())
            .await
            .expect("Postgres is reachable");
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("admin statement");
    }

    /// Makes the database refuse connections and drops the existing ones: Postgres "down" for this app.
    pub async fn take_down(&self) {
        self.admin(&format!(
            r#"alter database "{}" with allow_connections false"#,
            self.name
        ))
        .await;
        self.admin(&format!(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{}'",
            self.name
        ))
        .await;
    }

    pub async fn bring_up(&self) {
        self.admin(&format!(
            r#"alter database "{}" with allow_connections true"#,
            self.name
        ))
        .await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!(r#"drop database if exists "{}" with (force)"#, self.name);
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(server_url().as_str()).await?;
                sqlx::query(&sql).execute(&mut conn).await.map(|_| ())
            })
            .map_err(std::io::Error::other)
        })
        .join();
    }
}

/// Test settings: the project's config files, a fresh database, port 0, workers off
/// (tests drive [`SyncWorker::run_until_idle`]) unless a test turns them on.
pub fn test_settings(db: &TestDatabase, platform_base_url: &str) -> Settings {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut settings = Settings::load_from(&dir)
        .expect("configuration loads")
        .pointed_at(db.url.as_str(), platform_base_url, "M1", "sim-secret");
    settings.database.acquire_timeout = Duration::from_millis(1000);
    settings.database.max_connections = 5;
    settings.database.read_lanes = 1;
    settings.sync.enabled = false;
    settings.sync.poll_interval = Duration::from_millis(100);
    settings.sync.backoff_base = Duration::from_millis(10);
    settings.sync.backoff_cap = Duration::from_millis(50);
    settings
}

/// The application under test, running on 127.0.0.1.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub worker: SyncWorker,
    /// Every merchant's worker, the default merchant's first.
    pub workers: Vec<SyncWorker>,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts the app with no platform behind it (for tests that never fetch).
    pub async fn spawn() -> TestApp {
        let db = TestDatabase::create().await;
        let settings = test_settings(&db, "http://127.0.0.1:9");
        TestApp::spawn_with(db, settings).await
    }

    pub async fn spawn_with(db: TestDatabase, settings: Settings) -> TestApp {
        let app = Application::build(settings)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let pool = app.pool().clone();
        let worker = app.worker();
        let workers = app.workers();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            address,
            pool,
            worker,
            workers,
            http: reqwest::Client::new(),
            db,
            shutdown,
            task: Some(task),
        }
    }

    /// The worker of a configured merchant.
    pub fn worker_for(&self, merchant: &str) -> Option<&SyncWorker> {
        self.workers
            .iter()
            .find(|w| &**w.merchant_code() == merchant)
    }

    pub async fn post_callback(&self, kinds: &str, body: impl Into<reqwest::Body>) -> Response {
        self.http
            .post(format!("{}/callbacks/{kinds}", self.address))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("callback request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("GET request")
    }

    /// GETs `path` and returns its JSON body (panics on a body that is not JSON).
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> serde_json::Value {
        self.get(path, token).await.json().await.expect("JSON")
    }

    pub async fn post(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.post(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST request")
    }

    /// Creates an API token with the given permissions, as `paymirror tokens create` does.
    pub async fn token(
        &self,
        account: &str,
        permissions: &[paymirror::tokens::Permission],
    ) -> String {
        paymirror::tokens::create_token(&self.pool, account, permissions, &[])
            .await
            .expect("token created")
    }

    /// Stops the server and workers and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("app task joins")
                .expect("app stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Asserts the pinned error body and returns its message.
pub async fn assert_error(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], 0, "{body}");
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    assert_eq!(body["name"].as_str(), reason, "{body}");
    let message = body["message"]
        .as_str()
        .expect("message is a string")
        .to_owned();
    assert!(!message.is_empty());
    message
}

/// Starts the app against a fresh simulator. With `callbacks_to_app`, the simulator
/// calls the app back like the platform would; otherwise tests post callbacks themselves.
pub async fn spawn_with_simulator(
    configure: impl FnOnce(&mut Settings),
    sim_config: SimulatorConfig,
    callbacks_to_app: bool,
) -> (TestApp, Simulator) {
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulator");
    let sim_url = format!(
        "http://{}",
        sim_listener.local_addr().expect("simulator address")
    );
    let db = TestDatabase::create().await;
    let mut settings = test_settings(&db, &sim_url);
    configure(&mut settings);
    let app = TestApp::spawn_with(db, settings).await;
    let sim_config = SimulatorConfig {
        callback_base_url: callbacks_to_app.then(|| app.address.clone()),
        callback_retry_interval: Duration::from_millis(100),
        ..sim_config
    };
    let sim = Simulator::start(sim_listener, sim_config)
        .await
        .expect("simulator starts");
    (app, sim)
}

/// A payment the simulator keeps in PROCESSING until the test moves it.
/// Gives each of `ids` a dead sync: the platform answers 500 while each payout's
/// callback is synced (the app must have no retry age and a breaker that stays closed).
pub async fn kill_syncs(app: &TestApp, sim: &Simulator, ids: &[&str]) {
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for id in ids {
        sim.create_payment(payment(PaymentKind::Payout, id, "3.00"))
            .await;
        app.post_callback("payouts", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
    }
    app.worker.run_until_idle().await.expect("worker");
    sim.set_faults(Faults::default());
}

pub fn payment(kind: PaymentKind, id: &str, amount: &str) -> NewPayment {
    NewPayment::processing(
        kind,
        PaymentId::parse(id).expect("valid id"),
        amount.parse().expect("decimal"),
    )
}

/// Every platform request the simulator received, as (path, answer status).
pub fn request_trail(sim: &Simulator) -> Vec<(String, u16)> {
    sim.requests()
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect()
}

/// Platform requests the simulator received for one path.
pub fn requests_for(sim: &Simulator, path: &str) -> usize {
    sim.requests().iter().filter(|r| r.path == path).count()
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
/// For state with no event to await, such as a row written by another task.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `paymirror serve` as its own process against `db`, listening on `port`, with the
/// platform at `platform`; the caller adds its own settings and spawns it (killed on drop).
pub fn serve_command(db: &TestDatabase, port: u16, platform: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_paymirror"));
    command
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", db.url.as_str())
        .env("PAYMIRROR__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PAYMIRROR__PLATFORM__BASE_URL", platform)
        .env("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1")
        .env("PAYMIRROR__PLATFORM__SECRET", "sim-secret")
        .env("PAYMIRROR__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Waits until the server at `base` answers `/readyz` with 200.
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    eventually(Duration::from_secs(30), || async {
        let ready = http.get(format!("{base}/readyz")).send().await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
}

/// Returns a TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Returns the page a `Link: <…>; rel="next"` header names, resolved against `page`
/// (the URL that answered), or `None` without one.
pub fn next_page(page: &Url, answer: &Response) -> Option<Url> {
    let link = answer.headers().get(reqwest::header::LINK)?.to_str().ok()?;
    let (target, params) = link.split_once(';')?;
    assert_eq!(params.trim(), r#"rel="next""#, "{link}");
    let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
    Some(page.join(target).expect("a URL the client can follow"))
}

/// Claims every due job once and processes each: one pass of the worker, whatever
/// the outcome, for tests that look at each attempt.
pub async fn run_once(app: &TestApp) -> Vec<paymirror::sync::JobOutcome> {
    let jobs = paymirror::queue::claim_due_jobs(&app.pool, "M1", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    let mut outcomes = Vec::new();
    for job in jobs {
        outcomes.push(app.worker.process_job(job).await);
    }
    outcomes
}
