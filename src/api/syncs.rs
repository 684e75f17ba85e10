//! `/v1/dead-syncs`: syncs that gave up, for operators to see and retry.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::Query;
use super::ApiError;
use crate::app::AppState;
use crate::queue::{list_dead_syncs, retry_dead_syncs, DeadSync};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize)]
pub struct DeadQuery {
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
pub struct DeadPage {
    items: Vec<DeadSync>,
}

#[derive(Serialize)]
pub struct Retried {
    retried: u64,
}

/// `GET /v1/dead-syncs?since=<RFC 3339>&limit=`: dead syncs, oldest death first.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<DeadQuery>,
) -> Result<Json<DeadPage>, ApiError> {
    let since = parse_since(query.since.as_deref())?;
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let items = list_dead_syncs(&state.pool, &state.merchant_code, since, limit).await?;
    Ok(Json(DeadPage { items }))
}

/// `POST /v1/dead-syncs/retry?since=<RFC 3339>`: makes every dead sync (or those dead
/// since the time) pending again with fresh attempts; answers 202 with how many.
pub async fn retry(
    State(state): State<AppState>,
    Query(query): Query<DeadQuery>,
) -> Result<(StatusCode, Json<Retried>), ApiError> {
    let since = parse_since(query.since.as_deref())?;
    let retried = retry_dead_syncs(&state.pool, &state.merchant_code, since).await?;
    tracing::info!(retried, "dead syncs retried through the API");
    Ok((StatusCode::ACCEPTED, Json(Retried { retried })))
}

/// Parses an optional RFC 3339 time.
pub fn parse_since(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadRequest("since must be an RFC 3339 time".into()))
    })
    .transpose()
}
