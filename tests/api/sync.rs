use std::time::Duration;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::SimulatorConfig;
use paymirror::tokens::Permission;
use serde_json::Value;

use crate::helpers::{eventually, payment, requests_for, spawn_with_simulator, TestApp};

const WAIT: Duration = Duration::from_secs(20);

async fn document(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("JSON document")
}

/// Waits until the API shows `status` for the payment, and returns the document.
async fn await_status(app: &TestApp, token: &str, path: &str, status: &str) -> Value {
    eventually(WAIT, || async {
        let response = app.get(path, Some(token)).await;
        if response.status() == 404 {
            return None; // the platform's callback has not arrived yet
        }
        let doc: Value = response.json().await.expect("JSON document");
        (doc["status"] == status).then_some(doc)
    })
    .await
}

/// The statuses of a history answer, oldest first.
fn statuses(history: &Value) -> Vec<&str> {
    history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["status"].as_str())
        .collect()
}

fn id(raw: &str) -> PaymentId {
    PaymentId::parse(raw).expect("valid id")
}

#[tokio::test]
async fn a_payin_goes_from_platform_callback_to_the_status_api() {
    let (app, sim) =
        spawn_with_simulator(|s| s.sync.enabled = true, SimulatorConfig::default(), true).await;
    let token = app.token("ops", &[Permission::Read]).await;

    sim.create_payment(payment(PaymentKind::Payin, "TST-1", "42.05"))
        .await;
    await_status(&app, &token, "/v1/payins/TST-1", "PROCESSING").await;
    sim.set_status(PaymentKind::Payin, &id("TST-1"), "SUCCESS")
        .await;
    let doc = await_status(&app, &token, "/v1/payins/TST-1", "SUCCESS").await;

    assert_eq!(doc["kind"], "payin");
    assert_eq!(doc["final"], true);
    assert_eq!(doc["amount"], "42.05");
    assert_eq!(doc["currencyCode"], "INR");
    assert_eq!(doc["fee"]["amount"], "0.42");
    assert_eq!(doc["paymentMethodCode"], "UPIQR");
    assert_eq!(doc["isTest"], true);
    assert!(doc["processedAt"].is_string() && doc["createdAt"].is_string());
    assert!(doc["syncedAt"].is_string());
    assert_eq!(doc["sync"]["state"], "idle");
    assert_eq!(
        doc["platform"]["paymentRequested"]["money"]["amount"].to_string(),
        "42.05"
    );
    let history = document(&app, &token, "/v1/payins/TST-1/history").await;
    assert_eq!(statuses(&history), ["PROCESSING", "SUCCESS"]);
    let stored: String = sqlx::query_scalar("select amount::text from payments where id = 'TST-1'")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert_eq!(stored, "42.05");
}

#[tokio::test]
async fn a_failed_payout_carries_its_failure_reason() {
    let (app, sim) =
        spawn_with_simulator(|s| s.sync.enabled = true, SimulatorConfig::default(), true).await;
    let token = app.token("ops", &[]).await;

    sim.create_payment(payment(PaymentKind::Payout, "PO-9", "1000.10"))
        .await;
    await_status(&app, &token, "/v1/payouts/PO-9", "PROCESSING").await;
    sim.set_status(PaymentKind::Payout, &id("PO-9"), "FAILED")
        .await;
    let doc = await_status(&app, &token, "/v1/payouts/PO-9", "FAILED").await;

    assert_eq!(doc["kind"], "payout");
    assert_eq!(doc["amount"], "1000.10");
    assert_eq!(doc["final"], true);
    assert_eq!(doc["failureReason"]["code"], "PAYMENT_PROCESS_ERROR");
    assert!(doc["failureReason"]["failedAt"].is_string());
    assert!(requests_for(&sim, "/payouts/PO-9") >= 2);
    assert_eq!(requests_for(&sim, "/payins/PO-9"), 0);
}

