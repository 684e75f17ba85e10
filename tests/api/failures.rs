//! Each class of platform failure, handled on purpose: what the platform received,
//! what the payment document shows, and no hot loop.

use std::time::Duration;

use paymirror::domain::PaymentKind;
use paymirror::simulator::{Faults, Simulator, SimulatorConfig};
use paymirror::sync::JobOutcome;
use serde_json::Value;

use crate::helpers::{
    eventually, payment, request_trail, requests_for, run_once, spawn_with_simulator, TestApp,
};

async fn app_with_payment(id: &str, faults: Faults) -> (TestApp, Simulator, String) {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.backoff_base = Duration::from_millis(60_000);
            s.sync.config_error_pause = Duration::from_millis(60_000);
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    sim.create_payment(payment(PaymentKind::Payin, id, "12.34"))
        .await;
    sim.set_faults(faults);
    let token = app.token("ops", &[]).await;
    app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
        .await;
    (app, sim, token)
}

async fn sync_of(app: &TestApp, token: &str, id: &str) -> Value {
    let doc: Value = app
        .get(&format!("/v1/payins/{id}"), Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    doc["sync"].clone()
}

#[tokio::test]
async fn a_429_pauses_requeues_without_an_attempt_and_honours_retry_after() {
    let faults = Faults {
        throttle_rate: 1.0,
        retry_after_secs: Some(1),
        ..Faults::default()
    };
    let (app, sim, token) = app_with_payment("THR-1", faults).await;

    assert_eq!(run_once(&app).await, [JobOutcome::Paused]);
    let sync = sync_of(&app, &token, "THR-1").await;
    assert_eq!(sync["state"], "pending");
    assert_eq!(sync["attempts"], 0);
    assert!(
        sync["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("429")),
        "{sync}"
    );
    // Nothing is due before Retry-After: no hot loop.
    assert_eq!(app.worker.run_until_idle().await.expect("worker"), 0);
    assert_eq!(sim.requests().len(), 1);

    sim.set_faults(Faults::default());
    eventually(Duration::from_secs(10), || async {
        app.worker.run_until_idle().await.expect("worker");
        (sync_of(&app, &token, "THR-1").await["state"] == "idle").then_some(())
    })
    .await;
    let times: Vec<_> = sim.requests().iter().map(|r| r.at).collect();
    assert!(
        times[1].duration_since(times[0]) >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
}

#[tokio::test]
async fn a_401_gets_one_token_refresh_then_backs_off() {
    let faults = Faults {
        reject_tokens: true,
        ..Faults::default()
    };
    let (app, sim, token) = app_with_payment("UNAUTH-1", faults).await;

    assert_eq!(run_once(&app).await, [JobOutcome::Retrying]);

    let trail = request_trail(&sim);
    let expected = [
        ("/auth-tokens", 200),
        ("/payins/UNAUTH-1", 401),
        ("/auth-tokens", 200),
        ("/payins/UNAUTH-1", 401),
    ];
    assert_eq!(trail, expected.map(|(p, s)| (p.to_owned(), s)));
    let sync = sync_of(&app, &token, "UNAUTH-1").await;
    assert_eq!(sync["attempts"], 1);
    assert!(
        sync["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("401")),
        "{sync}"
    );
    assert_eq!(app.worker.run_until_idle().await.expect("worker"), 0);
}

#[tokio::test]
async fn a_403_or_406_is_a_configuration_problem_paused_not_counted() {
    for (faults, code) in [
        (
            Faults {
                forbid_operations: true,
                ..Faults::default()
            },
            "403",
        ),
        (
            Faults {
                merchant_inactive: true,
                ..Faults::default()
            },
            "406",
        ),
    ] {
        let (app, sim, token) = app_with_payment("CONF-1", faults).await;

        assert_eq!(run_once(&app).await, [JobOutcome::Paused]);
        assert_eq!(app.worker.run_until_idle().await.expect("worker"), 0);

        let sync = sync_of(&app, &token, "CONF-1").await;
        assert_eq!(sync["state"], "pending");
        assert_eq!(sync["attempts"], 0);
        assert!(
            sync["lastError"].as_str().is_some_and(|e| e.contains(code)),
            "{sync}"
        );
        assert!(sim.requests().len() <= 2, "hot loop: {:?}", sim.requests());
        let metrics = app
            .get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics");
        assert!(
            metrics.contains("paymirror_platform_config_errors_total"),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_410_is_retried_for_its_age_bound_then_dead_with_not_found() {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.not_found_max_age = Duration::from_millis(300);
            s.sync.backoff_base = Duration::from_millis(1);
            s.sync.backoff_cap = Duration::from_millis(1);
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    let token = app.token("ops", &[]).await;
    app.post_callback("payins", r#"{"idEntity": "GONE-1"}"#)
        .await;

    let outcomes = eventually(Duration::from_secs(10), || async {
        let outcomes = run_once(&app).await;
        outcomes.contains(&JobOutcome::Dead).then_some(outcomes)
    })
    .await;

    assert_eq!(outcomes, [JobOutcome::Dead]);
    let fetches = requests_for(&sim, "/payins/GONE-1");
    assert!(fetches >= 2, "retried before dying: {fetches}");
    let sync = sync_of(&app, &token, "GONE-1").await;
    assert_eq!(sync["state"], "dead");
    assert_eq!(sync["attempts"], fetches);
    assert!(
        sync["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("not found")),
        "{sync}"
    );
}

#[tokio::test]
async fn a_payment_not_visible_yet_is_found_on_a_later_attempt() {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.backoff_base = Duration::from_millis(50);
            s.sync.backoff_cap = Duration::from_millis(100);
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    sim.set_faults(Faults {
        invisible_for_ms: 400,
        ..Faults::default()
    });
    sim.create_payment(payment(PaymentKind::Payin, "FRESH-1", "5.00"))
        .await;
    let token = app.token("ops", &[]).await;
    app.post_callback("payins", r#"{"idEntity": "FRESH-1"}"#)
        .await;

    eventually(Duration::from_secs(10), || async {
        app.worker.run_until_idle().await.expect("worker");
        (sync_of(&app, &token, "FRESH-1").await["state"] == "idle").then_some(())
    })
    .await;

    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/payins/FRESH-1")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.first(), Some(&410));
    assert_eq!(statuses.last(), Some(&200));
}

#[tokio::test]
async fn server_errors_and_unparseable_bodies_back_off_then_die_after_their_age_bound() {
    for (faults, expected) in [
        (
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
            "500",
        ),
        (
            Faults {
                malformed_body_rate: 1.0,
                ..Faults::default()
            },
            "did not parse",
        ),
    ] {
        let (app, sim) = spawn_with_simulator(
            |s| {
                s.sync.max_retry_age = Duration::from_millis(300);
                s.sync.backoff_base = Duration::from_millis(1);
                s.sync.backoff_cap = Duration::from_millis(1);
            },
            SimulatorConfig::default(),
            false,
        )
        .await;
        sim.create_payment(payment(PaymentKind::Payin, "ERR-1", "1.00"))
            .await;
        sim.set_faults(faults);
        let token = app.token("ops", &[]).await;
        app.post_callback("payins", r#"{"idEntity": "ERR-1"}"#)
            .await;

        eventually(Duration::from_secs(10), || async {
            run_once(&app)
                .await
                .contains(&JobOutcome::Dead)
                .then_some(())
        })
        .await;

        let sync = sync_of(&app, &token, "ERR-1").await;
        assert_eq!(sync["state"], "dead");
        assert!(
            sync["attempts"].as_i64().is_some_and(|n| n >= 2),
            "retried before dying: {sync}"
        );
        assert!(
            sync["lastError"]
                .as_str()
                .is_some_and(|e| e.contains(expected)),
            "{sync}"
        );
        assert_eq!(app.worker.run_until_idle().await.expect("worker"), 0);
    }
}
