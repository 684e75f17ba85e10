//! The gate every platform request passes first: it is logged, throttled,
//! version-checked and, with `throttle_rate` or `error_rate`, answered 429 or
//! 500 as an injected fault.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::answer::describe;
use super::faults::chance;
use super::state::{RecordedRequest, Shared};

/// The header every platform request must carry, with exactly [`API_VERSION`].
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-api-version");
/// The only major API version the platform serves.
pub const API_VERSION: &str = "2";

/// Returns the answer to a platform request: 429 above the rate limit, 404
/// without the right version, an injected 429 or 500, or the route's own answer.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let mut record = record_of(&request);
    let arrival = shared.mutate(|state| {
        // Stamped under the lock so the log's times never go backwards.
        record.at = Instant::now();
        state.arrive(record, shared.config.max_rps)
    });
    let faults = shared.faults();
    if !arrival.admitted {
        return throttled(faults.retry_after_secs, "too many requests");
    }
    let response = if !has_supported_version(request.headers()) {
        describe(
            StatusCode::NOT_FOUND,
            "unsupported or missing X-API-Version",
        )
    } else if chance(faults.throttle_rate) {
        shared.mutate(|state| state.stats.throttled_injected += 1);
        throttled(faults.retry_after_secs, "too many requests (injected)")
    } else if chance(faults.error_rate) {
        describe(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (injected)",
        )
    } else {
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

/// Returns the log entry for a request arriving now, its status still unknown.
fn record_of(request: &Request) -> RecordedRequest {
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