#[tokio::test]
async fn duplicate_callbacks_cost_one_fetch_and_one_token_serves_them_all() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    for n in 0..4 {
        sim.create_payment(payment(PaymentKind::Payin, &format!("D-{n}"), "10.00"))
            .await;
        for _ in 0..5 {
            assert_eq!(
                app.post_callback("payins", format!(r#"{{"idEntity": "D-{n}"}}"#))
                    .await
                    .status(),
                200
            );
        }
    }

    let processed = app.worker.run_until_idle().await.expect("worker runs");

    assert_eq!(processed, 4);
    for n in 0..4 {
        assert_eq!(requests_for(&sim, &format!("/payins/D-{n}")), 1);
    }
    assert_eq!(sim.stats().tokens_issued, 1);
    assert_eq!(requests_for(&sim, "/auth-tokens"), 1);
    assert!(sim
        .requests()
        .iter()
        .all(|r| r.api_version.as_deref() == Some("2")));
}

#[tokio::test]
async fn a_callback_during_an_in_flight_fetch_yields_exactly_one_more_fetch() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let token = app.token("ops", &[]).await;
    sim.create_payment(payment(PaymentKind::Payin, "IF-1", "5.00"))
        .await;
    app.post_callback("payins", r#"{"idEntity": "IF-1"}"#).await;
    // The simulator computes its answer on arrival, then holds it: the fetch sees PROCESSING.
    sim.set_latency(Duration::from_millis(1500));

    let worker = app.worker.clone();
    let running = tokio::spawn(async move { worker.run_until_idle().await });
    sim.wait_until(WAIT, |s| requests_for(s, "/payins/IF-1") == 1)
        .await
        .expect("fetch in flight");
    sim.set_latency(Duration::ZERO);
    sim.set_status(PaymentKind::Payin, &id("IF-1"), "SUCCESS")
        .await;
    for _ in 0..3 {
        assert_eq!(
            app.post_callback("payins", r#"{"idEntity": "IF-1"}"#)
                .await
                .status(),
            200
        );
    }
    let processed = running.await.expect("joins").expect("worker runs");

    assert_eq!(processed, 2);
    assert_eq!(requests_for(&sim, "/payins/IF-1"), 2);
    let doc = document(&app, &token, "/v1/payins/IF-1").await;
    assert_eq!(doc["status"], "SUCCESS");
    assert_eq!(doc["sync"]["state"], "idle");
}

#[tokio::test]
async fn history_records_each_change_once() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let token = app.token("ops", &[Permission::Write]).await;
    sim.create_payment(payment(PaymentKind::Payin, "H-1", "1.00"))
        .await;

    for status in ["PROCESSING", "PROCESSING", "SUCCESS", "SUCCESS"] {
        sim.set_status(PaymentKind::Payin, &id("H-1"), status).await;
        assert_eq!(
            app.post("/v1/payins/H-1/refresh", Some(&token))
                .await
                .status(),
            202
        );
        app.worker.run_until_idle().await.expect("worker runs");
    }

    assert_eq!(requests_for(&sim, "/payins/H-1"), 4);
    let history = document(&app, &token, "/v1/payins/H-1/history").await;
    assert_eq!(statuses(&history), ["PROCESSING", "SUCCESS"]);
}

#[tokio::test]
async fn an_unknown_status_from_the_platform_is_kept_and_not_final() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let token = app.token("ops", &[]).await;
    sim.create_payment(payment(PaymentKind::Payin, "NEW-STATUS", "3.00"))
        .await;
    sim.set_status(PaymentKind::Payin, &id("NEW-STATUS"), "ON_HOLD")
        .await;

    app.post_callback("payins", r#"{"idEntity": "NEW-STATUS"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker runs");

    let doc = document(&app, &token, "/v1/payins/NEW-STATUS").await;
    assert_eq!(doc["status"], "ON_HOLD");
    assert_eq!(doc["final"], false);
}

#[tokio::test]
async fn lists_page_through_payments_filtered_by_status() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let token = app.token("ops", &[]).await;
    for (n, status) in ["SUCCESS", "FAILED", "SUCCESS", "PROCESSING", "SUCCESS"]
        .iter()
        .enumerate()
    {
        let pid = format!("L-{n}");
        sim.create_payment(payment(PaymentKind::Payin, &pid, "2.00"))
            .await;
        sim.set_status(PaymentKind::Payin, &id(&pid), status).await;
        app.post_callback("payins", format!(r#"{{"idEntity": "{pid}"}}"#))
            .await;
    }
    app.worker.run_until_idle().await.expect("worker runs");

    let first = document(&app, &token, "/v1/payins?status=SUCCESS,BOGUS&limit=2").await;
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let second = document(
        &app,
        &token,
        &format!("/v1/payins?status=SUCCESS&limit=2&cursor={cursor}"),
    )
    .await;

    let ids: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["items"].as_array().into_iter().flatten())
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|i| ["L-0", "L-2", "L-4"].contains(i)),
        "{ids:?}"
    );
    assert!(second["nextCursor"].is_null());
    let all = document(&app, &token, "/v1/payins").await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(5));
    let future = document(&app, &token, "/v1/payins?updatedAfter=2999-01-01T00:00:00Z").await;
    assert_eq!(future["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_payment_the_platform_does_not_know_is_retried_not_stored() {
    let (app, sim) = spawn_with_simulator(
        |s| s.sync.backoff_base = Duration::from_millis(60_000),
        SimulatorConfig::default(),
        false,
    )
    .await;
    let token = app.token("ops", &[]).await;

    app.post_callback("payins", r#"{"idEntity": "GHOST-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker runs");

    assert_eq!(requests_for(&sim, "/payins/GHOST-1"), 1);
    let doc = document(&app, &token, "/v1/payins/GHOST-1").await;
    assert!(doc["status"].is_null());
    assert_eq!(doc["sync"]["state"], "pending");
    assert_eq!(doc["sync"]["attempts"], 1);
    assert!(doc["sync"]["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("410")));
}
