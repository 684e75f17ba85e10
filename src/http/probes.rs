//! What operators and orchestrators ask of a running replica: liveness, readiness and
//! Prometheus metrics (the catalogue is [`crate::ops::metrics`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

use crate::http::error_response;
use crate::http::AppState;
use crate::migrations::migrator;
use crate::queue;

/// `GET /healthz`: 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "getHealth", responses((status = 200, description = "The process runs")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the database answers, every migration this binary embeds
/// is applied (newer ones from a newer release may be there too) and a callback
/// writer runs; else 503.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "getReadiness", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Not ready", body = crate::http::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.inbox.writers_alive() == 0 {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "no callback writer is running",
        );
    }
    let ours: Vec<i64> = migrator().iter().map(|m| m.version).collect();
    match applied_migrations(&state.pool, &ours).await {
        Ok(n) if n as usize >= ours.len() => (StatusCode::OK, "ready").into_response(),
        Ok(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not migrated",
        ),
        Err(_) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unreachable",
        ),
    }
}

/// Returns how many of `versions` the database has applied successfully.
async fn applied_migrations(pool: &PgPool, versions: &[i64]) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from _sqlx_migrations where success and version = any($1)")
        .bind(versions)
        .fetch_one(pool)
        .await
}

/// `GET /metrics`: Prometheus text. Queue depth is read from Postgres at scrape time.
///
/// The queue gauges are cluster-wide: every replica reads the same rows and reports
/// the same values, so dashboards and alerts aggregate them with `max`, never `sum`.
/// (Reporting them from one lock-holding replica only would make the series vanish
/// and reappear on another replica whenever the holder restarts or misses a scrape.)
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    for merchant in state.merchants.all() {
        match queue::queue_depth(&state.pool, merchant).await {
            Ok(depth) => {
                for (sync_state, count) in depth.by_state {
                    ::metrics::gauge!("paymirror_sync_jobs", "merchant" => merchant.clone(), "state" => sync_state.as_str())
                        .set(count as f64);
                }
                ::metrics::gauge!("paymirror_oldest_due_sync_seconds", "merchant" => merchant.clone())
                    .set(depth.oldest_due_secs);
            }
            Err(_) => tracing::debug!("queue depth unavailable for /metrics"),
        }
    }
    ::metrics::counter!("paymirror_log_lines_dropped_total")
        .absolute(crate::telemetry::dropped_log_lines());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
