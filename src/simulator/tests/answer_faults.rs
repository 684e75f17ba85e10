//! Faults that bend answers and connections: the wrong payment named, a chosen
//! failure message, padding, a redirect, and slow connection set-up.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::platform::{fetch, token};
use super::*;

/// Returns a simulator that allows 1000 requests per second.
async fn start_fast() -> Simulator {
    start(SimulatorConfig {
        max_rps: 1000,
        ..SimulatorConfig::default()
    })
    .await
}

/// Returns the JSON of a 200 answer to `GET {path}`.
async fn fetch_ok(http: &reqwest::Client, sim: &Simulator, path: &str, token: &str) -> Value {
    let answer = fetch(http, sim, path, Some(token), Some("2")).await;
    assert_eq!(answer.status(), StatusCode::OK, "{path}");
    answer.json().await.unwrap()
}

#[tokio::test]
async fn the_admin_route_sets_and_checks_the_new_faults() {
    let sim = start_fast().await;
    let http = client();
    let url = format!("{}/_sim/faults", sim.base_url());
    let body = json!({"connectDelayMs": 5, "wrongIdRate": 0.5, "failureMessage": "m\u{0}",
        "bodyPaddingBytes": 7, "redirectTo": "http://127.0.0.1:9/x"});
    let put = http.put(&url).json(&body).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let expected = Faults {
        connect_delay_ms: 5,
        wrong_id_rate: 0.5,
        failure_message: Some("m\u{0}".into()),
        body_padding_bytes: 7,
        redirect_to: Some("http://127.0.0.1:9/x".into()),
        ..Faults::default()
    };
    assert_eq!(sim.faults(), expected);
    for bad in [
        json!({"wrongIdRate": 1.5}),
        json!({"bodyPaddingBytes": 1_000_000_000_u64}),
        json!({"redirectTo": ""}),
        json!({"connectDelayMs": -1}),
    ] {
        let answer = http.put(&url).json(&bad).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(sim.faults(), expected, "a refused PUT changes nothing");
}

#[tokio::test]
async fn wrong_ids_name_another_payment_at_the_configured_rate() {
    let sim = start_fast().await;
    sim.create_payment(new_payment(PaymentKind::Payout, "W-1", "1.00"))
        .await;
    let http = client();
    let payouts = token(&http, &sim, &["GET /payouts/.*"]).await;
    // Returns the `idPayout` each of `n` fetches named.
    let named = |n: usize| {
        let (http, sim, payouts) = (&http, &sim, &payouts);
        async move {
            let mut ids = Vec::new();
            for _ in 0..n {
                let doc = fetch_ok(http, sim, "/payouts/W-1", payouts).await;
                ids.push(doc["paymentMethodResponse"]["idPayout"].to_string());
            }
            ids
        }
    };
    sim.set_faults(Faults {
        wrong_id_rate: 1.0,
        ..Faults::default()
    });
    assert!(named(3).await.iter().all(|id| id == r#""W-1-OTHER""#));
    sim.set_faults(Faults {
        wrong_id_rate: 0.5,
        ..Faults::default()
    });
    let mixed = named(40).await;
    assert!(mixed.iter().any(|id| id == r#""W-1""#), "{mixed:?}");
    assert!(mixed.iter().any(|id| id == r#""W-1-OTHER""#), "{mixed:?}");
    sim.set_faults(Faults::default());
    assert_eq!(named(1).await, vec![r#""W-1""#.to_owned()]);
}

#[tokio::test]
async fn a_failure_message_replaces_the_text_of_failed_and_refused_payments() {
    let sim = start_fast().await;
    for (raw_id, status) in [("M-1", "FAILED"), ("M-2", "REFUSED"), ("M-3", "SUCCESS")] {
        sim.create_payment(new_payment(PaymentKind::Payout, raw_id, "1.00"))
            .await;
        assert!(
            sim.set_status(PaymentKind::Payout, &id(raw_id), status)
                .await
        );
    }
    let message = "funds \u{0} missing";
    sim.set_faults(Faults {
        failure_message: Some(message.into()),
        ..Faults::default()
    });
    let http = client();
    let payouts = token(&http, &sim, &["GET /payouts/.*"]).await;
    for raw_id in ["M-1", "M-2"] {
        let answer = fetch(
            &http,
            &sim,
            &format!("/payouts/{raw_id}"),
            Some(&payouts),
            Some("2"),
        )
        .await;
        let text = answer.text().await.unwrap();
        assert!(
            text.contains(r#""message":"funds \u0000 missing""#),
            "{text}"
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["process"]["failureReasons"]["message"], message);
    }
    let success = fetch_ok(&http, &sim, "/payouts/M-3", &payouts).await;
    assert!(success["process"].get("failureReasons").is_none());
}

#[tokio::test]
async fn padding_grows_every_200_payment_answer() {
    let sim = start_fast().await;
    sim.create_payment(new_payment(PaymentKind::Payin, "P-1", "1.00"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let plain = fetch_ok(&http, &sim, "/payins/P-1", &payins).await;
    assert!(plain.get("padding").is_none());
    sim.set_faults(Faults {
        body_padding_bytes: 100_000,
        ..Faults::default()
    });
    let answer = fetch(&http, &sim, "/payins/P-1", Some(&payins), Some("2")).await;
    let text = answer.text().await.unwrap();
    assert!(text.len() > 100_000, "{}", text.len());
    let doc: Value = serde_json::from_str(&text).unwrap();
    let padding = doc["padding"].as_str().unwrap();
    assert!(padding.len() == 100_000 && padding.bytes().all(|b| b == b'x'));
    assert_eq!(doc["paymentMethodResponse"]["idPayin"], "P-1");
    let gone = fetch(&http, &sim, "/payins/NOPE", Some(&payins), Some("2")).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(
        gone.text().await.unwrap().len() < 1000,
        "only 200s are padded"
    );
}

#[tokio::test]
async fn payment_fetches_are_redirected_and_still_recorded() {
    let sim = start_fast().await;
    sim.create_payment(new_payment(PaymentKind::Payin, "R-1", "1.00"))
        .await;
    let location = "http://127.0.0.1:9/elsewhere";
    sim.set_faults(Faults {
        redirect_to: Some(location.into()),
        ..Faults::default()
    });
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    for path in ["/payins/R-1", "/payouts/R-1"] {
        let answer = fetch(&http, &sim, path, Some(&payins), Some("2")).await;
        assert_eq!(answer.status(), StatusCode::FOUND, "{path}");
        assert_eq!(answer.headers()["location"], location);
    }
    let trail: Vec<_> = sim
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert_eq!(
        trail,
        [
            ("/auth-tokens", 200),
            ("/payins/R-1", 302),
            ("/payouts/R-1", 302)
        ]
        .map(|(path, status)| (path.to_owned(), status))
    );
    assert_eq!(sim.stats().by_status.get(&302).copied(), Some(2));
}

/// How long a new connection is held in the connect-delay test.
const CONNECT_DELAY: Duration = Duration::from_millis(300);

/// Sends `GET /payins/X` (answered 401) and reads the whole answer, so the
/// connection can be reused; returns when the request was sent.
async fn probe(http: &reqwest::Client, sim: &Simulator) -> Instant {
    let sent = Instant::now();
    let answer = fetch(http, sim, "/payins/X", None, Some("2")).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    answer.bytes().await.unwrap();
    sent
}

#[tokio::test]
async fn a_connect_delay_holds_new_connections_but_not_reused_ones() {
    let sim = start_fast().await;
    sim.set_faults(Faults {
        connect_delay_ms: CONNECT_DELAY.as_millis() as u64,
        ..Faults::default()
    });
    let http = client();
    let first = probe(&http, &sim).await;
    let reused = probe(&http, &sim).await;
    let fresh = probe(&client(), &sim).await;
    let arrivals: Vec<_> = sim.requests().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 3);
    let waited = |arrival: Instant, sent: Instant| arrival.saturating_duration_since(sent);
    assert!(
        waited(arrivals[0], first) >= CONNECT_DELAY,
        "{:?}",
        waited(arrivals[0], first)
    );
    assert!(waited(arrivals[1], reused) < Duration::from_millis(200));
    assert!(waited(arrivals[2], fresh) >= CONNECT_DELAY);

    sim.set_faults(Faults::default());
    let undelayed = probe(&client(), &sim).await;
    let arrival = sim.requests()[3].at;
    assert!(waited(arrival, undelayed) < Duration::from_millis(200));
}

#[tokio::test]
async fn shutdown_drops_connections_still_held_by_the_connect_delay() {
    let sim = start_fast().await;
    sim.set_faults(Faults {
        connect_delay_ms: 60_000,
        ..Faults::default()
    });
    let held = tokio::spawn({
        let url = format!("{}/payins/X", sim.base_url());
        async move { client().get(url).header("X-API-Version", "2").send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.shutdown();
    tokio::time::timeout(PATIENCE, sim.stopped()).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert!(answer.is_err(), "{answer:?}");
    assert!(sim.requests().is_empty());
}
