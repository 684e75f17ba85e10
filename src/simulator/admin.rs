//! Admin routes under `/_sim/` (no version header, not logged or throttled):
//! create payments, change their status, list them, read the counters, read
//! and replace the faults, globally or for one merchant.
//!
//! Payments belong to a merchant: `merchantCode` in a body names it (omitted:
//! the primary merchant), and every payment listed says its `merchantCode`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::answer::describe;
use super::faults::Faults;
use super::lifecycle::{self, PROCESSING};
use super::payment::default_method_code;
use super::state::Shared;
use super::NewPayment;
use crate::domain::{PaymentId, PaymentKind};

/// Returns the router of the admin routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sim/payments", post(create_payment).get(list_payments))
        .route("/_sim/payments/{kind}/{id}/status", post(change_status))
        .route("/_sim/stats", get(show_stats))
        .route("/_sim/faults", get(show_faults).put(replace_faults))
        .route(
            "/_sim/merchants/{code}/faults",
            put(replace_merchant_faults)
                .get(show_merchant_faults)
                .delete(clear_merchant_faults),
        )
        .with_state(shared)
}

/// The JSON form of [`NewPayment`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPaymentBody {
    /// The merchant whose payment it is; omitted: the primary merchant.
    merchant_code: Option<String>,
    kind: String,
    id: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    amount: Decimal,
    currency_code: String,
    payment_method_code: Option<String>,
    final_status: Option<String>,
    finalize_after_ms: Option<u64>,
    callback_url: Option<String>,
    #[serde(default)]
    is_test: bool,
    expire_after_ms: Option<u64>,
}

impl NewPaymentBody {
    /// Returns the domain form, or why the kind or id is not acceptable.
    fn into_new_payment(self) -> Result<NewPayment, String> {
        let kind: PaymentKind = self.kind.parse()?;
        let id = PaymentId::parse(&self.id).map_err(|e| e.to_string())?;
        Ok(NewPayment {
            kind,
            id,
            amount: self.amount,
            currency: self.currency_code,
            payment_method_code: self
                .payment_method_code
                .unwrap_or_else(|| default_method_code(kind).into()),
            final_status: self.final_status,
            finalize_after: Duration::from_millis(self.finalize_after_ms.unwrap_or(0)),
            callback_url: self.callback_url,
            is_test: self.is_test,
            expire_after: self.expire_after_ms.map(Duration::from_millis),
        })
    }
}

/// Answers `POST /_sim/payments`: 201 with the new payment, or 400 (also for
/// a `merchantCode` the simulator does not serve).
async fn create_payment(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<NewPaymentBody>(&body)
        .map_err(|e| format!("invalid payment: {e}"))
        .and_then(|body| {
            let merchant = merchant_named(&shared, body.merchant_code.clone())?;
            Ok((merchant, body.into_new_payment()?))
        });
    match parsed {
        Ok((merchant, new)) => {
            let summary = summary(&merchant, new.kind, &new.id, PROCESSING);
            lifecycle::create_payment(&shared, &merchant, new);
            (StatusCode::CREATED, Json(summary)).into_response()
        }
        Err(reason) => describe(StatusCode::BAD_REQUEST, &reason),
    }
}

/// Returns the code of the merchant a body names (`None`: the primary), or
/// why it is not one the simulator serves.
fn merchant_named(shared: &Shared, code: Option<String>) -> Result<String, String> {
    match code {
        None => Ok(shared.primary().to_owned()),
        Some(code) if shared.merchant(&code).is_some() => Ok(code),
        Some(code) => Err(format!("no merchant {code:?}")),
    }
}

/// The body of a status change.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    status: String,
    /// The merchant whose payment it is; omitted: the primary merchant.
    merchant_code: Option<String>,
}

