//! The platform's own routes: `POST /auth-tokens`, `GET /payins/{id}`,
//! `GET /payouts/{id}`, behind the gate that logs, throttles and checks the version.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::answer::describe;
use super::answer_faults;
use super::faults::{chance, Faults};
use super::gate::{gate, Caller};
use super::jwt::{compile_operation, TokenError};
use super::state::Shared;
use crate::domain::{PaymentId, PaymentKind};

/// Token validity bounds and default, in seconds.
const MIN_VALIDITY: u64 = 60;
const MAX_VALIDITY: u64 = 3600;
const DEFAULT_VALIDITY: u64 = 1800;

/// Returns the router of the platform routes, every one behind [`gate`].
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/auth-tokens", post(issue_token))
        .route("/payins/{id}", get(fetch_payin))
        .route("/payouts/{id}", get(fetch_payout))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate))
        .with_state(shared)
}

/// Returns a 406 with the platform's business errors: an array, even of one.
fn not_acceptable(error: Value) -> Response {
    (StatusCode::NOT_ACCEPTABLE, Json(json!([error]))).into_response()
}

/// Returns the 406 the platform answers for a merchant it has deactivated.
fn merchant_inactive() -> Response {
    not_acceptable(json!({"code": "MERCHANT_INACTIVE", "description": "the merchant is inactive"}))
}

/// The body of `POST /auth-tokens`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest {
    merchant_code: String,
    secret: String,
    validity_secs: Option<u64>,
    #[serde(default)]
    operations: Vec<String>,
}

/// Answers `POST /auth-tokens` with a token whose `sub` is the merchant, or
/// the platform's error for a bad body, validity, merchant, inactive merchant,
/// secret (each merchant has its own) or operation.
///
/// The faults are the merchant's own if it has them, else the global ones.
///
/// With `token_lifetime_cap_secs` the token's `exp` may come sooner than
/// `validitySecs` asked: clients must read `exp`, not trust their request; with
/// `token_clock_skew_secs` its `iat` and `exp` follow a clock off ours.
async fn issue_token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<TokenRequest>(&body) else {
        return describe(
            StatusCode::BAD_REQUEST,
            "the body is not a valid token request",
        );
    };
    let validity = request.validity_secs.unwrap_or(DEFAULT_VALIDITY);
    if !(MIN_VALIDITY..=MAX_VALIDITY).contains(&validity) {
        return describe(
            StatusCode::BAD_REQUEST,
            "validitySecs must be within 60..3600",
        );
    }
    let Some(merchant) = shared.merchant(&request.merchant_code) else {
        return not_acceptable(json!({"code": "MERCHANT_NOT_FOUND"}));
    };
    let faults = shared.faults_for(Some(&merchant.code));
    if faults.merchant_inactive {
        return merchant_inactive();
    }
    if request.secret != merchant.secret {
        return describe(
            StatusCode::FORBIDDEN,
            "the secret is not valid for this merchant",
        );
    }
    if request
        .operations
        .iter()
        .any(|op| compile_operation(op).is_err())
    {
        return not_acceptable(json!({"code": "OPERATION_INVALID", "attrCode": "operations"}));
    }
    let lifetime = faults
        .token_lifetime_cap_secs
        .map_or(validity, |cap| validity.min(cap));
    let now = faults.platform_now_secs();
    match shared
        .keys()
        .issue(&request.merchant_code, request.operations, now, lifetime)
    {
        Ok(token) => {
            shared.mutate(|state| state.count_token(&request.merchant_code));
            Json(json!({ "token": token })).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "simulator could not sign a token");
            describe(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Answers `GET /payins/{id}`.
async fn fetch_payin(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let faults = shared.faults_for(caller.0.as_deref());
    fetch_payment(&shared, &faults, PaymentKind::Payin, &id, &uri, &headers).await
}

/// Answers `GET /payouts/{id}`.
async fn fetch_payout(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let faults = shared.faults_for(caller.0.as_deref());
    fetch_payment(&shared, &faults, PaymentKind::Payout, &id, &uri, &headers).await
}

/// Returns the document of the token's merchant's payment (401/403 for a
/// token that does not allow the request, 410 for an id unknown to that
/// merchant or not yet visible, or a fault's answer: a redirect, an error, or
/// a bent document), after the latency and jitter of `faults` (the caller's).
///
/// The answer is computed first and delayed afterwards, so it reflects the
/// state at arrival even if the payment changes while the answer is delayed.
async fn fetch_payment(
    shared: &Shared,
    faults: &Faults,
    kind: PaymentKind,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let answer = answer_fetch(shared, faults, kind, id, uri, headers);
    let delay = faults.fetch_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer
}

/// Returns the answer to a payment fetch as of now, under `faults`.
fn answer_fetch(
    shared: &Shared,
    faults: &Faults,
    kind: PaymentKind,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    if let Some(location) = &faults.redirect_to {
        return answer_faults::redirect(location);
    }
    if faults.merchant_inactive {
        return merchant_inactive();
    }
    if faults.forbid_operations {
        return describe(
            StatusCode::FORBIDDEN,
            "the token does not allow this operation (injected)",
        );
    }
    if faults.reject_tokens {
        return describe(StatusCode::UNAUTHORIZED, "the token is invalid (injected)");
    }
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let operation = format!("GET {}", uri.path());
    let now = faults.platform_now_secs();
    let merchant = match shared.keys().authorize(authorization, &operation, now) {
        Ok(claims) => claims.sub,
        Err(TokenError::Invalid) => {
            return describe(
                StatusCode::UNAUTHORIZED,
                "the token is missing, invalid or expired",
            )
        }
        Err(TokenError::Forbidden) => {
            return describe(
                StatusCode::FORBIDDEN,
                "the token does not allow this operation",
            )
        }
    };
    let invisible_for = Duration::from_millis(faults.invisible_for_ms);
    let document = PaymentId::parse(id).ok().and_then(|id| {
        shared.read(|state| {
            let payment = state.payments.get(&(merchant, kind, id))?;
            // A fresh payment may not be visible to the platform's API yet.
            (payment.created_instant.elapsed() >= invisible_for).then(|| payment.document())
        })
    });
    match document {
        Some(document) if chance(faults.malformed_body_rate) => answer_faults::malformed(&document),
        Some(mut document) => {
            answer_faults::distort(&mut document, kind, faults);
            Json(document).into_response()
        }
        None => describe(
            StatusCode::GONE,
            &format!("no {} with this id", kind.as_str()),
        ),
    }
}

/// Answers any other path the way the platform does: 404.
async fn unknown_route() -> Response {
    describe(StatusCode::NOT_FOUND, "no such resource")
}
