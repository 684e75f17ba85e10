//! The platform routes: tokens, fetches, version header, throttle, admin routes.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::*;

/// Returns the answer to `POST /auth-tokens` with the simulator's credentials.
pub(super) async fn request_token(
    http: &reqwest::Client,
    sim: &Simulator,
    operations: &[&str],
) -> reqwest::Response {
    http.post(format!("{}/auth-tokens", sim.base_url()))
        .header("X-API-Version", "2")
        .json(&json!({"merchantCode": "M1", "secret": "sim-secret", "validitySecs": 600, "operations": operations}))
        .send()
        .await
        .unwrap()
}

/// Returns a token allowing `operations`.
pub(super) async fn token(http: &reqwest::Client, sim: &Simulator, operations: &[&str]) -> String {
    let answer = request_token(http, sim, operations).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Returns the answer to `GET {path}` with the given token and version header.
pub(super) async fn fetch(
    http: &reqwest::Client,
    sim: &Simulator,
    path: &str,
    token: Option<&str>,
    version: Option<&str>,
) -> reqwest::Response {
    let mut request = http.get(format!("{}{path}", sim.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(version) = version {
        request = request.header("X-API-Version", version);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn answers_fetches_like_the_platform_and_throttles() {
    let sim = start(SimulatorConfig::default()).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "TST-1", "42.05"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;

    let ok = fetch(&http, &sim, "/payins/TST-1", Some(&payins), Some("2")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let text = ok.text().await.unwrap();
    assert!(text.contains(r#""amount":42.05,"#), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["paymentRequested"]["idPayin"], "TST-1");
    assert_eq!(body["process"]["status"], "PROCESSING");
    assert_eq!(body["paymentMethodResponse"]["paymentMethodCode"], "UPIQR");

    let cases = [
        (
            "/payins/TST-1",
            Some(payins.as_str()),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "/payins/TST-1",
            Some(payins.as_str()),
            Some("1"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/payins/NOPE",
            Some(payins.as_str()),
            Some("2"),
            StatusCode::GONE,
        ),
        (
            "/payouts/TST-1",
            Some(payins.as_str()),
            Some("2"),
            StatusCode::FORBIDDEN,
        ),
        ("/payins/TST-1", None, Some("2"), StatusCode::UNAUTHORIZED),
        (
            "/payins/TST-1",
            Some("not.a.jwt"),
            Some("2"),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (path, token, version, expected) in cases {
        let answer = fetch(&http, &sim, path, token, version).await;
        assert_eq!(answer.status(), expected, "{path} {version:?}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["description"].is_string(), "{body}");
    }

    // Eleven token requests at once: at most ten fit in a second, and a
    // refused one is not processed (issues no token).
    let before = sim.stats().tokens_issued;
    let mut burst = JoinSet::new();
    for _ in 0..11 {
        let (http, url) = (http.clone(), sim.base_url());
        burst.spawn(async move {
            http.post(format!("{url}/auth-tokens"))
                .header("X-API-Version", "2")
                .json(&json!({"merchantCode": "M1", "secret": "sim-secret", "operations": [".*"]}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = burst.join_all().await;
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let issued = statuses.iter().filter(|s| **s == StatusCode::OK).count() as u64;
    assert!(throttled >= 1, "{statuses:?}");
    assert_eq!(throttled as u64 + issued, 11, "{statuses:?}");
    assert_eq!(sim.stats().tokens_issued, before + issued);

    let requests = sim.requests();
    assert_eq!(requests.len(), 1 + 1 + 6 + 11);
    assert!(requests.iter().all(|r| r.status != 0));
    assert_eq!(requests[0].path, "/auth-tokens");
    assert_eq!(
        requests[1].authorization.as_deref(),
        Some(format!("Bearer {payins}").as_str())
    );
    assert!(max_accepted_in_any_second(&requests) <= 10);
    let stats = sim.stats();
    assert_eq!(stats.requests, requests.len() as u64);
    assert_eq!(stats.by_status.get(&429).copied(), Some(throttled as u64));
    assert!(stats.peak_requests_per_second >= 11);
}

/// Returns the most non-429 requests that arrived within any 1000 ms.
fn max_accepted_in_any_second(requests: &[super::super::RecordedRequest]) -> usize {
    let accepted: Vec<_> = requests
        .iter()
        .filter(|r| r.status != 429)
        .map(|r| r.at)
        .collect();
    (0..accepted.len())
        .map(|i| {
            accepted[i..]
                .iter()
                .take_while(|at| at.duration_since(accepted[i]) < super::super::window::WINDOW)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn token_requests_are_validated_in_the_platform_order() {
    let sim = start(SimulatorConfig::default()).await;
    let http = client();
    let post = |body: Value| {
        http.post(format!("{}/auth-tokens", sim.base_url()))
            .header("X-API-Version", "2")
            .json(&body)
            .send()
    };
    let cases = [
        (json!({"merchantCode": "M1"}), 400, None),
        (
            json!({"merchantCode": "M1", "secret": "sim-secret", "validitySecs": 59}),
            400,
            None,
        ),
        (
            json!({"merchantCode": "M1", "secret": "sim-secret", "validitySecs": 3601}),
            400,
            None,
        ),
        (
            json!({"merchantCode": "M2", "secret": "sim-secret"}),
            406,
            Some("MERCHANT_NOT_FOUND"),
        ),
        (json!({"merchantCode": "M1", "secret": "wrong"}), 403, None),
        (
            json!({"merchantCode": "M1", "secret": "sim-secret", "operations": ["GET /payins/("]}),
            406,
            Some("OPERATION_INVALID"),
        ),
    ];
    for (body, status, code) in cases {
        let answer = post(body.clone()).await.unwrap();
        assert_eq!(answer.status().as_u16(), status, "{body}");
        let answer: Value = answer.json().await.unwrap();
        // 406 bodies are arrays of business errors; the others `{"description"}`.
        assert_eq!(answer[0]["code"].as_str(), code, "{body}");
        assert_eq!(answer.is_array(), status == 406, "{answer}");
    }
    assert_eq!(sim.stats().tokens_issued, 0);
}

#[tokio::test]
async fn a_delayed_answer_reflects_the_state_when_the_request_arrived() {
    let sim = start(SimulatorConfig::default()).await;
    sim.create_payment(new_payment(PaymentKind::Payin, "TST-4", "1.00"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    sim.set_latency(Duration::from_millis(300));

    let in_flight = tokio::spawn({
        let (http, sim_url) = (http.clone(), sim.base_url());
        async move {
            let url = format!("{sim_url}/payins/TST-4");
            let answer = http
                .get(url)
                .header("X-API-Version", "2")
                .bearer_auth(payins)
                .send();
            answer.await.unwrap().json::<Value>().await.unwrap()
        }
    });
    // On this single-threaded runtime the answer is computed right after the
    // request is logged, before this task runs again; the latency follows.
    sim.wait_until(PATIENCE, |s| s.requests().len() == 2)
        .await
        .unwrap();
    assert!(
        sim.set_status(PaymentKind::Payin, &id("TST-4"), "SUCCESS")
            .await
    );
    let answer = in_flight.await.unwrap();
    assert_eq!(answer["process"]["status"], "PROCESSING");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start(SimulatorConfig::default()).await;
    let http = client();
    assert_eq!(
        request_token(&http, &sim, &[]).await.status(),
        StatusCode::OK
    );
    sim.shutdown();
    tokio::time::timeout(PATIENCE, sim.stopped()).await.unwrap();
    let after = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(after
        .get(format!("{}/payins/X", sim.base_url()))
        .send()
        .await
        .is_err());
}
