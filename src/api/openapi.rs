//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the
//! handlers' and types' own annotations.
//!
//! The `/v1` routes are registered together with their documentation (utoipa-axum's
//! `routes!`), so a route cannot exist undocumented; the routes outside `/v1` are
//! listed here.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paymirror",
        description = "A merchant's mirror of payment statuses, fed by the platform's anemic callbacks. \
                       `/v1` needs `Authorization: Bearer <api token>` (read for GET, write for POST).",
        license(name = "MIT")
    ),
    paths(
        crate::callbacks::receive_payin,
        crate::callbacks::receive_payout,
        crate::ops::healthz,
        crate::ops::readyz,
        crate::ops::render_metrics,
        crate::console::signin::home,
        crate::console::signin::sign_in,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    tags(
        (name = "payments", description = "Payments, their history and callbacks"),
        (name = "changes", description = "The change feed"),
        (name = "syncs", description = "Syncs that gave up"),
        (name = "callbacks", description = "The platform's callbacks"),
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "console", description = "The operator web page (HTML, for browsers)"),
    )
)]
pub struct ApiDoc;

/// The `/v1` routes' bearer token.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut Document) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "apiToken",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Keeps the complete document (the `/v1` part comes from the router) for serving.
pub fn publish(document: &Document) {
    let _ = DOCUMENT.set(document.to_pretty_json().unwrap_or_default());
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.get().cloned().unwrap_or_default(),
    )
}
