//! The payment document's per-kind shape: `paymentMethodResponse` names the
//! payment and the platform's own id, payins carry `expireAt` and fail when it
//! passes, payouts use payout methods.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::platform::{fetch, token};
use super::*;

/// Returns the 200 document of `GET {path}`.
async fn document(http: &reqwest::Client, sim: &Simulator, path: &str, token: &str) -> Value {
    let answer = fetch(http, sim, path, Some(token), Some("2")).await;
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.json().await.unwrap()
}

/// Returns the RFC 3339 time at `value`.
fn time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[tokio::test]
async fn a_payin_names_itself_its_platform_id_and_its_expiry() {
    let sim = start(SimulatorConfig::default()).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "DOC-1", "5.00"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let doc = document(&http, &sim, "/payins/DOC-1", &payins).await;
    let method = &doc["paymentMethodResponse"];
    assert_eq!(method["paymentMethodCode"], "UPIQR");
    assert_eq!(method["idPayin"], "DOC-1");
    assert!(method.get("idPayout").is_none(), "{method}");
    let id_payment = method["idPayment"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id_payment).is_ok(), "{id_payment}");
    let expiry = time(&method["expireAt"]) - time(&doc["process"]["createdAt"]);
    assert_eq!(expiry.num_seconds(), 15 * 60);

    let again = document(&http, &sim, "/payins/DOC-1", &payins).await;
    assert_eq!(
        again["paymentMethodResponse"]["idPayment"],
        id_payment.as_str()
    );
    sim.create_payment(new_payment(PaymentKind::Payin, "DOC-2", "5.00"))
        .await;
    let other = document(&http, &sim, "/payins/DOC-2", &payins).await;
    assert_ne!(
        other["paymentMethodResponse"]["idPayment"],
        id_payment.as_str()
    );
}

#[tokio::test]
async fn a_payout_pays_by_a_payout_method_and_never_expires() {
    let sim = start(SimulatorConfig::default()).await;
    sim.create_payment(new_payment(PaymentKind::Payout, "DOC-3", "5.00"))
        .await;
    let http = client();
    let admin = format!("{}/_sim/payments", sim.base_url());
    let created = http
        .post(&admin)
        .json(&json!({"kind": "payout", "id": "DOC-4", "amount": 1, "currencyCode": "INR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let payouts = token(&http, &sim, &["GET /payouts/.*"]).await;
    for id in ["DOC-3", "DOC-4"] {
        let doc = document(&http, &sim, &format!("/payouts/{id}"), &payouts).await;
        let method = &doc["paymentMethodResponse"];
        assert_eq!(method["paymentMethodCode"], "BANK_TRANSFER", "{id}");
        assert_eq!(method["idPayout"], id);
        assert!(method["idPayment"].is_string(), "{method}");
        assert!(method.get("expireAt").is_none() && method.get("idPayin").is_none());
    }
}

#[tokio::test]
async fn a_payin_fails_when_it_expires_unless_it_was_final_first() {
    let sim = start(SimulatorConfig {
        payin_expiry: Duration::from_millis(200),
        ..SimulatorConfig::default()
    })
    .await;
    sim.create_payment(new_payment(PaymentKind::Payin, "EXP-1", "1.00"))
        .await;
    sim.create_payment(new_payment(PaymentKind::Payin, "EXP-2", "1.00"))
        .await;
    sim.create_payment(NewPayment {
        expire_after: Some(Duration::from_secs(3600)),
        ..new_payment(PaymentKind::Payin, "EXP-3", "1.00")
    })
    .await;
    assert!(
        sim.set_status(PaymentKind::Payin, &id("EXP-2"), "SUCCESS")
            .await
    );
    sim.wait_until(PATIENCE, |s| payin_status(s, "EXP-1") == "FAILED")
        .await
        .unwrap();

    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let doc = document(&http, &sim, "/payins/EXP-1", &payins).await;
    let reasons = &doc["process"]["failureReasons"];
    assert_eq!(reasons["failureReasonCode"], "ENTITY_EXPIRED");
    let expire_at = time(&doc["paymentMethodResponse"]["expireAt"]);
    // Wall-clock times at millisecond precision: allow a little slack.
    let slack = chrono::TimeDelta::milliseconds(5);
    assert!(time(&doc["process"]["processedAt"]) + slack >= expire_at);
    let override_doc = document(&http, &sim, "/payins/EXP-3", &payins).await;
    let expiry = time(&override_doc["paymentMethodResponse"]["expireAt"])
        - time(&override_doc["process"]["createdAt"]);
    assert_eq!(expiry.num_seconds(), 3600);

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(payin_status(&sim, "EXP-2"), "SUCCESS");
    assert_eq!(payin_status(&sim, "EXP-3"), "PROCESSING");
}

/// Returns the status of payin `raw_id`, or `"-"` if there is none.
fn payin_status(sim: &Simulator, raw_id: &str) -> String {
    sim.payment_status(PaymentKind::Payin, &id(raw_id))
        .unwrap_or_else(|| "-".into())
}
