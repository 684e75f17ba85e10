//! What every handler can reach: [`AppState`], built once by the app.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::config::{ConsoleSettings, Settings};
use crate::inbox::Inbox;
use crate::ops::Tally;
use crate::platform::PlatformClient;
use crate::store::ChangeSignal;
use crate::tokens::{CheckedTokens, UsageLog};

/// What every handler can reach: one shared allocation, so the clone each request's
/// extractors and middleware take is one reference count, not one per field (cloning
/// and dropping the fields was the process's hottest code under callback load).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

/// The fields of [`AppState`], reached through it.
pub struct AppParts {
    pub pool: PgPool,
    /// Connections held outside the pool for the hot reads (a payment, a page).
    pub lanes: crate::db::Lanes,
    /// Every merchant code this deployment serves.
    pub merchants: crate::domain::Merchants,
    pub inbox: Inbox,
    /// How many callbacks are handled at once ([`crate::http::admission`]).
    pub callback_slots: crate::http::admission::CallbackSlots,
    pub metrics: PrometheusHandle,
    /// Wakes `GET /v1/changes` requests waiting for a change.
    pub changes: ChangeSignal,
    /// API token use, written every few seconds rather than on each request.
    pub token_use: UsageLog,
    /// The tokens this replica found active, until a change is heard.
    pub checked_tokens: CheckedTokens,
    /// The operator console's settings, counts and view of the platform client.
    pub console: ConsoleState,
}

impl AppState {
    pub fn new(parts: AppParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What the console's handlers need beyond [`AppState`]'s pool and signals.
#[derive(Clone)]
pub struct ConsoleState {
    pub settings: Arc<ConsoleSettings>,
    /// This replica's counts for the per-minute charts.
    pub tally: Tally,
    /// Each merchant's platform client (for its outage state) and limit, the
    /// default merchant's first.
    pub platforms: Arc<[MerchantPlatform]>,
    pub shared_budget: bool,
}

/// One merchant's view of the platform, for the console.
pub struct MerchantPlatform {
    pub code: Arc<str>,
    pub client: Arc<PlatformClient>,
    pub max_rps: u32,
}

impl ConsoleState {
    pub fn new(settings: &Settings, tally: Tally, platforms: Vec<MerchantPlatform>) -> Self {
        ConsoleState {
            settings: Arc::new(settings.console.clone()),
            tally,
            platforms: platforms.into(),
            shared_budget: settings.platform.shared_budget,
        }
    }

    /// The platform view of a configured merchant.
    pub fn platform(&self, code: &str) -> Option<&MerchantPlatform> {
        self.platforms.iter().find(|p| &*p.code == code)
    }
}
