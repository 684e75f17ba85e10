//! `Application::build(Settings)`, used by `main` and by tests (port 0), and `router(state)`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use futures_util::future::join_all;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use crate::config::{PlatformSettings, Settings};
use crate::db::notices::{self, Hearer};
use crate::domain::Merchants;
use crate::http::admission::CallbackSlots;
use crate::http::server::{self, answer_within};
use crate::http::stall::StallTimeoutLayer;
use crate::http::{
    error_response, probes, requests, AppParts, AppState, ConsoleState, MerchantPlatform,
};
use crate::inbox::Inbox;
use crate::migrations::migrate;
use crate::ops::{metrics_handle, Tally};
use crate::platform::{PlatformClient, RateLimiter, SharedBudget, WINDOW};
use crate::store::CHANGES_CHANNEL;
use crate::store::{
    analyze_young_tables_periodically, backfill_documents_periodically, merge_pending_periodically,
    prune_periodically, ChangeSignal,
};
use crate::sync::{SyncWake, SyncWorker};
use crate::tokens::{self, CheckedTokens, UsageLog};
use crate::{api, callbacks, console, openapi, queue};

/// How often API token use (last use, count) is written.
const TOKEN_USE_FLUSH: Duration = Duration::from_secs(2);
/// How often tables Postgres never analyzed are looked for (and analyzed): one catalogue
/// query. Until `payments` is analyzed, the foreign-key check of every new sync job
/// (Postgres's own statement, planned once per connection) may walk the merchant's
/// payments through `payments_by_merchant_position`; callbacks for new payments then
/// cost more the more there are. At 5 s, 8 s of new payments on a fresh database read
/// 26 million index entries that way; at 1 s, 11 million (BENCHMARKS.md, stop 29).
const YOUNG_TABLES: Duration = Duration::from_secs(1);
/// How often expired and revoked console sessions are deleted.
const SESSION_PRUNING: Duration = Duration::from_secs(60);
/// The pause between two batches of the stored documents' backfill (an upgraded
/// database's payments, once: about 10,000 a second at most).
const DOCUMENT_BACKFILL_PAUSE: Duration = Duration::from_millis(100);

/// A built, not yet running, paymirror: bound listener, migrated database, writers started.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// One per merchant, the default merchant's first.
    workers: Vec<SyncWorker>,
    /// Wakes every merchant's workers when a sync is queued.
    wake: SyncWake,
    writers: Vec<JoinHandle<()>>,
    settings: Settings,
}

