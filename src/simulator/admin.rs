//! Admin routes under `/_sim/` (no version header, not logged or throttled):
//! create payments, change their status, list them, read the counters, read
//! and replace the faults.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
        .with_state(shared)
}

/// The JSON form of [`NewPayment`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPaymentBody {
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

/// Answers `POST /_sim/payments`: 201 with the new payment, or 400.
async fn create_payment(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<NewPaymentBody>(&body)
        .map_err(|e| format!("invalid payment: {e}"))
        .and_then(NewPaymentBody::into_new_payment);
    match parsed {
        Ok(new) => {
            let summary = summary(new.kind, &new.id, PROCESSING);
            lifecycle::create_payment(&shared, new);
            (StatusCode::CREATED, Json(summary)).into_response()
        }
        Err(reason) => describe(StatusCode::BAD_REQUEST, &reason),
    }
}

/// The body of a status change.
#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

/// Answers `POST /_sim/payments/{kind}/{id}/status`: 200, 400 for a bad body,
/// or 404 for an unknown payment.
async fn change_status(
    State(shared): State<Arc<Shared>>,
    Path((kind, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let status = match serde_json::from_slice::<StatusBody>(&body) {
        Ok(body) if !body.status.is_empty() => body.status,
        _ => return describe(StatusCode::BAD_REQUEST, "expected {\"status\": \"...\"}"),
    };
    let (Ok(kind), Ok(id)) = (kind.parse::<PaymentKind>(), PaymentId::parse(&id)) else {
        return describe(StatusCode::NOT_FOUND, "no such payment");
    };
    if lifecycle::set_status(&shared, kind, &id, &status) {
        Json(summary(kind, &id, &status)).into_response()
    } else {
        describe(StatusCode::NOT_FOUND, "no such payment")
    }
}

/// Answers `GET /_sim/payments` with every payment's kind, id and status.
async fn list_payments(State(shared): State<Arc<Shared>>) -> Response {
    let list: Vec<_> = shared.read(|state| {
        state
            .payments
            .values()
            .map(|p| summary(p.kind, &p.id, &p.status))
            .collect()
    });
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

/// Answers `PUT /_sim/faults`: replaces every fault (omitted ones become "no
/// fault") and answers 200 with them, or 400 for a bad body or rate.
async fn replace_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => faults,
        Err(e) => return describe(StatusCode::BAD_REQUEST, &format!("invalid faults: {e}")),
    };
    if let Err(reason) = faults.validate() {
        return describe(StatusCode::BAD_REQUEST, &reason);
    }
    shared.set_faults(faults.clone());
    Json(faults).into_response()
}

/// Returns `{"kind", "id", "status"}`.
fn summary(kind: PaymentKind, id: &PaymentId, status: &str) -> serde_json::Value {
    json!({"kind": kind.as_str(), "id": id.as_str(), "status": status})
}
