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
mod overview;
mod payment_page;
mod payments;
mod session;
pub(crate) mod signin;
mod tail;

use axum::routing::{any, get, post};
use axum::{middleware, Router};

use crate::http::{render_foreign_errors, AppState};

pub use session::{keep_sessions, prune_sessions};

/// Every `/console` route. Errors keep the pinned JSON body (SPEC §2), and every
/// answer, errors included, gets the console's security headers.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(signin::home))
        .route("/console/sign-in", post(signin::sign_in))
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/merchant", post(signin::choose_merchant))
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
    crate::http::error_response(axum::http::StatusCode::NOT_FOUND, "no such console page")
}
