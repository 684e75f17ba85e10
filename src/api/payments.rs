//! `/v1/payins` and `/v1/payouts`: a payment, a page of them, a payment's history and
//! callbacks, and a refresh, each for the merchant(s) the [`Caller`] resolved.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, MerchantParam};
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::http::body::{RawJson, SizedJson, DOCUMENT_BYTES};
use crate::http::document::write_stored;
use crate::http::error::ErrorAnswers;
use crate::http::error::{Path, Query};
use crate::http::params::{next_page_link, parse_callback_cursor, parse_limit, parse_time};
use crate::http::AppState;
use crate::http::{ApiError, PaymentDocument};
use crate::queue::{enqueue_syncs, Priority};
use crate::store::{self, CallbackRecord, HistoryEntry, ListFilter, StoredDocument, Towards};

/// The `{kinds}` path segment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct KindsParam {
    /// `payins` or `payouts`.
    #[param(inline, value_type = String, pattern = "^(payins|payouts)$")]
    kinds: String,
}

/// The `{id}` path segment: the merchant's order id.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct IdParam {
    #[param(pattern = "^[A-Za-z0-9_-]{1,250}$")]
    id: String,
}

/// Parses the `{kinds}` and `{id}` path segments; an unknown kind is an unknown route.
fn parse_target(kinds: &str, id: &str) -> Result<(PaymentKind, PaymentId), ApiError> {
    let kind = parse_kinds(kinds)?;
    let id = PaymentId::parse(id)
        .map_err(|e| ApiError::BadRequest(format!("invalid payment id: {e}")))?;
    Ok((kind, id))
}

/// Returns the kind the plural `{kinds}` segment names; any other segment is a route
/// the API does not have (404).
fn parse_kinds(kinds: &str) -> Result<PaymentKind, ApiError> {
    PaymentKind::from_plural(kinds).ok_or_else(|| ApiError::NotFound("no such route".into()))
}

/// `GET /v1/{kinds}/{id}`: the payment, or 404 if never heard of.
#[utoipa::path(get, path = "/v1/{kinds}/{id}", tag = "{kinds}", operation_id = "get{Kind}", params(KindsParam, IdParam, MerchantParam),
    responses((status = 200, description = "The payment", body = PaymentDocument), ErrorAnswers))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((kinds, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (kind, id) = parse_target(&kinds, &id)?;
    let merchant = caller.merchant()?;
    let not_found = || ApiError::NotFound(format!("no {kind} with id {id} is known"));
    let mut lane = state.lanes.acquire().await?;
    let found = store::find_document(&mut *lane, merchant, kind, &id).await;
    lane.settle(&found);
    let stored = found?.ok_or_else(not_found)?;
    let mut body = Vec::new();
    if write_stored(&mut body, &stored) {
        return Ok(RawJson(body).into_response());
    }
    // Written before documents were kept, and not backfilled yet.
    let found = store::find_payment(&mut *lane, merchant, kind, &id).await;
    lane.settle(&found);
    drop(lane);
    let row = found?.ok_or_else(not_found)?;
    Ok(Json(PaymentDocument::from(row)).into_response())
}

/// `GET /v1/{kinds}/{id}/history`: every status observed, oldest first.
#[utoipa::path(get, path = "/v1/{kinds}/{id}/history", tag = "{kinds}", operation_id = "get{Kind}History", params(KindsParam, IdParam, MerchantParam),
    responses((status = 200, description = "Every status observed, oldest first", body = Vec<HistoryEntry>), ErrorAnswers))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((kinds, id)): Path<(String, String)>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let (kind, id) = parse_target(&kinds, &id)?;
    let merchant = caller.merchant()?;
    ensure_known(&state, merchant, kind, &id).await?;
    Ok(Json(
        store::list_history(&state.pool, merchant, kind, &id).await?,
    ))
}

/// `?limit=&cursor=` of a payment's callbacks.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbacksQuery {
    /// Page size: 1–1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Where the page starts: the `cursor` in the previous page's `Link: <…>; rel="next"`.
    #[param(value_type = Option<String>, pattern = r"^cb[0-9]{1,17}\.[01]\.[0-9]{1,18}\.[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// Bytes to reserve per callback of a page beyond its body (time, outcome, punctuation).
