//! Platform answers are bounded and checked: what the database refuses, oversized
//! bodies, redirects, answers about another payment and stale reads are failed
//! attempts (or kept out), never stored and never a lease that expires forever.

use std::time::Duration;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Faults, Simulator, SimulatorConfig};
use paymirror::sync::JobOutcome;
use serde_json::Value;

use crate::helpers::{payment, request_trail, run_once, spawn_with_simulator, TestApp};

async fn app_with(id: &str, faults: Faults, final_status: Option<&str>) -> (TestApp, Simulator) {
    let (app, sim) = spawn_with_simulator(
        |s| s.sync.backoff_base = Duration::from_millis(60_000),
        SimulatorConfig::default(),
        false,
    )
    .await;
    sim.create_payment(payment(PaymentKind::Payin, id, "7.00"))
        .await;
    if let Some(status) = final_status {
        let pid = PaymentId::parse(id).expect("valid id");
        sim.set_status(PaymentKind::Payin, &pid, status).await;
    }
    sim.set_faults(faults);
    app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
        .await;
    (app, sim)
}

async fn document(app: &TestApp, id: &str) -> Value {
    let token = app.token("ops", &[]).await;
    app.get(&format!("/v1/payins/{id}"), Some(&token))
        .await
        .json()
        .await
        .expect("JSON")
}

/// Each hostile answer is a failed attempt whose reason is visible, and nothing of it is stored.
#[tokio::test]
async fn hostile_answers_are_failed_attempts_with_a_visible_reason() {
    let cases = [
        (
            Faults {
                body_padding_bytes: 2 * 1024 * 1024,
                ..Faults::default()
            },
            None,
            "exceeds 1048576 bytes",
        ),
        (
            Faults {
                wrong_id_rate: 1.0,
                ..Faults::default()
            },
            None,
            "the platform answered about another payment (paymentMethodResponse.idPayin is HOST-1-OTHER)",
        ),
        (
            Faults {
                redirect_to: Some("http://127.0.0.1:9/elsewhere".into()),
                ..Faults::default()
            },
            None,
            "302",
        ),
    ];
    for (faults, final_status, reason) in cases {
        let (app, _sim) = app_with("HOST-1", faults, final_status).await;

        assert_eq!(run_once(&app).await, [JobOutcome::Retrying], "{reason}");

        let doc = document(&app, "HOST-1").await;
        assert_eq!(doc["status"], Value::Null, "{reason}: {doc}");
        assert_eq!(doc["sync"]["state"], "pending", "{reason}");
        assert_eq!(doc["sync"]["attempts"], 1, "{reason}");
        let last_error = doc["sync"]["lastError"].as_str().unwrap_or_default();
        assert!(last_error.contains(reason), "{reason}: {last_error}");
        let running: i64 =
            sqlx::query_scalar("select count(*) from sync_jobs where state = 'running'")
                .fetch_one(&app.pool)
                .await
                .expect("count");
        assert_eq!(running, 0, "{reason}: no lease left to expire");
    }
}

