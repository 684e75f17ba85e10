//! `GET /v1/changes`: every status change after a cursor, in commit order, with an
//! optional long poll woken by LISTEN/NOTIFY.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::http::error::ErrorAnswers;
use crate::http::error::Query;

use super::auth::{Caller, MerchantParam};
use crate::http::params::parse_limit;
use crate::http::ApiError;
use crate::http::AppState;
use crate::store::{self, Change};

/// The longest a request may wait for a change, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// The longest a request may wait for a change.
pub const MAX_WAIT: Duration = Duration::from_secs(MAX_WAIT_SECS);
/// A waiting request looks again this often even without a notification (a safety
/// net for a listener reconnecting; notifications wake it within milliseconds).
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// `nextCursor` of the previous answer; omitted: from the first change.
    #[param(value_type = Option<String>, pattern = "^c[0-9]{1,18}$")]
    after: Option<String>,
    /// Page size: 1–1000, default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Seconds (0–30) to hold the request until a change arrives.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 30)]
    wait: Option<String>,
}

/// Changes after the cursor, oldest first, and the cursor to continue from.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    items: Vec<Change>,
    next_cursor: String,
}

/// `GET /v1/changes?after=&limit=&wait=`: the changes after `after` (from the first
/// without it), oldest first. With `wait`, an empty answer is held until a change
/// commits or `wait` seconds pass; then `nextCursor` is the cursor to wait again with.
#[utoipa::path(get, path = "/v1/changes", tag = "changes", operation_id = "followChanges", params(ChangesQuery, MerchantParam),
    responses((status = 200, description = "Status changes in commit order", body = ChangesPage), ErrorAnswers))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ChangesQuery>,
) -> Result<Json<ChangesPage>, ApiError> {
    let after = query.after.as_deref().map(decode).transpose()?.unwrap_or(0);
    let limit = parse_limit(query.limit.as_deref())?;
    let wait = parse_wait(query.wait.as_deref())?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut stopping = false;
    loop {
        // Register for the wake-up before querying: a change committing between the
        // query and the wait still wakes this request.
        let notified = state.changes.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let items = store::list_changes(&state.pool, caller.merchants(), after, limit).await?;
        let now = tokio::time::Instant::now();
        if !items.is_empty() || now >= deadline || stopping {
            let last = items.last().map_or(after, |c| c.position);
            return Ok(Json(ChangesPage {
                items,
                next_cursor: encode(last),
            }));
        }
        let slice = (deadline - now).min(RECHECK);
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(slice) => {}
            () = state.changes.stopping() => stopping = true,
        }
    }
}

/// A feed cursor is `c<position>`; `c0` is the beginning.
fn encode(position: i64) -> String {
    format!("c{position}")
}

fn decode(cursor: &str) -> Result<i64, ApiError> {
    cursor
        .strip_prefix('c')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::BadRequest("the cursor is not one this API returned".into()))
}

fn parse_wait(raw: Option<&str>) -> Result<Duration, ApiError> {
    match raw.map(str::parse::<u64>) {
        None => Ok(Duration::ZERO),
        Some(Ok(secs)) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "wait must be a whole number of seconds from 0 to {MAX_WAIT_SECS}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode(&encode(42)).ok(), Some(42));
        for bad in ["", "42", "c", "c-1", "p42", "cx"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wait_is_bounded() {
        assert_eq!(parse_wait(None).ok(), Some(Duration::ZERO));
        assert_eq!(parse_wait(Some("30")).ok(), Some(Duration::from_secs(30)));
        for bad in ["31", "-1", "1.5", "soon"] {
            assert!(parse_wait(Some(bad)).is_err(), "{bad}");
        }
    }
}
