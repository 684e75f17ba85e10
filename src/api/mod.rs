//! The internal REST API under `/v1`: payments, their history and callbacks, the change
//! feed, dead syncs and ignored callbacks, each behind its bearer-token check ([`auth`]).

mod auth;
mod changes;
mod payments;
mod syncs;

use std::time::Duration;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::server::answer_within;
use crate::http::AppState;

/// `/v1/...`, every route behind a token check, each registered with its OpenAPI
/// documentation (the root assembles the whole document from it).
///
/// Each request is answered within `request_timeout` (408), but `GET /v1/changes`,
/// which may first hold the request for the `wait` it asked for (up to
/// [`changes::MAX_WAIT`]): its limit is that much longer, so no long poll is cut short.
pub fn router(state: AppState, request_timeout: Duration) -> OpenApiRouter<AppState> {
    let long_polls = OpenApiRouter::new()
        .routes(routes!(changes::list))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(answer_within(request_timeout + changes::MAX_WAIT));
    OpenApiRouter::new()
        .routes(routes!(payments::list))
        .routes(routes!(payments::show))
        .routes(routes!(syncs::ignored))
        .routes(routes!(syncs::list))
        .routes(routes!(syncs::retry))
        .routes(routes!(payments::history))
        .routes(routes!(payments::callbacks))
        .routes(routes!(payments::refresh))
        .route_layer(middleware::from_fn_with_state(state, auth::require_token))
        .layer(answer_within(request_timeout))
        .merge(long_polls)
}