const CALLBACK_BYTES: usize = 96;

/// `GET /v1/{kinds}/{id}/callbacks`: a page of the callbacks received for the payment,
/// oldest first, bodies as received: "did the platform call us?" The next page, if
/// any, is named by a `Link: <…>; rel="next"` header.
#[utoipa::path(get, path = "/v1/{kinds}/{id}/callbacks", tag = "{kinds}", operation_id = "list{Kind}Callbacks", params(KindsParam, IdParam, CallbacksQuery, MerchantParam),
    responses((status = 200, description = "The callbacks received, oldest first", body = Vec<CallbackRecord>,
        headers(("Link" = String, description = "The next page, `<…>; rel=\"next\"`; absent on the last page"))), ErrorAnswers))]
pub async fn callbacks(
    State(state): State<AppState>,
    caller: Caller,
    Path((kinds, id)): Path<(String, String)>,
    Query(query): Query<CallbacksQuery>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, ApiError> {
    let (kind, id) = parse_target(&kinds, &id)?;
    let limit = parse_limit(query.limit.as_deref())?;
    let from = parse_callback_cursor(query.cursor.as_deref())?;
    let merchant = caller.merchant()?;
    ensure_known(&state, merchant, kind, &id).await?;
    let page = store::list_callbacks(
        &state.pool,
        merchant,
        kind,
        &id,
        from,
        Towards::Newer,
        limit,
    )
    .await?;
    let link = page
        .next
        .map(|next| {
            let path = format!("/v1/{}/{id}/callbacks", kind.plural());
            next_page_link(&path, raw_query.as_deref(), &next.cursor())
        })
        .transpose()?;
    let bytes = page
        .items
        .iter()
        .map(|c| c.body.get().len() + CALLBACK_BYTES)
        .sum::<usize>()
        + 2;
    let mut answer = SizedJson(page.items, bytes).into_response();
    if let Some(link) = link {
        answer.headers_mut().insert(header::LINK, link);
    }
    Ok(answer)
}

/// Answers 404 unless paymirror has heard of the payment.
async fn ensure_known(
    state: &AppState,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> Result<(), ApiError> {
    match store::find_payment(&state.pool, merchant, kind, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!(
            "no {kind} with id {id} is known"
        ))),
    }
}

