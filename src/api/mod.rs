//! The internal REST API under `/v1`, its bearer-token auth, and the error body of every route.

mod auth;
mod body;
mod changes;
mod document;
pub mod error;
mod openapi;
mod params;
mod payments;
mod syncs;

use axum::{middleware, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
pub use document::PaymentDocument;
pub use error::{error_response, render_foreign_errors, ApiError};
pub use openapi::openapi_json;
pub use params::parse_time;

/// `/v1/...`, every route behind a token check, each registered with its OpenAPI
/// documentation; the whole document is kept for `GET /openapi.json`.
pub fn router(state: AppState) -> Router<AppState> {
    // The hot reads check their token in the statement that reads the payments.
    let checked_by_handler = OpenApiRouter::new()
        .routes(routes!(payments::list))
        .routes(routes!(payments::show))
        .route_layer(middleware::from_fn(auth::present_token));
    let (router, mut document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(changes::list))
        .routes(routes!(syncs::ignored))
        .routes(routes!(syncs::list))
        .routes(routes!(syncs::retry))
        .routes(routes!(payments::history))
        .routes(routes!(payments::callbacks))
        .routes(routes!(payments::refresh))
        .route_layer(middleware::from_fn_with_state(state, auth::require_token))
        .merge(checked_by_handler)
        .split_for_parts();
    for (path, item) in document.paths.paths.iter_mut() {
        if path.starts_with("/v1/") {
            for operation in operations(item) {
                // The path template adds `{kinds}` and `{id}` again: keep the documented ones.
                if let Some(parameters) = operation.parameters.as_mut() {
                    let mut seen = std::collections::HashSet::new();
                    parameters.retain(|p| seen.insert(p.name.clone()));
                }
                operation.security =
                    Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                        "apiToken",
                        Vec::<String>::new(),
                    )]);
            }
        }
    }
    openapi::publish(&document);
    router
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.post].into_iter().flatten()
}
