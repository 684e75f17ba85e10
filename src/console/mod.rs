//! The operator console at `/console`: server-rendered pages to see and act on
//! payments, syncs and the platform budget, signed in with an API token.
//!
//! Pages are HTML rendered by `maud` (every interpolation escaped), styled by one
//! embedded stylesheet; the only script is the change-feed tail's `EventSource`.
//! Every console answer carries a strict Content-Security-Policy.

mod assets;
mod chart;
mod csrf;
mod dead;
mod error;
mod layout;
mod minutes;
mod overview;
mod payment_page;
mod payments;
mod session;
pub(crate) mod signin;
mod tail;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get, post};
use axum::{middleware, Router};

use crate::api::render_foreign_errors;
use crate::app::AppState;
use crate::config::{ConsoleSettings, Settings};
use crate::platform::PlatformClient;

pub use minutes::{keep_minutes, list_minutes, sample_minute, Minute, Tally};
pub use session::prune_sessions;

/// What the console's handlers need beyond [`AppState`]'s pool and signals.
#[derive(Clone)]
pub struct ConsoleState {
    pub settings: Arc<ConsoleSettings>,
    /// This replica's counts for the per-minute charts.
    pub tally: Tally,
    /// This replica's platform client, for its outage state.
    pub platform: Arc<PlatformClient>,
    pub max_rps: u32,
    pub shared_budget: bool,
}

impl ConsoleState {
    pub fn new(settings: &Settings, tally: Tally, platform: Arc<PlatformClient>) -> Self {
        ConsoleState {
            settings: Arc::new(settings.console.clone()),
            tally,
            platform,
            max_rps: settings.platform.max_rps,
            shared_budget: settings.platform.shared_budget,
        }
    }

    fn session_length(&self) -> Duration {
        Duration::from_secs(self.settings.session_hours.saturating_mul(3600))
    }

    /// How long per-minute figures are kept.
    pub fn stats_retention(&self) -> Duration {
        Duration::from_secs(self.settings.stats_retention_days.saturating_mul(86_400))
    }

    /// How often each replica adds its counts to the shared table.
    pub fn stats_flush(&self) -> Duration {
        Duration::from_secs(self.settings.stats_flush_secs.max(1))
    }
}

/// Every `/console` route. Errors keep the pinned JSON body (SPEC §2), and every
/// answer, errors included, gets the console's security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(signin::home))
        .route("/console/sign-in", post(signin::sign_in))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/payments", get(payments::list))
        .route("/console/payments/{kind}/{id}", get(payments::show))
        .route(
            "/console/payments/{kind}/{id}/callbacks",
            get(payments::callbacks),
        )
        .route(
            "/console/payments/{kind}/{id}/refresh",
            post(payments::refresh),
        )
        .route("/console/dead-syncs", get(dead::list))
        .route("/console/dead-syncs/retry", post(dead::retry_one))
        .route("/console/dead-syncs/retry-all", post(dead::retry_all))
        .route("/console/changes", get(tail::show))
        .route("/console/changes/stream", get(tail::stream))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/{*rest}", any(no_such_page))
        .layer(middleware::from_fn(render_foreign_errors))
        .layer(middleware::from_fn(assets::security_headers))
}

/// Any other `/console/...` address: 404, with the console's headers.
async fn no_such_page() -> axum::response::Response {
    crate::api::error_response(axum::http::StatusCode::NOT_FOUND, "no such console page")
}