/// `POST /v1/{kinds}/{id}/refresh`: schedules a sync now (starting to track an unknown
/// id, reviving a dead sync) and answers 202 with the payment as it stands.
#[utoipa::path(post, path = "/v1/{kinds}/{id}/refresh", tag = "{kinds}", operation_id = "refresh{Kind}", params(KindsParam, IdParam, MerchantParam),
    responses((status = 202, description = "A sync is scheduled; the payment as it stands", body = PaymentDocument), ErrorAnswers))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path((kinds, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<PaymentDocument>), ApiError> {
    let (kind, id) = parse_target(&kinds, &id)?;
    let merchant = caller.merchant()?;
    let mut tx = state.pool.begin().await?;
    enqueue_syncs(&mut tx, merchant, &[(kind, id.clone())], Priority::Manual).await?;
    tx.commit().await?;
    let row = store::find_payment(&state.pool, merchant, kind, &id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("payment vanished after enqueue")))?;
    Ok((StatusCode::ACCEPTED, Json(row.into())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated statuses, e.g. `SUCCESS,FAILED`; unknown values are ignored.
    status: Option<String>,
    /// Only payments changed after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    updated_after: Option<String>,
    /// Page size: 1–1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(value_type = Option<String>, pattern = "^p[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// A page of payments in the order they last changed.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    items: Vec<PaymentDocument>,
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// `GET /v1/{kinds}`: a page of payments in the order they last changed; with several
/// merchants, theirs together in that order.
#[utoipa::path(get, path = "/v1/{kinds}", tag = "{kinds}", operation_id = "list{Kinds}", params(KindsParam, ListQuery, MerchantParam),
    responses((status = 200, description = "A page of payments", body = Page), ErrorAnswers))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(kinds): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let kind = parse_kinds(&kinds)?;
    let filter = parse_list_query(query)?;
    let mut lane = state.lanes.acquire().await?;
    let stored = store::list_documents(&mut *lane, caller.merchants(), kind, &filter).await;
    lane.settle(&stored);
    let stored = stored?;
    let next_cursor = page_cursor(&filter, stored.iter().map(|d| d.position));
    if let Some(body) = stored_page(&stored, next_cursor.as_deref()) {
        return Ok(RawJson(body).into_response());
    }
    // A payment of the page was written before documents were kept, and not
    // backfilled yet: the whole page is read again the old way.
    let rows = store::list_payments(&mut *lane, caller.merchants(), kind, &filter).await;
    lane.settle(&rows);
    drop(lane);
    let rows = rows?;
    let next_cursor = page_cursor(&filter, rows.iter().map(|r| r.position));
    let page = Page {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    };
    let bytes = page.items.len() * DOCUMENT_BYTES + 64;
    Ok(SizedJson(page, bytes).into_response())
}

/// The cursor after a page of these positions: the last one's, if the page is full
/// (a shorter page is the last one).
fn page_cursor(
    filter: &ListFilter,
    positions: impl ExactSizeIterator<Item = i64>,
) -> Option<String> {
    let full = positions.len() as i64 == filter.limit;
    positions.last().filter(|_| full).map(encode_cursor)
}

/// The page as [`Page`] serialises, from stored documents; `None` if one of them has
/// no document.
fn stored_page(stored: &[StoredDocument], next_cursor: Option<&str>) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(stored.len() * DOCUMENT_BYTES + 64);
    body.extend_from_slice(b"{\"items\":[");
    for (i, document) in stored.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        if !write_stored(&mut body, document) {
            return None;
        }
    }
    body.extend_from_slice(b"],\"nextCursor\":");
    // Writing a string or null into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, &next_cursor);
    body.push(b'}');
    Some(body)
}

fn parse_list_query(query: ListQuery) -> Result<ListFilter, ApiError> {
    // Unknown status values are ignored, as SPEC §2 asks.
    let statuses = query
        .status
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| PaymentStatus::parse(s.trim()))
        .filter(|s| !matches!(s, PaymentStatus::Other(_)))
        .collect();
    let updated_after = parse_time(query.updated_after.as_deref(), "updatedAfter")?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = query.cursor.map(|c| decode_cursor(&c)).transpose()?;
    Ok(ListFilter {
        statuses,
        updated_after,
        after,
        limit,
    })
}

/// The cursor is `p<position>`: where the last payment of the page stands in commit order.
pub(super) fn encode_cursor(position: i64) -> String {
    format!("p{position}")
}

pub(super) fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .strip_prefix('p')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::BadRequest("the cursor is not one this API returned".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1234)).ok(), Some(1234));
        for bad in ["", "abc", "12", "p", "p-1", "px", "1763700000123456.TST"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_documented_cursor_pattern_is_the_one_parsed() {
        use utoipa::IntoParams;
        let parameters =
            serde_json::to_value(CallbacksQuery::into_params(|| None)).unwrap_or_default();
        let cursor = parameters
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "cursor");
        assert_eq!(
            cursor.map(|p| &p["schema"]["pattern"]),
            Some(&serde_json::json!(store::CURSOR_PATTERN))
        );
    }

    #[test]
    fn unknown_statuses_are_ignored_and_a_limit_past_the_maximum_is_refused() {
        let query = |limit: &str| ListQuery {
            status: Some("SUCCESS,BOGUS, FAILED".into()),
            updated_after: None,
            limit: Some(limit.into()),
            cursor: None,
        };
        let filter = parse_list_query(query("1000")).expect("valid");
        let statuses: Vec<&str> = filter.statuses.iter().map(PaymentStatus::as_str).collect();
        assert_eq!(statuses, vec!["SUCCESS", "FAILED"]);
        assert_eq!(filter.limit, crate::http::params::MAX_LIMIT);
        assert!(parse_list_query(query("1001")).is_err());
    }
}