/// Answers `POST /_sim/payments/{kind}/{id}/status`: 200, 400 for a bad body,
/// or 404 for an unknown merchant or payment.
async fn change_status(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (status, merchant) = match serde_json::from_slice::<StatusBody>(&body) {
        Ok(body) if !body.status.is_empty() => (body.status, body.merchant_code),
        _ => return describe(StatusCode::BAD_REQUEST, "expected {\"status\": \"...\"}"),
    };
    let merchant = match merchant_named(&shared, merchant) {
        Ok(merchant) => merchant,
        Err(reason) => return describe(StatusCode::NOT_FOUND, &reason),
    };
    let (Ok(kind), Ok(id)) = (kind.parse::<PaymentKind>(), PaymentId::parse(&id)) else {
        return describe(StatusCode::NOT_FOUND, "no such payment");
    };
    if lifecycle::set_status(&shared, &merchant, kind, &id, &status) {
        Json(summary(&merchant, kind, &id, &status)).into_response()
    } else {
        describe(StatusCode::NOT_FOUND, "no such payment")
    }
}

/// Answers `GET /_sim/payments` with every payment's merchant, kind, id and
/// status, sorted by merchant, kind and id.
async fn list_payments(State(shared): State<Arc<Shared>>) -> Response {
    let mut list: Vec<_> = shared.read(|state| {
        state
            .payments
            .values()
            .map(|p| (p.merchant.clone(), p.kind, p.id.clone(), p.status.clone()))
            .collect()
    });
    list.sort();
    let list: Vec<_> = list
        .iter()
        .map(|(merchant, kind, id, status)| summary(merchant, *kind, id, status))
        .collect();
    Json(list).into_response()
}

/// Answers `GET /_sim/stats` with the counters.
async fn show_stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.read(|state| state.stats.clone());
    let mut body = json!(stats);
    let ago = stats
        .last_callback_sent_at
        .map(|at| at.elapsed().as_millis() as u64);
    body["lastCallbackSentMsAgo"] = json!(ago);
    Json(body).into_response()
}

/// Answers `GET /_sim/faults` with the faults in force.
async fn show_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.faults()).into_response()
}

/// Answers `PUT /_sim/faults`: replaces every global fault (omitted ones
/// become "no fault") and answers 200 with them, or 400 for a bad body or rate.
async fn replace_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match faults_of(&body) {
        Ok(faults) => {
            shared.set_faults(faults.clone());
            Json(faults).into_response()
        }
        Err(reason) => describe(StatusCode::BAD_REQUEST, &reason),
    }
}

/// Answers `GET /_sim/merchants/{code}/faults` with the merchant's own faults,
/// `null` if it follows the global ones, or 404 for an unknown merchant.
async fn show_merchant_faults(
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Response {
    if shared.merchant(&code).is_none() {
        return no_such_merchant(&code);
    }
    Json(shared.merchant_faults(&code)).into_response()
}

/// Answers `PUT /_sim/merchants/{code}/faults`: gives the merchant its own
/// faults, used instead of the global ones (same body as `PUT /_sim/faults`),
/// and answers 200 with them; 400 for a bad body or rate, 404 for an unknown
/// merchant.
async fn replace_merchant_faults(
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    if shared.merchant(&code).is_none() {
        return no_such_merchant(&code);
    }
    match faults_of(&body) {
        Ok(faults) => {
            shared.set_merchant_faults(&code, Some(faults.clone()));
            Json(faults).into_response()
        }
        Err(reason) => describe(StatusCode::BAD_REQUEST, &reason),
    }
}

/// Answers `DELETE /_sim/merchants/{code}/faults`: the merchant follows the
/// global faults again (204), or 404 for an unknown merchant.
async fn clear_merchant_faults(
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
) -> Response {
    if shared.set_merchant_faults(&code, None) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_such_merchant(&code)
    }
}

/// Returns the faults a body describes, or why they are refused (a 400).
fn faults_of(body: &[u8]) -> Result<Faults, String> {
    let faults =
        serde_json::from_slice::<Faults>(body).map_err(|e| format!("invalid faults: {e}"))?;
    faults.validate()?;
    Ok(faults)
}

/// Returns the 404 for a merchant the simulator does not serve.
fn no_such_merchant(code: &str) -> Response {
    describe(StatusCode::NOT_FOUND, &format!("no merchant {code:?}"))
}

/// Returns `{"merchantCode", "kind", "id", "status"}`.
fn summary(merchant: &str, kind: PaymentKind, id: &PaymentId, status: &str) -> serde_json::Value {
    json!({"merchantCode": merchant, "kind": kind.as_str(), "id": id.as_str(), "status": status})
}
