//! `/v1/dead-syncs`: syncs that gave up, for operators to see and retry; and
//! `/v1/callbacks/ignored`: callbacks that named no payment.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, MerchantParam};
use crate::http::error::ErrorAnswers;
use crate::http::error::Query;
use crate::http::params::{parse_callback_cursor, parse_limit, parse_time};
use crate::http::ApiError;
use crate::http::AppState;
use crate::queue::{list_dead_syncs, retry_dead_syncs, DeadSync};
use crate::store::{list_ignored, CallbackPosition, IgnoredCallback};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// Only those at or after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Page size: 1–1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetryQuery {
    /// Only syncs dead at or after this RFC 3339 time; omitted: every dead sync.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadPage {
    items: Vec<DeadSync>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IgnoredQuery {
    /// Only those at or after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Page size: 1–1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(value_type = Option<String>, pattern = r"^cb[0-9]{1,17}\.[01]\.[0-9]{1,18}\.[0-9]{1,18}$")]
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredPage {
    items: Vec<IgnoredCallback>,
    /// Where the next page starts (`?cursor=`), or null on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Retried {
    retried: u64,
}

/// `GET /v1/dead-syncs?since=<RFC 3339>&limit=`: dead syncs, oldest death first.
#[utoipa::path(get, path = "/v1/dead-syncs", tag = "syncs", operation_id = "listDeadSyncs", params(SinceQuery, MerchantParam),
    responses((status = 200, description = "Dead syncs, oldest death first", body = DeadPage), ErrorAnswers))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<SinceQuery>,
) -> Result<Json<DeadPage>, ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let items = list_dead_syncs(&state.pool, caller.merchant()?, since, limit).await?;
    Ok(Json(DeadPage { items }))
}

/// `POST /v1/dead-syncs/retry?since=<RFC 3339>`: makes every dead sync (or those dead
/// since the time) pending again with fresh attempts; answers 202 with how many.
#[utoipa::path(post, path = "/v1/dead-syncs/retry", tag = "syncs", operation_id = "retryDeadSyncs", params(RetryQuery, MerchantParam),
    responses((status = 202, description = "How many dead syncs are pending again", body = Retried), ErrorAnswers))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RetryQuery>,
) -> Result<(StatusCode, Json<Retried>), ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let retried = retry_dead_syncs(&state.pool, caller.merchant()?, since).await?;
    tracing::info!(retried, "dead syncs retried through the API");
    Ok((StatusCode::ACCEPTED, Json(Retried { retried })))
}

/// `GET /v1/callbacks/ignored?since=<RFC 3339>&limit=&cursor=`: a page of the
/// callbacks that named no payment (no `idEntity`), oldest first.
#[utoipa::path(get, path = "/v1/callbacks/ignored", tag = "callbacks", operation_id = "listIgnoredCallbacks", params(IgnoredQuery, MerchantParam),
    responses((status = 200, description = "Callbacks without idEntity, oldest first", body = IgnoredPage), ErrorAnswers))]
pub async fn ignored(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<IgnoredQuery>,
) -> Result<Json<IgnoredPage>, ApiError> {
    let since = parse_time(query.since.as_deref(), "since")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = parse_callback_cursor(query.cursor.as_deref())?;
    // Both given: the page starts at the later of the two.
    let from = cursor.max(since.map(CallbackPosition::before_time));
    let page = list_ignored(&state.pool, caller.merchant()?, from, limit).await?;
    Ok(Json(IgnoredPage {
        items: page.items,
        next_cursor: page.next.map(|next| next.cursor()),
    }))
}