impl Application {
    /// Validates the settings, migrates the database (safe when replicas start together:
    /// one migrates while the others wait, see [`migrate`]), binds the listener and
    /// starts the callback writers.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.validate_for_serve()?;
        migrate(&settings.database).await?;
        let pool = settings.database.pool()?;
        let tally = Tally::default();
        // Each merchant has its own token, rate budget (shared across replicas),
        // pause, outage detection and workers: one merchant refused, throttled or
        // down never holds another's syncs.
        let mut workers = Vec::new();
        let mut clients = Vec::new();
        let wake = SyncWake::default();
        for merchant in settings.merchants()? {
            let platform = PlatformSettings {
                base_url: merchant.base_url,
                merchant_code: merchant.code,
                secret: merchant.secret,
                max_rps: merchant.max_rps,
                ..settings.platform.clone()
            };
            let code: Arc<str> = platform.merchant_code.as_str().into();
            let limiter = Arc::new(limiter(&pool, &platform).await?);
            let client =
                Arc::new(PlatformClient::new(&platform, limiter)?.counting_into(tally.clone()));
            workers.push(
                SyncWorker::new(
                    pool.clone(),
                    code.clone(),
                    client.clone(),
                    settings.sync.clone(),
                    settings.reconcile.clone(),
                )
                .counting_into(tally.clone())
                .woken_by(wake.clone()),
            );
            clients.push(MerchantPlatform {
                code,
                client,
                max_rps: platform.max_rps,
            });
        }
        let merchants = Merchants::new(workers.iter().map(|w| w.merchant_code().clone()).collect());
        let (inbox, writers) = Inbox::start(
            pool.clone(),
            &settings.inbox,
            settings.database.ping_after_idle,
            tally.clone(),
        );
        let addr = settings.server.listen_addr()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let lanes = crate::db::Lanes::new(
            pool.clone(),
            settings.database.read_lanes,
            settings.database.ping_after_idle,
            settings.database.acquire_timeout,
        );
        let state = AppState::new(AppParts {
            pool,
            lanes,
            merchants,
            inbox,
            callback_slots: CallbackSlots::new(&settings.server),
            metrics: metrics_handle(),
            changes: ChangeSignal::default(),
            token_use: UsageLog::default(),
            checked_tokens: CheckedTokens::default(),
            console: ConsoleState::new(&settings, tally, clients),
        });
        Ok(Application {
            listener,
            state,
            workers,
            wake,
            writers,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// The default merchant's worker, for driving syncs by hand (tests run it with
    /// `sync.enabled = false`).
    pub fn worker(&self) -> SyncWorker {
        self.workers[0].clone()
    }

    /// Every merchant's worker, the default merchant's first.
    pub fn workers(&self) -> Vec<SyncWorker> {
        self.workers.clone()
    }

    /// Serves HTTP and runs the sync workers until `shutdown` fires; then stops taking
    /// requests, lets in-flight callbacks commit and fetches finish (bounded by the
    /// grace period), and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            workers,
            wake,
            writers,
            settings,
        } = self;
        let worker_tasks: Vec<JoinHandle<()>> = if settings.sync.enabled {
            workers
                .into_iter()
                .map(|w| tokio::spawn(w.run(shutdown.clone())))
                .collect()
        } else {
            Vec::new()
        };
        // One LISTEN connection for the process: syncs queued, changes committed,
        // API tokens changed.
        let hearers: Vec<(&'static str, Arc<dyn Hearer>)> = vec![
            (queue::NOTIFY_CHANNEL, Arc::new(wake)),
            (CHANGES_CHANNEL, Arc::new(state.changes.clone())),
            (
                tokens::CHANGES_CHANNEL,
                Arc::new(state.checked_tokens.clone()),
            ),
        ];
        let listening = tokio::spawn(notices::listen(
            state.pool.clone(),
            hearers,
            shutdown.clone(),
        ));
        let pruning = tokio::spawn(prune_periodically(
            state.pool.clone(),
            settings.inbox.retention,
            settings.inbox.prune_interval.max(Duration::from_secs(1)),
            shutdown.clone(),
        ));
        let merging = tokio::spawn(merge_pending_periodically(
            state.pool.clone(),
            settings
                .inbox
                .merge_interval
                .max(Duration::from_millis(100)),
            shutdown.clone(),
        ));
        let statistics = tokio::spawn(analyze_young_tables_periodically(
            state.pool.clone(),
            YOUNG_TABLES,
            shutdown.clone(),
        ));
        let upkeep = tokio::spawn(crate::ops::keep_up(
            state.metrics.clone(),
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        let recording = tokio::spawn(state.token_use.clone().run(
            state.pool.clone(),
            TOKEN_USE_FLUSH,
            shutdown.clone(),
        ));
        let minutes = tokio::spawn(crate::ops::keep_minutes(
            state.pool.clone(),
            state.merchants.clone(),
            state.console.tally.clone(),
            state
                .console
                .settings
                .stats_flush
                .max(Duration::from_secs(1)),
            state.console.settings.stats_retention,
            shutdown.clone(),
        ));
        let sessions = tokio::spawn(console::keep_sessions(
            state.pool.clone(),
            SESSION_PRUNING,
            shutdown.clone(),
        ));
        let documents = tokio::spawn(backfill_documents_periodically(
            state.pool.clone(),
            DOCUMENT_BACKFILL_PAUSE,
            shutdown.clone(),
        ));
        let app = router(state, &settings);
        tracing::info!(addr = %listener.local_addr()?, "paymirror listening");
        let stopping = server::serve(listener, app, &settings.server, shutdown.clone()).await;
        // The router (and with it every inbox sender) is gone: writers drain and stop,
        // the worker lets its fetches finish, the other tasks stop; all within what is
        // left of the grace period.
        let mut tasks = writers;
        tasks.extend(worker_tasks);
        tasks.extend([
            listening, pruning, merging, statistics, recording, upkeep, minutes, sessions,
            documents,
        ]);
        let left = settings
            .server
            .shutdown_grace
            .saturating_sub(stopping.elapsed());
        let stopped = tokio::time::timeout(left, join_all(tasks.iter_mut())).await;
        if stopped.is_err() {
            tracing::warn!("shutdown grace period ended with work in flight; leases will return it to the queue");
            tasks.iter().for_each(JoinHandle::abort);
        }
        tracing::info!("paymirror stopped");
        Ok(())
    }
}

/// Every route of the service, with the layers that make errors, limits and timeouts uniform.
///
/// At most `server.callback_concurrency` callbacks are handled at once (both routes
/// together); one more waits for a slot up to `server.callback_queue_ms`, before its
/// body is read, and only then gets a 503. Every request is answered within
/// `server.request_timeout_ms` (408), but for a long poll, which may hold its request
/// that much longer than the wait it asked for. Outside that, [`requests::Observe`] gives
/// each request its id (`x-request-id`, echoed), its span, its access-log line and its
/// metrics, and every error answer, timeouts included, the pinned body.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let callbacks = Router::new()
        .route("/callbacks/payins", post(callbacks::receive_payin))
        .route("/callbacks/payouts", post(callbacks::receive_payout))
        .route(
            "/callbacks/{merchant}/payins",
            post(callbacks::receive_merchant_payin),
        )
        .route(
            "/callbacks/{merchant}/payouts",
            post(callbacks::receive_merchant_payout),
        )
        // One layer of the router for both: each costs every request a service boxed,
        // cloned and called of its own.
        .layer((
            DefaultBodyLimit::max(callbacks::MAX_BODY_BYTES),
            answer_within(settings.server.request_timeout),
        ));
    // The API bounds its own routes: a long poll may hold its request longer.
    let answered = Router::new()
        .merge(console::router())
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .route("/metrics", get(probes::render_metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route") })
        .layer(answer_within(settings.server.request_timeout));
    let (v1, v1_documented) =
        api::router(state.clone(), settings.server.request_timeout).split_for_parts();
    openapi::publish(&openapi::document(v1_documented));
    Router::new()
        .merge(callbacks)
        .merge(answered)
        .merge(v1)
        .layer(
            ServiceBuilder::new()
                .layer(requests::ObserveLayer)
                .layer(StallTimeoutLayer::new(settings.server.body_read_timeout)),
        )
        .with_state(state)
}

/// The merchant's rate limiter: its `max_rps` shared with every replica through
/// Postgres (`platform.shared_budget`), or this process's alone.
async fn limiter(pool: &PgPool, platform: &PlatformSettings) -> anyhow::Result<RateLimiter> {
    let max_rps = platform.max_rps;
    if !platform.shared_budget {
        return Ok(RateLimiter::new(max_rps));
    }
    let in_flight_bound = platform.connect_timeout + platform.request_timeout;
    let budget = SharedBudget::new(
        pool.clone(),
        &platform.merchant_code,
        max_rps,
        WINDOW,
        in_flight_bound,
    )
    .await?;
    Ok(RateLimiter::with_shared_budget(max_rps, budget))
}
