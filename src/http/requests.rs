//! What every HTTP request leaves behind: a request id (the client's `x-request-id`
//! or a new UUID, echoed in the answer), a `request` span carrying it so every log
//! line of the request names it, one access-log line, and the HTTP metrics. Error
//! answers that did not come from [`crate::http::ApiError`] get the pinned body.
//!
//! All of it is one service, [`Observe`], with one future per request. It replaced six
//! stacked layers (an unusable request id dropped, a request id set, a trace span, the
//! id propagated, the log, the error body), each with a future and a service clone of
//! its own, which with the callback slot's layer cost about a fifth of ingest
//! (BENCHMARKS.md, stop 27).
//!
//! Routes are labelled by their matched template (`/v1/{kinds}/{id}`), never the raw
//! path: ids in labels would make a series per payment.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::response::Response;
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::{Instrument, Span};

use crate::http::error::render_foreign;

/// The target of the access log's lines, as operators filter on it (`RUST_LOG`, README):
/// it keeps the name it has always had, whichever module writes it.
pub const ACCESS_LOG: &str = "paymirror::ops::requests";

/// The header that carries the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Routes that orchestrators and Prometheus poll: their successful answers are logged at
/// debug, so probes do not drown the access log (they are counted all the same).
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Methods labelled by name; any other is labelled `other` (bounded label values).
static KNOWN_METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// The layer of [`Observe`]. Added with `Router::layer`, it runs once a route matched,
/// so it sees the route's template.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

/// Gives each request its id, span, access-log line and metrics, and the pinned body
/// to a foreign error answer (axum's 404 and 405, tower-http's 408 and 413).
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let request_id = request_id(&request);
        let method = method_label(request.method());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let span = request_span(&request, &request_id, label_of(route.as_ref()));
        // The service that was made ready is the one called; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        Box::pin(
            async move {
                let Ok(response) = inner.call(request).await;
                let mut response = render_foreign(response);
                let latency = started.elapsed();
                record(
                    method,
                    label_of(route.as_ref()),
                    response.status().as_u16(),
                    latency,
                );
                response
                    .headers_mut()
                    .entry(REQUEST_ID)
                    .or_insert(request_id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The client's `x-request-id` when every value it sent is a usable id (the first is
/// taken), else a new UUID: log lines and answers never carry arbitrary client bytes.
fn request_id(request: &Request) -> HeaderValue {
    let mut sent = request.headers().get_all(&REQUEST_ID).iter();
    let first = sent.next();
    match first {
        Some(id)
            if is_usable_request_id(id.as_bytes())
                && sent.all(|v| is_usable_request_id(v.as_bytes())) =>
        {
            id.clone()
        }
        _ => {
            let mut buffer = uuid::Uuid::encode_buffer();
            let made = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            HeaderValue::from_str(made).unwrap_or(HeaderValue::from_static("-"))
        }
    }
}

/// Returns whether a client's request id is kept: 1 to [`MAX_REQUEST_ID_LEN`] ASCII
/// letters, digits or `-_.:/+=@` (UUIDs, ULIDs, trace ids, base64).
pub fn is_usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

/// Makes the `request` span (method, route template, request id) that every log line
/// of the request is recorded in.
fn request_span(request: &Request, request_id: &HeaderValue, route: &str) -> Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id = request_id.to_str().unwrap_or("-"),
    )
}

/// Writes the access-log line (inside the request span: method, route, request id)
/// and the HTTP metrics of one request. 5xx answers are logged at ERROR, probes'
/// other answers at DEBUG, everything else at INFO.
fn record(method: &'static str, route: &str, status: u16, latency: Duration) {
    with_request_metrics(method, route, status, |m| {
        m.requests.increment(1);
        m.duration.record(latency.as_secs_f64());
    });
    let latency_ms = millis(latency);
    if status >= 500 {
        tracing::error!(target: ACCESS_LOG, status, latency_ms, "answered with a server error");
    } else if PROBES.contains(&route) {
        tracing::debug!(target: ACCESS_LOG, status, latency_ms, "answered");
    } else {
        tracing::info!(target: ACCESS_LOG, status, latency_ms, "answered");
    }
}

/// The HTTP metrics of one method, route and status.
struct RequestMetrics {
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

/// Label sets seen by this thread, by method and status, then route: each request
/// finds its handles with two lookups and no allocation, rather than building its
/// labels and having the registry hash and find them. Bounded: a few methods, the
/// statuses the service answers, the route templates.
type Seen = HashMap<(&'static str, u16), HashMap<Box<str>, RequestMetrics>>;

thread_local! {
    static REQUEST_METRICS: RefCell<Seen> = RefCell::new(HashMap::new());
}

fn with_request_metrics(
    method: &'static str,
    route: &str,
    status: u16,
    record: impl FnOnce(&RequestMetrics),
) {
    REQUEST_METRICS.with_borrow_mut(|seen| {
        let routes = seen.entry((method, status)).or_default();
        if let Some(found) = routes.get(route) {
            return record(found);
        }
        let made = RequestMetrics {
            requests: metrics::counter!(
                "paymirror_http_requests_total",
                "method" => method,
                "route" => route.to_owned(),
                "status" => status.to_string()
            ),
            duration: metrics::histogram!(
                "paymirror_http_request_duration_seconds",
                "method" => method,
                "route" => route.to_owned()
            ),
        };
        record(&made);
        routes.insert(route.into(), made);
    });
}

/// The route label of a matched template, or [`UNMATCHED`].
fn label_of(matched: Option<&MatchedPath>) -> &str {
    matched.map_or(UNMATCHED, MatchedPath::as_str)
}

fn method_label(method: &Method) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Milliseconds with microsecond precision, for log fields.
fn millis(latency: Duration) -> f64 {
    latency.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_kept_and_odd_ones_replaced() {
        for id in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "dGVzdA==",
        ] {
            assert!(is_usable_request_id(id.as_bytes()), "{id}");
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for id in ["", "a b", "a\"b", "é", "a\x1b[31mb", long.as_str()] {
            assert!(!is_usable_request_id(id.as_bytes()), "{id:?}");
        }
    }

    #[test]
    fn methods_outside_the_standard_few_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let custom = Method::from_bytes(b"BREW").unwrap_or(Method::CONNECT);
        assert_eq!(method_label(&custom), "other");
    }
}
