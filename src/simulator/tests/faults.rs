//! Platform faults, changed while the simulator runs: the admin route, injected
//! 429s, capped token lifetimes, not-yet-visible payments, malformed bodies,
//! and the inactive-merchant and forbidden-operation switches.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::platform::{fetch, request_token, token};
use super::*;

/// Returns a simulator that allows `max_rps` requests per second.
async fn start_with_rps(max_rps: u32) -> Simulator {
    start(SimulatorConfig {
        max_rps,
        ..SimulatorConfig::default()
    })
    .await
}

/// Returns the answer to `PUT /_sim/faults` with `body`.
async fn put_faults(http: &reqwest::Client, sim: &Simulator, body: Value) -> reqwest::Response {
    http.put(format!("{}/_sim/faults", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_admin_route_reads_replaces_and_validates_faults() {
    let sim = start_with_rps(1000).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "F-1", "1.00"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let url = format!("{}/_sim/faults", sim.base_url());
    let shown: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown, json!(Faults::default()));
    assert_eq!(shown["errorRate"], 0.0);

    let put = put_faults(&http, &sim, json!({"errorRate": 1.0, "latencyMs": 5})).await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(sim.faults().error_rate, 1.0);
    let failed = fetch(&http, &sim, "/payins/F-1", Some(&payins), Some("2")).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);

    for bad in [
        json!({"errorRate": 1.5}),
        json!({"throttleRate": -0.5}),
        json!({"error_rate": 0.5}),
        json!({"latencyMs": "soon"}),
    ] {
        let answer = put_faults(&http, &sim, bad.clone()).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["description"].is_string(), "{body}");
    }
    assert_eq!(
        sim.faults().error_rate,
        1.0,
        "a refused PUT changes nothing"
    );

    sim.set_latency(Duration::from_millis(7));
    assert_eq!((sim.faults().latency_ms, sim.faults().error_rate), (7, 1.0));
    let put = put_faults(&http, &sim, json!({})).await;
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(sim.faults(), Faults::default());
    let ok = fetch(&http, &sim, "/payins/F-1", Some(&payins), Some("2")).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn injected_429s_carry_retry_after_only_when_configured() {
    let sim = start_with_rps(1000).await;
    let http = client();
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let bare = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(bare.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(bare.headers().get("retry-after").is_none());
    assert!(bare.json::<Value>().await.unwrap()["description"].is_string());

    sim.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: Some(7),
        ..Faults::default()
    });
    let hinted = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(hinted.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(hinted.headers()["retry-after"], "7");

    sim.set_faults(Faults::default());
    let through = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(through.status(), StatusCode::UNAUTHORIZED);
    let stats = sim.stats();
    assert_eq!(
        (stats.throttled_injected, stats.throttled_by_window),
        (2, 0)
    );
    assert_eq!(stats.by_status.get(&429).copied(), Some(2));
    assert_eq!(
        stats.peak_admitted_per_second,
        stats.peak_requests_per_second
    );
}

#[tokio::test]
async fn window_429s_are_counted_apart_and_carry_retry_after_when_configured() {
    let sim = start_with_rps(1).await;
    sim.set_faults(Faults {
        retry_after_secs: Some(2),
        ..Faults::default()
    });
    let http = client();
    let first = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let second = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "2");
    let stats = sim.stats();
    assert_eq!(
        (stats.throttled_by_window, stats.throttled_injected),
        (1, 0)
    );
    assert_eq!(stats.peak_requests_per_second, 2);
    assert_eq!(stats.peak_admitted_per_second, 1);
}

#[tokio::test]
async fn token_lifetime_is_capped_whatever_was_asked() {
    let sim = start(SimulatorConfig::default()).await;
    let http = client();
    // Returns `exp - iat` of a token that asked for 600 s.
    let lifetime = || async {
        let token = token(&http, &sim, &["GET /payins/.*"]).await;
        let claims = sim
            .shared
            .keys()
            .verify(&token, jsonwebtoken::get_current_timestamp())
            .unwrap();
        claims.exp - claims.iat
    };
    assert_eq!(lifetime().await, 600);
    sim.set_faults(Faults {
        token_lifetime_cap_secs: Some(5),
        ..Faults::default()
    });
    assert_eq!(lifetime().await, 5);
    sim.set_faults(Faults {
        token_lifetime_cap_secs: Some(3600),
        ..Faults::default()
    });
    assert_eq!(lifetime().await, 600, "a cap never lengthens a token");
}

