//! HTTP serving: hyper's HTTP/1 connections, limited against slow and abusive clients,
//! with a graceful drain, bounded by the shutdown grace, on the app's cancellation token.
//!
//! A client must send its request line and headers within `server.header_read_timeout_ms`
//! (an idle keep-alive connection, waiting for its next request, gets the same time) and
//! within `server.max_header_bytes`, else hyper closes the connection (431 for too large).
//! Bodies and whole requests are bounded by the router's layers (see `app::router`).

use std::io;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;

use crate::config::ServerSettings;

/// How long accepting pauses after an error such as running out of file descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` fires; then stops accepting, lets every
/// open connection finish its request in flight (idle ones close at once) for up to
/// `server.shutdown_grace_ms`, closes those still open (a client that never reads its
/// answer cannot hold the process), and returns when shutdown began.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    shutdown: CancellationToken,
) -> Instant {
    let http = connection_builder(settings);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    pause_after(e).await;
                    continue;
                }
            },
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                record_connection_error(&e);
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let stopping = Instant::now();
    drop(listener);
    if tokio::time::timeout(settings.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "closing connections whose requests did not finish within the shutdown grace"
        );
    }
    connections.shutdown().await;
    stopping
}

/// HTTP/1.1 with keep-alive, a header-read deadline and a header size limit.
fn connection_builder(settings: &ServerSettings) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(settings.max_header_bytes);
    builder
}

/// Connection errors are the client's doing (timeouts, resets, garbage): counted, not alarmed.
fn record_connection_error(error: &hyper::Error) {
    let reason = if error.is_timeout() {
        "header_timeout"
    } else if error.is_parse() {
        "malformed"
    } else {
        "other"
    };
    metrics::counter!("paymirror_http_connection_errors_total", "reason" => reason).increment(1);
    tracing::debug!(error = %error, reason, "connection closed with an error");
}

/// A client that gave up before being accepted needs nothing; anything else (such as
/// too many open files) is logged, and accepting pauses briefly instead of spinning.
async fn pause_after(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::warn!(error = %error, "accepting a connection failed");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Returns the layer that answers 408 to a request not answered within `limit`. It
/// bounds the time to the answer's head: a streamed body (the console's live feed)
/// is not cut by it.
pub fn answer_within(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limit)
}