/// A NUL in the failure message (any JSON string is allowed there) is stored as U+FFFD,
/// in the extracted column and the verbatim document alike: the status is never lost.
#[tokio::test]
async fn a_nul_in_a_free_text_field_is_stored_in_safe_form_with_its_status() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    sim_failed_payment(&sim, "NUL-1").await;
    sim.set_faults(Faults {
        failure_message: Some("card\u{0}declined\u{1}".into()),
        ..Faults::default()
    });
    app.post_callback("payins", r#"{"idEntity": "NUL-1"}"#)
        .await;

    assert_eq!(run_once(&app).await, [JobOutcome::Synced]);

    let doc = document(&app, "NUL-1").await;
    assert_eq!(doc["status"], "FAILED", "{doc}");
    assert_eq!(doc["sync"]["lastError"], Value::Null, "{doc}");
    let safe = "card\u{FFFD}declined\u{1}";
    assert_eq!(doc["failureReason"]["message"], safe, "{doc}");
    assert_eq!(
        doc["platform"]["process"]["failureReasons"]["message"],
        safe
    );
    let stored: String = sqlx::query_scalar(
        "select platform #>> '{process,failureReasons,message}' from payments where id = 'NUL-1'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("stored document");
    assert_eq!(stored, safe);
}

async fn sim_failed_payment(sim: &Simulator, id: &str) {
    sim.create_payment(payment(PaymentKind::Payin, id, "1.00"))
        .await;
    let pid = PaymentId::parse(id).expect("valid id");
    sim.set_status(PaymentKind::Payin, &pid, "FAILED").await;
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let target = format!(
        "http://{}/payins/HOST-1",
        elsewhere.local_addr().expect("addr")
    );
    let (app, _sim) = app_with(
        "HOST-1",
        Faults {
            redirect_to: Some(target),
            ..Faults::default()
        },
        None,
    )
    .await;

    assert_eq!(run_once(&app).await, [JobOutcome::Retrying]);

    let accepted = tokio::time::timeout(Duration::from_millis(200), elsewhere.accept()).await;
    assert!(accepted.is_err(), "the redirect target was contacted");
}

#[tokio::test]
async fn a_stale_non_final_answer_never_replaces_a_final_status() {
    let (app, sim) = app_with("STALE-1", Faults::default(), Some("SUCCESS")).await;
    assert_eq!(run_once(&app).await, [JobOutcome::Synced]);
    let pid = PaymentId::parse("STALE-1").expect("valid id");
    sim.set_status(PaymentKind::Payin, &pid, "PROCESSING").await;

    app.post_callback("payins", r#"{"idEntity": "STALE-1"}"#)
        .await;
    assert_eq!(run_once(&app).await, [JobOutcome::Synced]);

    let doc = document(&app, "STALE-1").await;
    assert_eq!(doc["status"], "SUCCESS");
    assert_eq!(doc["final"], true);
    assert_eq!(doc["platform"]["process"]["status"], "SUCCESS");
    let token = app.token("ops", &[]).await;
    let history: Value = app
        .get("/v1/payins/STALE-1/history", Some(&token))
        .await
        .json()
        .await
        .expect("JSON");
    let statuses: Vec<&str> = history
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(statuses, ["SUCCESS"]);
}

#[tokio::test]
async fn expire_at_is_read_from_the_payment_method_response() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let mut expiring = payment(PaymentKind::Payin, "EXP-1", "3.00");
    expiring.expire_after = Some(Duration::from_secs(20));
    sim.create_payment(expiring).await;
    app.post_callback("payins", r#"{"idEntity": "EXP-1"}"#)
        .await;
    assert_eq!(run_once(&app).await, [JobOutcome::Synced]);

    let doc = document(&app, "EXP-1").await;
    let expire_at = doc["platform"]["paymentMethodResponse"]["expireAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("the simulator sends expireAt");
    let reconcile_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select reconcile_at from sync_jobs where payment_id = 'EXP-1'")
            .fetch_one(&app.pool)
            .await
            .expect("reconcile_at");
    // Due just after the expiry (grace 5 s), well before the schedule's first minute.
    let after_expiry = reconcile_at.signed_duration_since(expire_at);
    assert!(
        (4..=6).contains(&after_expiry.num_seconds()),
        "{reconcile_at} vs {expire_at}"
    );
}

/// A 406 to the token request and to the fetch alike: the platform's business errors
/// (an array) reach `lastError`, and each code is a label of the config-error counter.
#[tokio::test]
async fn a_406_names_the_platforms_codes_in_last_error_and_metrics() {
    for token_first in [true, false] {
        let faults = Faults {
            merchant_inactive: true,
            ..Faults::default()
        };
        let (app, sim) = if token_first {
            app_with("BIZ-1", faults, None).await
        } else {
            let (app, sim) = app_with("BIZ-1", Faults::default(), None).await;
            assert_eq!(run_once(&app).await, [JobOutcome::Synced]);
            sim.set_faults(faults);
            app.post_callback("payins", r#"{"idEntity": "BIZ-1"}"#)
                .await;
            (app, sim)
        };

        assert_eq!(run_once(&app).await, [JobOutcome::Paused]);

        let refused = if token_first {
            "/auth-tokens"
        } else {
            "/payins/BIZ-1"
        };
        let trail = request_trail(&sim);
        assert_eq!(trail.last(), Some(&(refused.to_owned(), 406)), "{trail:?}");
        let doc = document(&app, "BIZ-1").await;
        let last_error = doc["sync"]["lastError"].as_str().unwrap_or_default();
        assert_eq!(
            last_error,
            "the platform refused the merchant's request (406 MERCHANT_INACTIVE: the merchant is inactive)"
        );
        let metrics = app.get("/metrics", None).await.text().await.expect("text");
        let counted = metrics.lines().any(|line| {
            line.starts_with("paymirror_platform_config_errors_total{")
                && line.contains(r#"code="MERCHANT_INACTIVE""#)
                && line.contains(r#"status="406""#)
        });
        assert!(counted, "{metrics}");
    }
}
