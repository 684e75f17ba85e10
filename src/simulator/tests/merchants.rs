//! Several merchants at once: each with its own secret, throttle, payments,
//! callback path and faults, and answers the published document allows.

use axum::http::Uri;
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::platform::fetch;
use super::schema::{assert_allowed, template};
use super::*;
use crate::simulator::{MerchantStats, RecordedRequest, SimMerchant};

/// The second merchant's secret.
const M2_SECRET: &str = "m2-secret";

/// Returns the default config plus merchant M2 (`M2_SECRET`, `m2_rps` a second).
fn two_merchants(m1_rps: u32, m2_rps: u32) -> SimulatorConfig {
    SimulatorConfig {
        max_rps: m1_rps,
        merchants: vec![SimMerchant {
            code: "M2".into(),
            secret: M2_SECRET.into(),
            max_rps: m2_rps,
        }],
        ..SimulatorConfig::default()
    }
}

/// Returns the answer to `POST /auth-tokens` for `merchant` with `secret`.
async fn request_token_as(
    http: &reqwest::Client,
    sim: &Simulator,
    merchant: &str,
    secret: &str,
) -> reqwest::Response {
    http.post(format!("{}/auth-tokens", sim.base_url()))
        .header("X-API-Version", "2")
        .json(&json!({
            "merchantCode": merchant,
            "secret": secret,
            "operations": ["GET /payins/.*", "GET /payouts/.*"],
        }))
        .send()
        .await
        .unwrap()
}

