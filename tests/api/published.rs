//! Answers the platform's published document allows but the simulator never gives,
//! served by a small stand-in over real HTTP: several business errors in one 406, an
//! amount beyond any exact decimal, a failure without message, a payment method not
//! known today.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::platform::{FetchError, PlatformClient, RateLimiter};
use paymirror::sync::JobOutcome;
use serde_json::{json, Value};

use crate::helpers::{run_once, test_settings, TestApp, TestDatabase};

/// Serves `router` on a fresh local port; returns its base URL.
async fn stub_platform(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A platform that issues a token (no JWT: its lifetime is what was asked) and
/// answers every `GET /payins/{id}` with `body`.
fn answering(body: &'static str) -> Router {
    Router::new()
        .route(
            "/auth-tokens",
            post(|| async { Json(json!({"token": "opaque"})) }),
        )
        .route(
            "/payins/{id}",
            get(move || async move { ([("content-type", "application/json")], body) }),
        )
}

/// Returns the app synced once against `platform`, and the payment's document.
async fn synced_against(platform: Router, id: &str) -> (TestApp, JobOutcome, Value) {
    let db = TestDatabase::create().await;
    let settings = test_settings(&db, &stub_platform(platform).await);
    let app = TestApp::spawn_with(db, settings).await;
    app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
        .await;
    let outcomes = run_once(&app).await;
    let token = app.token("ops", &[]).await;
    let doc = app
        .get_json(&format!("/v1/payins/{id}"), Some(&token))
        .await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let outcome = outcomes.into_iter().next().expect("one job");
    (app, outcome, doc)
}

#[tokio::test]
async fn a_406_with_several_business_errors_keeps_every_code() {
    let errors = json!([
        {"code": "MERCHANT_INACTIVE", "description": "not active"},
        {"code": "OPERATION_INVALID", "attrCode": "operations"},
    ]);
    let router = Router::new().route(
        "/auth-tokens",
        post(move || async move { (StatusCode::NOT_ACCEPTABLE, Json(errors.clone())) }),
    );
    let db = TestDatabase::create().await;
    let settings = test_settings(&db, &stub_platform(router).await);
    let client =
        PlatformClient::new(&settings.platform, Arc::new(RateLimiter::new(10))).expect("client");

    let id = PaymentId::parse("BIZ-2").expect("valid id");
    let error = client
        .fetch_payment(PaymentKind::Payin, &id)
        .await
        .expect_err("refused");

    let FetchError::MerchantRejected(errors) = &error else {
        panic!("not a 406: {error}");
    };
    assert_eq!(
        errors.metric_labels(),
        ["MERCHANT_INACTIVE", "OPERATION_INVALID"]
    );
    assert_eq!(
        error.to_string(),
        "the platform refused the merchant's request (406 MERCHANT_INACTIVE: not active; OPERATION_INVALID (operations))"
    );
}

#[tokio::test]
async fn an_amount_beyond_any_exact_decimal_is_named_in_last_error() {
    let body = r#"{"paymentRequested": {"money": {"amount": 1234567890123456789012345678901, "currencyCode": "IDR"}},
        "process": {"status": "SUCCESS", "createdAt": "2026-11-21T10:00:00Z", "isTest": true},
        "fee": {"amount": 1, "currencyCode": "IDR"},
        "paymentMethodResponse": {"paymentMethodCode": "QRISPAY", "idPayin": "BIG-1", "idPayment": "p1"}}"#;

    let (_app, outcome, doc) = synced_against(answering(body), "BIG-1").await;

    assert_eq!(outcome, JobOutcome::Retrying);
    assert_eq!(doc["status"], Value::Null);
    let last_error = doc["sync"]["lastError"].as_str().unwrap_or_default();
    assert!(
        last_error.starts_with(
            "the platform's answer has a field paymirror cannot take: paymentRequested.money.amount: \
             1234567890123456789012345678901 is beyond what an exact decimal holds"
        ),
        "{last_error}"
    );
}

#[tokio::test]
async fn a_failure_without_message_and_an_unknown_method_are_stored() {
    let body = r#"{"paymentRequested": {"money": {"amount": 10.5, "currencyCode": "THB"}},
        "process": {"status": "FAILED", "createdAt": "2026-11-21T10:00:00Z", "isTest": false,
                    "failureReasons": {"failedAt": "2026-11-21T10:05:00Z", "failureReasonCode": "ENTITY_EXPIRED"}},
        "fee": {"amount": 0.11, "currencyCode": "THB"},
        "paymentMethodResponse": {"paymentMethodCode": "FUTURE_METHOD", "idPayin": "NEW-1", "idPayment": "p2",
                                  "somethingElse": {"nested": [1e200000]}}}"#;

    let (_app, outcome, doc) = synced_against(answering(body), "NEW-1").await;

    assert_eq!(outcome, JobOutcome::Synced);
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["amount"], "10.5");
    assert_eq!(doc["paymentMethodCode"], "FUTURE_METHOD");
    assert_eq!(doc["failureReason"]["code"], "ENTITY_EXPIRED");
    assert_eq!(doc["failureReason"]["message"], Value::Null);
    // A number Postgres cannot hold, outside any field we index, is kept as its text.
    let method = &doc["platform"]["paymentMethodResponse"];
    assert_eq!(method["somethingElse"]["nested"][0], "1e200000", "{method}");
}

/// Any JSON string may fill a free-text field: a lone surrogate, which neither Rust nor
/// Postgres text can hold, is stored as U+FFFD like NUL, and the status is kept.
#[tokio::test]
async fn a_lone_surrogate_in_a_message_is_stored_in_safe_form() {
    let body = r#"{"paymentRequested": {"money": {"amount": 3, "currencyCode": "INR"}},
        "process": {"status": "FAILED", "createdAt": "2026-11-21T10:00:00Z", "isTest": true,
                    "failureReasons": {"failedAt": "2026-11-21T10:05:00Z", "failureReasonCode": "SYSTEM",
                                       "message": "card\ud800 declined\u0000"}},
        "fee": {"amount": 0.03, "currencyCode": "INR"},
        "paymentMethodResponse": {"paymentMethodCode": "UPIQR", "idPayin": "SUR-1", "idPayment": "p3"}}"#;

    let (_app, outcome, doc) = synced_against(answering(body), "SUR-1").await;

    assert_eq!(outcome, JobOutcome::Synced, "{doc}");
    assert_eq!(doc["status"], "FAILED");
    let safe = "card\u{FFFD} declined\u{FFFD}";
    assert_eq!(doc["failureReason"]["message"], safe);
    assert_eq!(
        doc["platform"]["process"]["failureReasons"]["message"],
        safe
    );
}
