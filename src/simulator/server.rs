//! The simulator's HTTP server. It owns its accept loop so that the
//! `connect_delay_ms` fault can hold each new connection before any request on
//! it is read; it stops gracefully when the simulator is cancelled.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::state::Shared;

/// Pause after an accept error that is not about one connection (e.g. too many open files).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until the simulator is cancelled; then stops
/// accepting, lets each open connection finish the request in flight, and
/// returns once every connection is closed.
pub async fn serve(listener: TcpListener, app: Router, shared: Arc<Shared>) {
    // Each connection task holds a receiver: once all are dropped, all are closed.
    let (closed_tx, closed_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                pause_after(error).await;
                continue;
            }
        };
        // Read at accept time: a change of the fault affects only later connections.
        let delay = Duration::from_millis(shared.faults().connect_delay_ms);
        tokio::spawn(serve_connection(
            stream,
            app.clone(),
            delay,
            shared.cancel.clone(),
            closed_rx.clone(),
        ));
    }
    drop(closed_rx);
    drop(listener);
    closed_tx.closed().await;
}

/// Serves every request of one connection, after holding it for `delay`;
/// on `stop` an idle connection closes at once and a busy one after its answer.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    delay: Duration,
    stop: CancellationToken,
    _open: watch::Receiver<()>,
) {
    if !delay.is_zero() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    let builder = Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "simulator connection ended with an error");
    }
}

/// Waits after a failed accept: not at all if only that connection failed,
/// else [`ACCEPT_BACKOFF`], so a shortage of file descriptors does not spin.
async fn pause_after(error: io::Error) {
    let one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if !one_connection {
        tracing::error!(%error, "simulator could not accept a connection");
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }
}
