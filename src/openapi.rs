//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the
//! handlers' and types' own annotations.
//!
//! The `/v1` routes are registered together with their documentation (utoipa-axum's
//! `routes!`), so a route cannot exist undocumented; the routes of the other edges are
//! listed here, where the whole document is assembled ([`document`]). [`complete`] then writes each route of both kinds out per kind
//! (`/v1/{kinds}/{id}` becomes `/v1/payins/{id}` and `/v1/payouts/{id}`, `get{Kind}`
//! becomes `getPayin` and `getPayout`), so generated clients read `get_payin(id)`,
//! and says which routes need a token.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use crate::domain::PaymentKind;
use crate::http::ErrorBody;

/// The name of the `/v1` routes' security scheme.
const API_TOKEN: &str = "apiToken";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "paymirror",
        description = "A merchant's mirror of payment statuses, fed by the platform's anemic callbacks. \
                       `/v1` needs `Authorization: Bearer <api token>` (read for GET, write for POST).",
        license(name = "MIT", identifier = "MIT")
    ),
    servers((url = "/", description = "The replica (or load balancer) this document was fetched from")),
    paths(
        crate::callbacks::receive_payin,
        crate::callbacks::receive_payout,
        crate::callbacks::receive_merchant_payin,
        crate::callbacks::receive_merchant_payout,
        crate::http::probes::healthz,
        crate::http::probes::readyz,
        crate::http::probes::render_metrics,
        crate::console::signin::home,
        crate::console::signin::sign_in,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    tags(
        (name = "payins", description = "Payins, their history and callbacks"),
        (name = "payouts", description = "Payouts, their history and callbacks"),
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
                API_TOKEN,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Returns the document of every route: the `/v1` routes' own documentation, `v1`
/// (as the API's router registered it), beside the routes listed in [`ApiDoc`], then
/// finished by [`complete`].
pub fn document(v1: Document) -> Document {
    let mut document = ApiDoc::openapi();
    document.merge(v1);
    complete(&mut document);
    document
}

/// Finishes the generated document: each `{kinds}` route written out per kind, each
/// parameter once, the `/v1` routes behind the API token and every other route
/// declared open (`security: []`).
pub fn complete(document: &mut Document) {
    expand_kinds(document);
    for (path, item) in document.paths.paths.iter_mut() {
        let needs_token = path.starts_with("/v1/");
        for operation in operations(item) {
            // The path template adds its parameters again: keep the documented ones.
            if let Some(parameters) = operation.parameters.as_mut() {
                let mut seen = std::collections::HashSet::new();
                parameters.retain(|p| seen.insert(p.name.clone()));
            }
            operation.security = Some(if needs_token {
                vec![SecurityRequirement::new(API_TOKEN, Vec::<String>::new())]
            } else {
                Vec::new()
            });
        }
    }
}

/// Replaces each path with `{kinds}` by one path per kind: the parameter goes, and
/// `{kinds}`, `{Kind}` and `{Kinds}` in tags, operation ids and texts become the kind
/// (`payins`, `Payin`, `Payins`).
fn expand_kinds(document: &mut Document) {
    let templates: Vec<String> = document
        .paths
        .paths
        .keys()
        .filter(|path| path.contains("{kinds}"))
        .cloned()
        .collect();
    for template in templates {
        let Some(item) = document.paths.paths.remove(&template) else {
            continue;
        };
        for kind in [PaymentKind::Payin, PaymentKind::Payout] {
            let mut item = item.clone();
            for operation in operations(&mut item) {
                write_out(operation, kind);
            }
            let path = template.replace("{kinds}", kind.plural());
            document.paths.paths.insert(path, item);
        }
    }
}

/// Writes one operation of a `{kinds}` route out for `kind`.
fn write_out(operation: &mut Operation, kind: PaymentKind) {
    let plural = kind.plural();
    let (first, rest) = plural.split_at(1);
    let kinds = format!("{}{rest}", first.to_uppercase());
    let singular = kinds.trim_end_matches('s').to_owned();
    let fill = |text: &str| {
        text.replace("{kinds}", plural)
            .replace("{Kinds}", &kinds)
            .replace("{Kind}", &singular)
    };
    if let Some(parameters) = operation.parameters.as_mut() {
        parameters.retain(|p| p.name != "kinds");
    }
    for text in [
        &mut operation.operation_id,
        &mut operation.summary,
        &mut operation.description,
    ]
    .into_iter()
    .flatten()
    {
        *text = fill(text);
    }
    for tag in operation.tags.iter_mut().flatten() {
        *tag = fill(tag);
    }
}

/// The operations of a path item (the service answers GET and POST only).
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.post].into_iter().flatten()
}

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// Keeps the complete document for `GET /openapi.json` (the same for every app of the process).
pub fn publish(document: &Document) {
    let _ = DOCUMENT.set(document.to_pretty_json().unwrap_or_default());
}

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "getOpenApiDocument",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.get().cloned().unwrap_or_default(),
    )
}