#[tokio::test]
async fn fresh_payments_answer_410_until_they_are_visible() {
    let sim = start(SimulatorConfig::default()).await;
    sim.set_faults(Faults {
        invisible_for_ms: 60_000,
        ..Faults::default()
    });
    sim.create_payment(new_payment(PaymentKind::Payout, "F-2", "3.00"))
        .await;
    let http = client();
    let payouts = token(&http, &sim, &["GET /payouts/.*"]).await;
    let hidden = fetch(&http, &sim, "/payouts/F-2", Some(&payouts), Some("2")).await;
    assert_eq!(hidden.status(), StatusCode::GONE);
    assert!(hidden.json::<Value>().await.unwrap()["description"].is_string());

    let invisible_for = Duration::from_millis(300);
    sim.set_faults(Faults {
        invisible_for_ms: 300,
        ..Faults::default()
    });
    let created = sim.shared.read(|state| {
        let key = ("M1".to_owned(), PaymentKind::Payout, id("F-2"));
        state.payments[&key].created_instant
    });
    // Not a check but a wait: from this instant on the payment must be visible.
    tokio::time::sleep_until((created + invisible_for).into()).await;
    let shown = fetch(&http, &sim, "/payouts/F-2", Some(&payouts), Some("2")).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let body: Value = shown.json().await.unwrap();
    assert_eq!(body["paymentRequested"]["idPayout"], "F-2");
}

#[tokio::test]
async fn malformed_bodies_are_200s_that_are_not_the_payment_document() {
    let sim = start_with_rps(1000).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "F-3", "42.05"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    sim.set_faults(Faults {
        malformed_body_rate: 1.0,
        ..Faults::default()
    });
    let (mut objects, mut truncated) = (0, 0);
    for _ in 0..30 {
        let answer = fetch(&http, &sim, "/payins/F-3", Some(&payins), Some("2")).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.headers()["content-type"], "application/json");
        match serde_json::from_str::<Value>(&answer.text().await.unwrap()) {
            Ok(body) => {
                assert!(body.get("process").is_none(), "{body}");
                objects += 1;
            }
            Err(_) => truncated += 1,
        }
    }
    assert!(objects > 0 && truncated > 0, "{objects} {truncated}");

    sim.set_faults(Faults::default());
    let answer = fetch(&http, &sim, "/payins/F-3", Some(&payins), Some("2")).await;
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["process"]["status"], "PROCESSING");
}

#[tokio::test]
async fn inactive_merchant_and_forbidden_operation_switches() {
    let sim = start(SimulatorConfig::default()).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "F-4", "1.00"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;

    sim.set_faults(Faults {
        merchant_inactive: true,
        ..Faults::default()
    });
    let fetched = fetch(&http, &sim, "/payins/F-4", Some(&payins), Some("2")).await;
    assert_eq!(fetched.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        fetched.json::<Value>().await.unwrap()[0]["code"],
        "MERCHANT_INACTIVE"
    );
    let issued = request_token(&http, &sim, &["GET /payins/.*"]).await;
    assert_eq!(issued.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(
        issued.json::<Value>().await.unwrap()[0]["code"],
        "MERCHANT_INACTIVE"
    );

    sim.set_faults(Faults {
        forbid_operations: true,
        ..Faults::default()
    });
    let forbidden = fetch(&http, &sim, "/payins/F-4", Some(&payins), Some("2")).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.json::<Value>().await.unwrap()["description"].is_string());
    let issued = request_token(&http, &sim, &["GET /payins/.*"]).await;
    assert_eq!(issued.status(), StatusCode::OK, "tokens are still issued");

    sim.set_faults(Faults::default());
    let fetched = fetch(&http, &sim, "/payins/F-4", Some(&payins), Some("2")).await;
    assert_eq!(fetched.status(), StatusCode::OK);
}
