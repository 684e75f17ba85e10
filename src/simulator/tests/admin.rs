//! The admin routes under `/_sim/`: create, change and list payments, read stats.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::platform::{fetch, token};
use super::*;

#[tokio::test]
async fn admin_routes_create_change_and_list_payments_unlogged() {
    let sim = start(SimulatorConfig::default()).await;
    let http = client();
    let admin = |path: &str| format!("{}/_sim{path}", sim.base_url());
    let created = http
        .post(admin("/payments"))
        .header("content-type", "application/json")
        .body(r#"{"kind": "payout", "id": "PO-1", "amount": 1234.50, "currencyCode": "INR"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let bad = http
        .post(admin("/payments"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let change = |path: &str| {
        http.post(admin(path))
            .json(&json!({"status": "REFUSED"}))
            .send()
    };
    assert_eq!(
        change("/payments/payout/PO-1/status")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        change("/payments/payin/PO-1/status")
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sim.payment_status(PaymentKind::Payout, &id("PO-1"))
            .as_deref(),
        Some("REFUSED")
    );

    let listed: Value = http
        .get(admin("/payments"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([{"merchantCode": "M1", "kind": "payout", "id": "PO-1", "status": "REFUSED"}])
    );
    let stats: Value = http
        .get(admin("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 0);

    let payouts = token(&http, &sim, &["GET /payouts/.*"]).await;
    let text = fetch(&http, &sim, "/payouts/PO-1", Some(&payouts), Some("2"))
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#""amount":1234.50,"#), "{text}");
    assert!(
        text.contains(r#""failureReasons""#) && text.contains(r#""processedAt""#),
        "{text}"
    );
}
