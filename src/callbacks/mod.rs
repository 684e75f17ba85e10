//! `POST /callbacks/payins` and `/callbacks/payouts`: the platform's anemic callbacks.
//!
//! Answered 200 only once the callback and its sync job are committed (SPEC §2);
//! the platform repeats anything else, so a 503 loses nothing. Bodies are read by
//! [`body`] into what `jsonb` can store, judged by [`numeric`]'s limits.

#[cfg(test)]
mod fuzz;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use crate::domain::{PaymentId, PaymentKind};
use crate::http::admission::CallbackSlot;
use crate::http::error::{Path, RawBody};
use crate::http::ApiError;
use crate::http::AppState;
use crate::inbox::{InboxEntry, NotStored};

/// Largest callback body accepted; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = crate::domain::MAX_CALLBACK_BYTES;

/// `POST /callbacks/payins`: a payin changed.
#[utoipa::path(post, path = "/callbacks/payins", tag = "callbacks", operation_id = "receivePayinCallback",
    request_body(content = Object, description = "`{\"idEntity\": \"<id>\"}`; extra fields are kept"),
    responses(
        (status = 200, description = "Stored durably and a sync scheduled (or, without idEntity, recorded as ignored)"),
        (status = 400, description = "Invalid JSON or id", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::http::error::ErrorBody),
        (status = 503, description = "Not stored; retry", body = crate::http::error::ErrorBody)))]
pub async fn receive_payin(
    State(state): State<AppState>,
    _slot: CallbackSlot,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let merchant = state.merchants.default_code().clone();
    receive(state, merchant, PaymentKind::Payin, &body).await
}

/// `POST /callbacks/payouts`: a payout changed.
#[utoipa::path(post, path = "/callbacks/payouts", tag = "callbacks", operation_id = "receivePayoutCallback",
    request_body(content = Object, description = "`{\"idEntity\": \"<id>\"}`; extra fields are kept"),
    responses(
        (status = 200, description = "Stored durably and a sync scheduled (or, without idEntity, recorded as ignored)"),
        (status = 400, description = "Invalid JSON or id", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::http::error::ErrorBody),
        (status = 503, description = "Not stored; retry", body = crate::http::error::ErrorBody)))]
pub async fn receive_payout(
    State(state): State<AppState>,
    _slot: CallbackSlot,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let merchant = state.merchants.default_code().clone();
    receive(state, merchant, PaymentKind::Payout, &body).await
}

/// `POST /callbacks/{merchant}/payins`: a payin of that merchant changed.
#[utoipa::path(post, path = "/callbacks/{merchant}/payins", tag = "callbacks", operation_id = "receiveMerchantPayinCallback",
    params(("merchant" = String, Path, description = "A merchant code this deployment serves", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Object, description = "`{\"idEntity\": \"<id>\"}`; extra fields are kept"),
    responses(
        (status = 200, description = "Stored durably and a sync scheduled (or, without idEntity, recorded as ignored)"),
        (status = 400, description = "Invalid JSON or id", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such merchant is served here; nothing was stored", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::http::error::ErrorBody),
        (status = 503, description = "Not stored; retry", body = crate::http::error::ErrorBody)))]
pub async fn receive_merchant_payin(
    State(state): State<AppState>,
    Path(merchant): Path<String>,
    _slot: CallbackSlot,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let merchant = served(&state, &merchant)?;
    receive(state, merchant, PaymentKind::Payin, &body).await
}

/// `POST /callbacks/{merchant}/payouts`: a payout of that merchant changed.
#[utoipa::path(post, path = "/callbacks/{merchant}/payouts", tag = "callbacks", operation_id = "receiveMerchantPayoutCallback",
    params(("merchant" = String, Path, description = "A merchant code this deployment serves", pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body(content = Object, description = "`{\"idEntity\": \"<id>\"}`; extra fields are kept"),
    responses(
        (status = 200, description = "Stored durably and a sync scheduled (or, without idEntity, recorded as ignored)"),
        (status = 400, description = "Invalid JSON or id", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such merchant is served here; nothing was stored", body = crate::http::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = crate::http::error::ErrorBody),
        (status = 503, description = "Not stored; retry", body = crate::http::error::ErrorBody)))]
pub async fn receive_merchant_payout(
    State(state): State<AppState>,
    Path(merchant): Path<String>,
    _slot: CallbackSlot,
    RawBody(body): RawBody,
) -> Result<StatusCode, ApiError> {
    let merchant = served(&state, &merchant)?;
    receive(state, merchant, PaymentKind::Payout, &body).await
}

/// The configured code a callback's URL names, or 404: the callback is not stored,
/// and the code (client bytes) goes no further.
fn served(state: &AppState, merchant: &str) -> Result<Arc<str>, ApiError> {
    state
        .merchants
        .get(merchant)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("no merchant with this code is served here".into()))
}