/// Returns a token of `merchant` allowing every fetch.
async fn token_as(http: &reqwest::Client, sim: &Simulator, merchant: &str, secret: &str) -> String {
    let answer = request_token_as(http, sim, merchant, secret).await;
    assert_eq!(answer.status(), StatusCode::OK, "{merchant}");
    let body: Value = answer.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// Returns the status and JSON body of `answer`.
async fn json_of(answer: reqwest::Response) -> (StatusCode, Value) {
    let status = answer.status();
    (status, answer.json().await.unwrap())
}

/// Returns the most requests of `merchant` not answered 429 within any 1000 ms,
/// and how many were answered 429, as a test outside would count them.
fn peak_and_429s(requests: &[RecordedRequest], merchant: &str) -> (usize, usize) {
    let of = |r: &&RecordedRequest| r.merchant.as_deref() == Some(merchant);
    let admitted: Vec<_> = requests
        .iter()
        .filter(of)
        .filter(|r| r.status != 429)
        .map(|r| r.at)
        .collect();
    let peak = (0..admitted.len())
        .map(|i| {
            admitted[i..]
                .iter()
                .take_while(|at| at.duration_since(admitted[i]) < crate::simulator::window::WINDOW)
                .count()
        })
        .max()
        .unwrap_or(0);
    let throttled = requests
        .iter()
        .filter(of)
        .filter(|r| r.status == 429)
        .count();
    (peak, throttled)
}

#[tokio::test]
async fn each_merchant_gets_tokens_with_its_own_secret_only() {
    let sim = start(two_merchants(100, 100)).await;
    let http = client();
    let now = jsonwebtoken::get_current_timestamp();
    for (merchant, secret) in [("M1", "sim-secret"), ("M2", M2_SECRET)] {
        let token = token_as(&http, &sim, merchant, secret).await;
        let claims = sim.shared.keys().verify(&token, now).unwrap();
        assert_eq!(claims.sub, merchant);
    }
    let mut answers = Vec::new();
    for (merchant, secret, expected) in [
        ("M2", "sim-secret", StatusCode::FORBIDDEN),
        ("M1", M2_SECRET, StatusCode::FORBIDDEN),
        ("M9", M2_SECRET, StatusCode::NOT_ACCEPTABLE),
    ] {
        let (status, body) = json_of(request_token_as(&http, &sim, merchant, secret).await).await;
        assert_eq!(status, expected, "{merchant}: {body}");
        answers.push((status, body));
    }
    assert_eq!(answers[2].1[0]["code"], "MERCHANT_NOT_FOUND");
    assert_allowed(answers.iter().map(|(s, b)| ("/auth-tokens", "post", *s, b)));

    let merchants: Vec<_> = sim.requests().into_iter().map(|r| r.merchant).collect();
    let named = |code: &str| Some(code.to_owned());
    assert_eq!(
        merchants,
        [named("M1"), named("M2"), named("M2"), named("M1"), None]
    );
    let stats = sim.stats();
    assert_eq!(stats.tokens_issued, 2);
    assert_eq!(stats.per_merchant.keys().collect::<Vec<_>>(), ["M1", "M2"]);
    for code in ["M1", "M2"] {
        let own = &stats.per_merchant[code];
        assert_eq!((own.requests, own.tokens_issued), (2, 1), "{code}");
    }
}

#[tokio::test]
async fn one_merchant_saturated_with_429s_leaves_another_untouched() {
    let sim = start(two_merchants(2, 50)).await;
    let http = client();
    let m2_token = token_as(&http, &sim, "M2", M2_SECRET).await;
    sim.create_payment_as("M2", new_payment(PaymentKind::Payin, "T-1", "1"))
        .await
        .unwrap();
    // M1's tokens and M2's fetches, all at once: M1 may make 2 a second, M2 50.
    let mut burst = JoinSet::new();
    for n in 0..30 {
        let (http, url, m2_token) = (http.clone(), sim.base_url(), m2_token.clone());
        burst.spawn(async move {
            let request = if n % 2 == 0 {
                http.post(format!("{url}/auth-tokens")).json(
                    &json!({"merchantCode": "M1", "secret": "sim-secret", "operations": [".*"]}),
                )
            } else {
                http.get(format!("{url}/payins/T-1")).bearer_auth(m2_token)
            };
            let answer = request.header("X-API-Version", "2").send().await.unwrap();
            (n % 2 == 0, answer.status())
        });
    }
    let answers = burst.join_all().await;
    let m1_429s = answers
        .iter()
        .filter(|(m1, s)| *m1 && *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(m1_429s >= 1, "{answers:?}");
    assert!(
        answers.iter().all(|(m1, s)| *m1 || *s == StatusCode::OK),
        "every M2 fetch is answered: {answers:?}"
    );

    let requests = sim.requests();
    let (m1_peak, m1_throttled) = peak_and_429s(&requests, "M1");
    let (m2_peak, m2_throttled) = peak_and_429s(&requests, "M2");
    assert!(m1_peak <= 2, "{m1_peak}");
    assert_eq!((m1_throttled, m2_throttled), (m1_429s, 0));
    assert_eq!(requests.iter().filter(|r| r.merchant.is_none()).count(), 0);
    let stats = sim.stats();
    let m1 = &stats.per_merchant["M1"];
    let m2 = &stats.per_merchant["M2"];
    assert_eq!(m1.throttled_by_window, m1_429s as u64);
    assert_eq!(m1.peak_admitted_per_second, m1_peak as u64);
    assert!(m1.peak_requests_per_second > 2);
    assert_eq!(
        (m2.requests, m2.throttled_by_window, m2.tokens_issued),
        (16, 0, 1)
    );
    assert_eq!(m2.peak_admitted_per_second, m2_peak as u64);
    assert_eq!(stats.throttled_by_window, m1_429s as u64);
}

#[tokio::test]
async fn requests_naming_no_merchant_share_the_primary_window() {
    let sim = start(two_merchants(1, 10)).await;
    let http = client();
    let foreign = fetch(&http, &sim, "/payins/X", Some("not.a.jwt"), Some("2")).await;
    assert_eq!(foreign.status(), StatusCode::UNAUTHORIZED);
    let anonymous = fetch(&http, &sim, "/payins/X", None, Some("2")).await;
    assert_eq!(anonymous.status(), StatusCode::TOO_MANY_REQUESTS);
    let m2 = request_token_as(&http, &sim, "M2", M2_SECRET).await;
    assert_eq!(m2.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!(stats.per_merchant["M1"], MerchantStats::default());
    assert_eq!(stats.throttled_by_window, 1);
}

#[tokio::test]
async fn the_same_id_under_two_merchants_is_two_payments() {
    let sim = start(two_merchants(100, 100)).await;
    let http = client();
    sim.create_payment(new_payment(PaymentKind::Payin, "SAME-1", "1.00"))
        .await;
    sim.create_payment_as("M2", new_payment(PaymentKind::Payin, "SAME-1", "2.00"))
        .await
        .unwrap();
    sim.create_payment_as("M1", new_payment(PaymentKind::Payout, "ONLY-M1", "3"))
        .await
        .unwrap();
    assert!(sim
        .create_payment_as("M9", new_payment(PaymentKind::Payin, "NO-1", "1"))
        .await
        .is_err());

    let m1 = token_as(&http, &sim, "M1", "sim-secret").await;
    let m2 = token_as(&http, &sim, "M2", M2_SECRET).await;
    let mut answers = Vec::new();
    for (token, path, expected) in [
        (&m1, "/payins/SAME-1", StatusCode::OK),
        (&m2, "/payins/SAME-1", StatusCode::OK),
        (&m1, "/payouts/ONLY-M1", StatusCode::OK),
        (&m2, "/payouts/ONLY-M1", StatusCode::GONE),
    ] {
        let (status, body) = json_of(fetch(&http, &sim, path, Some(token), Some("2")).await).await;
        assert_eq!(status, expected, "{path}: {body}");
        answers.push((path, status, body));
    }
    let amounts: Vec<_> = answers[..2]
        .iter()
        .map(|(_, _, body)| body["paymentRequested"]["money"]["amount"].to_string())
        .collect();
    assert_eq!(amounts, ["1.00", "2.00"]);
    assert_ne!(
        answers[0].2["paymentMethodResponse"]["idPayment"],
        answers[1].2["paymentMethodResponse"]["idPayment"]
    );
    assert_allowed(
        answers
            .iter()
            .map(|(path, status, body)| (template(path), "get", *status, body)),
    );

    let same = id("SAME-1");
    assert!(
        sim.set_status_as("M2", PaymentKind::Payin, &same, "SUCCESS")
            .await
    );
    assert!(
        !sim.set_status_as("M2", PaymentKind::Payout, &id("ONLY-M1"), "SUCCESS")
            .await
    );
    assert_eq!(
        sim.payment_status(PaymentKind::Payin, &same).as_deref(),
        Some("PROCESSING")
    );
    assert_eq!(
        sim.payment_status_as("M2", PaymentKind::Payin, &same)
            .as_deref(),
        Some("SUCCESS")
    );
    assert_eq!(sim.payments(), sim.payments_as("M1"));
    assert_eq!(
        sim.payments(),
        vec![
            (PaymentKind::Payin, same.clone(), "PROCESSING".to_owned()),
            (PaymentKind::Payout, id("ONLY-M1"), "PROCESSING".to_owned()),
        ]
    );
    assert_eq!(
        sim.payments_as("M2"),
        vec![(PaymentKind::Payin, same, "SUCCESS".to_owned())]
    );
    assert!(sim.payments_as("M9").is_empty());
}

#[tokio::test]
async fn admin_routes_name_the_merchant_of_each_payment() {
    let sim = start(two_merchants(10, 10)).await;
    let http = client();
    let admin = |path: &str| format!("{}/_sim{path}", sim.base_url());
    let create = |body: Value| http.post(admin("/payments")).json(&body).send();
    let payment = json!({"kind": "payin", "id": "A-1", "amount": 5, "currencyCode": "INR"});
    let mut for_m2 = payment.clone();
    for_m2["merchantCode"] = json!("M2");
    let created = create(for_m2).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["merchantCode"], "M2");
    assert_eq!(
        create(payment.clone()).await.unwrap().status(),
        StatusCode::CREATED
    );
    let mut for_nobody = payment;
    for_nobody["merchantCode"] = json!("M9");
    let refused = create(for_nobody).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.json::<Value>().await.unwrap()["description"].is_string());

    let change = |body: Value| {
        http.post(admin("/payments/payin/A-1/status"))
            .json(&body)
            .send()
    };
    let changed = change(json!({"status": "FAILED", "merchantCode": "M2"}))
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let unknown = change(json!({"status": "FAILED", "merchantCode": "M9"}))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

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
        json!([
            {"merchantCode": "M1", "kind": "payin", "id": "A-1", "status": "PROCESSING"},
            {"merchantCode": "M2", "kind": "payin", "id": "A-1", "status": "FAILED"},
        ])
    );
    let stats: Value = http
        .get(admin("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["perMerchant"]["M2"]["requests"], 0);
    assert_eq!(stats["perMerchant"]["M1"]["peakAdmittedPerSecond"], 0);
}

/// Starts a receiver answering 200 to any POST; returns its base URL and the
/// stream of `(path, body)` it gets.
async fn start_receiver() -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let (got, seen) = mpsc::unbounded_channel();
    let app = Router::new().fallback(move |uri: Uri, Json(body): Json<Value>| {
        let got = got.clone();
        async move {
            let _ = got.send((uri.path().to_owned(), body));
            StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Returns the next callback the receiver got, failing the test after [`PATIENCE`].
async fn next(seen: &mut mpsc::UnboundedReceiver<(String, Value)>) -> (String, Value) {
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn callbacks_of_another_merchant_go_to_its_own_path() {
    let (url, mut seen) = start_receiver().await;
    let sim = start(SimulatorConfig {
        callback_base_url: Some(format!("{url}/")),
        ..two_merchants(10, 10)
    })
    .await;
    sim.create_payment_as("M2", new_payment(PaymentKind::Payin, "CB-1", "1"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut seen).await,
        (
            "/callbacks/M2/payins".to_owned(),
            json!({"idEntity": "CB-1", "event": "payment.statusChange"})
        )
    );
    sim.create_payment_as("M2", new_payment(PaymentKind::Payout, "CB-2", "1"))
        .await
        .unwrap();
    assert_eq!(next(&mut seen).await.0, "/callbacks/M2/payouts");
    sim.create_payment(new_payment(PaymentKind::Payin, "CB-1", "1"))
        .await;
    assert_eq!(next(&mut seen).await.0, "/callbacks/payins");
    let mut own_url = new_payment(PaymentKind::Payin, "CB-3", "1");
    own_url.callback_url = Some(format!("{url}/elsewhere"));
    sim.create_payment_as("M2", own_url).await.unwrap();
    assert_eq!(next(&mut seen).await.0, "/elsewhere");
    assert!(
        sim.set_status_as("M2", PaymentKind::Payin, &id("CB-1"), "SUCCESS")
            .await
    );
    assert_eq!(next(&mut seen).await.0, "/callbacks/M2/payins");
    sim.wait_until(PATIENCE, |s| s.stats().callbacks_delivered == 5)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_merchants_own_faults_replace_the_global_ones_for_it_only() {
    let sim = start(two_merchants(100, 100)).await;
    let http = client();
    sim.create_payment(new_payment(PaymentKind::Payin, "F-1", "1"))
        .await;
    sim.create_payment_as("M2", new_payment(PaymentKind::Payin, "F-1", "1"))
        .await
        .unwrap();
    let m1 = token_as(&http, &sim, "M1", "sim-secret").await;
    let m2 = token_as(&http, &sim, "M2", M2_SECRET).await;
    let inactive = Faults {
        merchant_inactive: true,
        ..Faults::default()
    };
    assert!(sim.set_merchant_faults("M2", Some(inactive.clone())));
    assert!(!sim.set_merchant_faults("M9", Some(inactive.clone())));
    assert_eq!(sim.merchant_faults("M2"), Some(inactive));
    assert_eq!(sim.faults(), Faults::default());

    let mut answers = Vec::new();
    for (token, expected) in [(&m2, StatusCode::NOT_ACCEPTABLE), (&m1, StatusCode::OK)] {
        let (status, body) =
            json_of(fetch(&http, &sim, "/payins/F-1", Some(token), Some("2")).await).await;
        assert_eq!(status, expected, "{body}");
        answers.push((status, body));
    }
    assert_eq!(answers[0].1[0]["code"], "MERCHANT_INACTIVE");
    assert_allowed(
        answers
            .iter()
            .map(|(status, body)| ("/payins/{idPayin}", "get", *status, body)),
    );
    let (status, body) = json_of(request_token_as(&http, &sim, "M2", M2_SECRET).await).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body[0]["code"], "MERCHANT_INACTIVE");
    assert_allowed([("/auth-tokens", "post", status, &body)]);
    let m1_token = request_token_as(&http, &sim, "M1", "sim-secret").await;
    assert_eq!(m1_token.status(), StatusCode::OK);

    // Global faults no longer reach M2, which has its own (none but inactive).
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let m1_fetch = fetch(&http, &sim, "/payins/F-1", Some(&m1), Some("2")).await;
    assert_eq!(m1_fetch.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(sim.set_merchant_faults("M2", Some(Faults::default())));
    let m2_fetch = fetch(&http, &sim, "/payins/F-1", Some(&m2), Some("2")).await;
    assert_eq!(m2_fetch.status(), StatusCode::OK);
    assert!(sim.set_merchant_faults("M2", None));
    let m2_fetch = fetch(&http, &sim, "/payins/F-1", Some(&m2), Some("2")).await;
    assert_eq!(m2_fetch.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn merchant_faults_over_http() {
    let sim = start(two_merchants(100, 100)).await;
    let http = client();
    let url = |code: &str| format!("{}/_sim/merchants/{code}/faults", sim.base_url());
    let shown: Value = http
        .get(url("M2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, Value::Null);

    let put = http
        .put(url("M2"))
        .json(&json!({"merchantInactive": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(put.json::<Value>().await.unwrap()["merchantInactive"], true);
    assert!(sim
        .merchant_faults("M2")
        .is_some_and(|f| f.merchant_inactive));
    let refused = request_token_as(&http, &sim, "M2", M2_SECRET).await;
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    let issued = request_token_as(&http, &sim, "M1", "sim-secret").await;
    assert_eq!(issued.status(), StatusCode::OK);

    for bad in [json!({"errorRate": 2}), json!({"nope": 1})] {
        let answer = http.put(url("M2")).json(&bad).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert!(sim
        .merchant_faults("M2")
        .is_some_and(|f| f.merchant_inactive));
    let shown: Value = http
        .get(url("M2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["merchantInactive"], true);

    for unknown in [
        http.put(url("M9")).json(&json!({})).send().await.unwrap(),
        http.get(url("M9")).send().await.unwrap(),
        http.delete(url("M9")).send().await.unwrap(),
    ] {
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }

    let cleared = http.delete(url("M2")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.merchant_faults("M2"), None);
    let issued = request_token_as(&http, &sim, "M2", M2_SECRET).await;
    assert_eq!(issued.status(), StatusCode::OK);
}

#[tokio::test]
async fn invalid_merchants_stop_the_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = two_merchants(10, 10);
    config.merchants[0].code = "M1".into();
    let error = Simulator::start(listener, config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("M1") && !error.contains(M2_SECRET),
        "{error}"
    );
}
