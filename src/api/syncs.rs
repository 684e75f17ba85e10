//! `/v1/dead-syncs`: syncs that gave up, for operators to see and retry; and
//! `/v1/callbacks/ignored`: callbacks that named no payment.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::Query;
use super::params::{parse_limit, parse_time};
use super::ApiError;
use crate::app::AppState;
use crate::queue::{list_dead_syncs, retry_dead_syncs, DeadSync};
use crate::store::{list_ignored, IgnoredCallback};

#[derive(Deserialize)]
pub struct SinceQuery {
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct DeadPage {
    items: Vec<DeadSync>,
}

#[derive(Serialize)]
pub struct IgnoredPage {
    items: Vec<IgnoredCallback>,
}

#[derive(Serialize)]
pub struct Retried {
    retried: u64,
}

/// `GET /v1/dead-syncs?since=<RFC 3339>&limit=`: dead syncs, oldest death first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<SinceQuery>,
) -> Result<Json<DeadPage>, ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let items = list_dead_syncs(&state.pool, &state.merchant_code, since, limit).await?;
    Ok(Json(DeadPage { items }))
}

/// `POST /v1/dead-syncs/retry?since=<RFC 3339>`: makes every dead sync (or those dead
/// since the time) pending again with fresh attempts; answers 202 with how many.
pub async fn retry(
    State(state): State<AppState>,
    Query(query): Query<SinceQuery>,
) -> Result<(StatusCode, Json<Retried>), ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let retried = retry_dead_syncs(&state.pool, &state.merchant_code, since).await?;
    tracing::info!(retried, "dead syncs retried through the API");
    Ok((StatusCode::ACCEPTED, Json(Retried { retried })))
}

/// `GET /v1/callbacks/ignored?since=<RFC 3339>&limit=`: callbacks that named no
/// payment (no `idEntity`), oldest first.
pub async fn ignored(
    State(state): State<AppState>,
    Query(query): Query<SinceQuery>,
) -> Result<Json<IgnoredPage>, ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let items = list_ignored(&state.pool, &state.merchant_code, since, limit).await?;
    Ok(Json(IgnoredPage { items }))
}