async fn receive(
    state: AppState,
    merchant: Arc<str>,
    kind: PaymentKind,
    body: &[u8],
) -> Result<StatusCode, ApiError> {
    let entry = parse_callback(merchant, kind, body)?;
    match &entry.id {
        Some(id) => tracing::debug!(%kind, %id, "callback received"),
        None => tracing::info!(%kind, "callback without idEntity recorded as ignored"),
    }
    state.inbox.submit(entry).await.map_err(ApiError::from)?;
    Ok(StatusCode::OK)
}

impl From<NotStored> for ApiError {
    fn from(e: NotStored) -> Self {
        match e {
            NotStored::Refused(_) => ApiError::BadRequest(e.to_string()),
            NotStored::Unavailable => ApiError::Unavailable(e.into()),
        }
    }
}

/// Parses a callback body: a JSON object whose `idEntity`, if present, must be a valid
/// payment id. Extra fields and unknown event types are kept, not judged; the body is
/// returned in the form `jsonb` stores (see [`body`]), untouched when it needs nothing.
fn parse_callback(
    merchant: Arc<str>,
    kind: PaymentKind,
    body: &[u8],
) -> Result<InboxEntry, ApiError> {
    let body = crate::storable::parse_storable(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            ApiError::BadRequest(format!("the body is refused: {e}"))
        }
        _ => ApiError::BadRequest(format!("the body is not valid JSON: {e}")),
    })?;
    let Some(object) = body.as_object() else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let id = match object.get("idEntity") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            PaymentId::parse(raw)
                .map_err(|e| ApiError::BadRequest(format!("idEntity is invalid: {e}")))?,
        ),
        Some(_) => return Err(ApiError::BadRequest("idEntity must be a string".into())),
    };
    Ok(InboxEntry {
        merchant,
        kind,
        id,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_extra_fields_and_unknown_events() {
        let entry = parse_callback(
            "M1".into(),
            PaymentKind::Payin,
            br#"{"idEntity": "TST-1", "event": "payment.somethingNew", "x": [1]}"#,
        )
        .expect("accepted");
        assert_eq!(entry.id.map(|id| id.to_string()), Some("TST-1".into()));
        assert_eq!(entry.body["event"], "payment.somethingNew");
    }

    #[test]
    fn an_object_without_id_is_ignored_not_rejected() {
        let entry = parse_callback("M1".into(), PaymentKind::Payout, br#"{"event": "ping"}"#)
            .expect("accepted");
        assert!(entry.id.is_none());
    }

    #[test]
    fn stores_a_safe_form_of_nul_and_huge_numbers() {
        let entry = parse_callback(
            "M1".into(),
            PaymentKind::Payin,
            br#"{"idEntity": "TST-1", "note": "a\u0000b", "n": 1e200000, "m": 42.05}"#,
        )
        .expect("accepted");
        assert_eq!(entry.body["note"], "a\u{FFFD}b");
        assert_eq!(entry.body["n"], "1e200000");
        assert_eq!(entry.body["m"].to_string(), "42.05");
    }

    #[test]
    fn deep_nesting_is_400() {
        let depth = 100_000;
        let body = format!(
            r#"{{"idEntity": "TST-1", "x": {}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err =
            parse_callback("M1".into(), PaymentKind::Payin, body.as_bytes()).expect_err("too deep");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rejects_bad_json_non_objects_and_bad_ids() {
        for body in [
            &b"{not json"[..],
            b"[]",
            b"\"x\"",
            br#"{"idEntity": "a/b"}"#,
            br#"{"idEntity": 12}"#,
            br#"{"idEntity": "TST-1", "idEntity": "TST-2"}"#,
            br#"{"idEntity": "TST\u0000"}"#,
            br#"{"idEntity": "\ud800"}"#,
        ] {
            let err = parse_callback("M1".into(), PaymentKind::Payin, body).expect_err("rejected");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }
}
