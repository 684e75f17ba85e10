//! The gate every platform request passes first: the merchant it concerns is
//! found, then it is logged, throttled in that merchant's window,
//! version-checked and, with `throttle_rate` or `error_rate` (that merchant's
//! faults), answered 429 or 500 as an injected fault.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;

use super::answer::describe;
use super::faults::chance;
use super::state::{RecordedRequest, Shared};

/// The header every platform request must carry, with exactly [`API_VERSION`].
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-api-version");
/// The only major API version the platform serves.
pub const API_VERSION: &str = "2";
/// The largest token request body read (axum's default limit for a body).
const MAX_TOKEN_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The merchant a platform request concerns, as the gate found it (a request
/// extension for the routes): `None` if it names no merchant the simulator serves.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<String>);

/// Returns the answer to a platform request: 429 above its merchant's rate
/// limit, 404 without the right version, an injected 429 or 500, or the
/// route's own answer.
///
/// A request that names no merchant the simulator serves is throttled in the
/// primary merchant's window, as when it served only one.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (mut request, merchant) = identify(&shared, request).await;
    let window = merchant.as_deref().unwrap_or(shared.primary()).to_owned();
    let max_rps = shared
        .merchant(&window)
        .map_or(shared.config.max_rps, |m| m.max_rps);
    let mut record = record_of(&request, merchant.clone());
    let arrival = shared.mutate(|state| {
        // Stamped under the lock so the log's times never go backwards.
        record.at = Instant::now();
        state.arrive(record, &window, max_rps)
    });
    let faults = shared.faults_for(merchant.as_deref());
    if !arrival.admitted {
        return throttled(faults.retry_after_secs, "too many requests");
    }
    let response = if !has_supported_version(request.headers()) {
        describe(
            StatusCode::NOT_FOUND,
            "unsupported or missing X-API-Version",
        )
    } else if chance(faults.throttle_rate) {
        shared.mutate(|state| state.count_injected_429(merchant.as_deref()));
        throttled(faults.retry_after_secs, "too many requests (injected)")
    } else if chance(faults.error_rate) {
        describe(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (injected)",
        )
    } else {
        request.extensions_mut().insert(Caller(merchant));
        next.run(request).await
    };
    let status = response.status().as_u16();
    shared.mutate(|state| state.finish(arrival.seq, status));
    response
}

/// Returns a 429 with `{"description"}`, carrying `Retry-After` only if
/// `retry_after_secs` is set (the real platform promises none).
fn throttled(retry_after_secs: Option<u64>, description: &str) -> Response {
    let mut response = describe(StatusCode::TOO_MANY_REQUESTS, description);
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Returns true if the request carries `X-API-Version: 2` exactly.
pub fn has_supported_version(headers: &HeaderMap) -> bool {
    headers
        .get(VERSION_HEADER)
        .is_some_and(|value| value.as_bytes() == API_VERSION.as_bytes())
}

/// Returns the request (its body read into memory if it is a token request)
/// and the served merchant it concerns: the `merchantCode` of a token
/// request's body, else the `sub` of a bearer token we signed (expired or
/// not). A token request whose body cannot be read goes on with an empty body.
async fn identify(shared: &Shared, request: Request) -> (Request, Option<String>) {
    let (request, named) = if is_token_request(&request) {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_TOKEN_BODY_BYTES)
            .await
            .unwrap_or_default();
        let named = serde_json::from_slice::<NamedMerchant>(&bytes)
            .ok()
            .and_then(|body| body.merchant_code);
        (Request::from_parts(parts, Body::from(bytes)), named)
    } else {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let named = shared.keys().subject(authorization);
        (request, named)
    };
    let merchant = named.filter(|code| shared.merchant(code).is_some());
    (request, merchant)
}

/// Returns true for `POST /auth-tokens`.
fn is_token_request(request: &Request) -> bool {
    request.method() == Method::POST && request.uri().path() == "/auth-tokens"
}

/// The part of a token request that names its merchant (whatever else it holds).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamedMerchant {
    merchant_code: Option<String>,
}

/// Returns the log entry for a request arriving now, its status still unknown,
/// counted against `merchant`.
fn record_of(request: &Request, merchant: Option<String>) -> RecordedRequest {
    let header = |name| {
        request
            .headers()
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    RecordedRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        api_version: header(VERSION_HEADER),
        authorization: header(axum::http::header::AUTHORIZATION),
        merchant,
        status: 0,
        at: Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers_with(version: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(version) = version {
            headers.insert(VERSION_HEADER, HeaderValue::from_static(version));
        }
        headers
    }

    #[test]
    fn only_the_exact_major_version_is_supported() {
        assert!(has_supported_version(&headers_with(Some("2"))));
        for other in [
            None,
            Some(""),
            Some("1"),
            Some("2.0"),
            Some(" 2"),
            Some("v2"),
            Some("3"),
        ] {
            assert!(!has_supported_version(&headers_with(other)), "{other:?}");
        }
    }
}
