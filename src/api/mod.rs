//! The internal REST API under `/v1`, its bearer-token auth, and the error body of every route.

mod auth;
mod changes;
mod document;
pub mod error;
mod params;
mod payments;
mod syncs;

use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::app::AppState;
pub use document::PaymentDocument;
pub use error::{error_response, render_foreign_errors, ApiError};
pub use params::parse_time;

/// `/v1/{payins|payouts}...`, every route behind the token check.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/changes", get(changes::list))
        .route("/v1/callbacks/ignored", get(syncs::ignored))
        .route("/v1/dead-syncs", get(syncs::list))
        .route("/v1/dead-syncs/retry", post(syncs::retry))
        .route("/v1/{kinds}", get(payments::list))
        .route("/v1/{kinds}/{id}", get(payments::show))
        .route("/v1/{kinds}/{id}/history", get(payments::history))
        .route("/v1/{kinds}/{id}/callbacks", get(payments::callbacks))
        .route("/v1/{kinds}/{id}/refresh", post(payments::refresh))
        .route_layer(middleware::from_fn_with_state(state, auth::require_token))
}
