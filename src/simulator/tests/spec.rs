//! Every kind of answer the simulator gives is one the platform's published document
//! allows: tokens (200, 400, 403, 406), payment documents in every status of both kinds
//! (with the faults the document allows), and fetch errors (401, 403, 406, 410, 429,
//! 500), each validated against the schema of its status by [`schema`](super::schema).

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::platform::{fetch, request_token, token};
use super::schema::{assert_allowed, template, violations};
use super::*;

/// Returns the status and JSON body of `answer`.
async fn json_of(answer: reqwest::Response) -> (StatusCode, Value) {
    let status = answer.status();
    let text = answer.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}"));
    (status, body)
}

/// Returns a simulator that allows 1000 requests per second.
async fn start_fast() -> Simulator {
    start(SimulatorConfig {
        max_rps: 1000,
        ..SimulatorConfig::default()
    })
    .await
}

#[tokio::test]
async fn every_token_answer_is_one_the_document_allows() {
    let sim = start_fast().await;
    let http = client();
    let post = |body: Value| {
        let request = http
            .post(format!("{}/auth-tokens", sim.base_url()))
            .header("X-API-Version", "2")
            .json(&body);
        async move { json_of(request.send().await.unwrap()).await }
    };
    let good =
        json!({"merchantCode": "M1", "secret": "sim-secret", "operations": ["GET /payins/.*"]});
    let mut answers =
        vec![
        json_of(request_token(&http, &sim, &["GET /payins/.*"]).await).await,
        post(good.clone()).await,
        post(json!({"merchantCode": "M1", "secret": "sim-secret", "validitySecs": 3601})).await,
        post(json!({"merchantCode": "M1"})).await,
        post(json!({"merchantCode": "M1", "secret": "wrong"})).await,
        post(json!({"merchantCode": "M2", "secret": "sim-secret"})).await,
        post(json!({"merchantCode": "M1", "secret": "sim-secret", "operations": ["GET /payins/("]}))
            .await,
    ];
    for faults in [
        Faults {
            merchant_inactive: true,
            ..Faults::default()
        },
        Faults {
            token_clock_skew_secs: -7200,
            ..Faults::default()
        },
    ] {
        sim.set_faults(faults);
        answers.push(post(good.clone()).await);
    }

    let statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(statuses, [200, 200, 400, 400, 403, 406, 406, 406, 200]);
    assert_allowed(
        answers
            .iter()
            .map(|(status, body)| ("/auth-tokens", "post", *status, body)),
    );
}

/// Returns the payment's answers in every status it can have, each with its path.
async fn every_status(sim: &Simulator, kind: PaymentKind) -> Vec<(String, Value)> {
    let http = client();
    let all = token(&http, sim, &["GET /payins/.*", "GET /payouts/.*"]).await;
    let mut answers = Vec::new();
    for (n, status) in ["PROCESSING", "SUCCESS", "FAILED", "REFUSED"]
        .iter()
        .enumerate()
    {
        let raw = format!("S-{n}");
        sim.create_payment(new_payment(kind, &raw, "1234.56")).await;
        if *status != "PROCESSING" {
            assert!(sim.set_status(kind, &id(&raw), status).await);
        }
        let path = format!("/{}/{raw}", kind.plural());
        let (code, body) = json_of(fetch(&http, sim, &path, Some(&all), Some("2")).await).await;
        assert_eq!(code, StatusCode::OK, "{path}: {body}");
        answers.push((path, body));
    }
    answers
}

#[tokio::test]
async fn every_payment_document_is_one_the_document_allows() {
    let sim = start(SimulatorConfig {
        max_rps: 1000,
        payin_expiry: std::time::Duration::from_millis(50),
        ..SimulatorConfig::default()
    })
    .await;
    sim.create_payment(new_payment(PaymentKind::Payin, "EXPIRED-1", "5"))
        .await;
    sim.wait_until(PATIENCE, |s| {
        s.payment_status(PaymentKind::Payin, &id("EXPIRED-1"))
            .as_deref()
            == Some("FAILED")
    })
    .await
    .unwrap();
    let mut answers = every_status(&sim, PaymentKind::Payout).await;
    answers.extend(every_status(&sim, PaymentKind::Payin).await);
    // Faults the document allows: another payment's id, any failure message, extra
    // fields, a clock off ours.
    sim.set_faults(Faults {
        wrong_id_rate: 1.0,
        failure_message: Some("card\u{0}declined \u{1b}[31m".into()),
        body_padding_bytes: 64,
        token_clock_skew_secs: 3600,
        ..Faults::default()
    });
    let http = client();
    let all = token(&http, &sim, &["GET /payins/.*", "GET /payouts/.*"]).await;
    for path in ["/payins/EXPIRED-1", "/payins/S-2", "/payouts/S-3"] {
        let (code, body) = json_of(fetch(&http, &sim, path, Some(&all), Some("2")).await).await;
        assert_eq!(code, StatusCode::OK, "{path}: {body}");
        answers.push((path.to_owned(), body));
    }

    assert_allowed(
        answers
            .iter()
            .map(|(path, body)| (template(path), "get", StatusCode::OK, body)),
    );
}

#[tokio::test]
async fn every_fetch_error_is_one_the_document_allows() {
    let sim = start_fast().await;
    sim.create_payment(new_payment(PaymentKind::Payin, "E-1", "1"))
        .await;
    sim.create_payment(new_payment(PaymentKind::Payout, "E-2", "1"))
        .await;
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let mut answers = vec![
        (
            StatusCode::UNAUTHORIZED,
            "/payins/E-1",
            None,
            Faults::default(),
        ),
        (
            StatusCode::FORBIDDEN,
            "/payouts/E-2",
            Some(payins.as_str()),
            Faults::default(),
        ),
        (
            StatusCode::GONE,
            "/payins/NOBODY",
            Some(payins.as_str()),
            Faults::default(),
        ),
    ];
    let faulty = [
        (
            StatusCode::UNAUTHORIZED,
            Faults {
                reject_tokens: true,
                ..Faults::default()
            },
        ),
        (
            StatusCode::FORBIDDEN,
            Faults {
                forbid_operations: true,
                ..Faults::default()
            },
        ),
        (
            StatusCode::NOT_ACCEPTABLE,
            Faults {
                merchant_inactive: true,
                ..Faults::default()
            },
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Faults {
                throttle_rate: 1.0,
                ..Faults::default()
            },
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Faults {
                error_rate: 1.0,
                ..Faults::default()
            },
        ),
    ];
    for (status, faults) in faulty {
        answers.push((status, "/payins/E-1", Some(payins.as_str()), faults));
    }

    let mut received = Vec::new();
    for (expected, path, token, faults) in answers {
        sim.set_faults(faults);
        let (status, body) = json_of(fetch(&http, &sim, path, token, Some("2")).await).await;
        assert_eq!(status, expected, "{path}: {body}");
        received.push((template(path), status, body));
    }
    assert_allowed(
        received
            .iter()
            .map(|(path, status, body)| (*path, "get", *status, body)),
    );
}

/// Changes an allowed document into one the published document forbids.
type Bend = fn(&mut Value);

/// The check itself: each answer the document forbids, made from an allowed one, is caught.
#[tokio::test]
async fn the_check_catches_what_the_document_forbids() {
    let sim = start_fast().await;
    sim.create_payment(new_payment(PaymentKind::Payin, "F-1", "10"))
        .await;
    assert!(
        sim.set_status(PaymentKind::Payin, &id("F-1"), "FAILED")
            .await
    );
    let http = client();
    let payins = token(&http, &sim, &["GET /payins/.*"]).await;
    let (_, allowed) =
        json_of(fetch(&http, &sim, "/payins/F-1", Some(&payins), Some("2")).await).await;
    let check = |body: &Value| violations("/payins/{idPayin}", "get", StatusCode::OK, body);
    assert_eq!(check(&allowed), Vec::<String>::new());
    let bent: [(&str, Bend); 5] = [
        ("a failure code outside the enum", |d| {
            d["process"]["failureReasons"]["failureReasonCode"] = json!("INSUFFICIENT_FUNDS")
        }),
        ("no idPayment", |d| {
            d["paymentMethodResponse"]
                .as_object_mut()
                .map(|m| m.remove("idPayment"));
        }),
        ("a time that is no date-time", |d| {
            d["process"]["createdAt"] = json!("2026-11-21 10:00")
        }),
        ("a UPIQR response without its QR code", |d| {
            d["paymentMethodResponse"]
                .as_object_mut()
                .map(|m| m.remove("qrCode"));
        }),
        ("a zero amount", |d| {
            d["paymentRequested"]["money"]["amount"] = json!(0)
        }),
    ];
    for (what, bend) in bent {
        let mut body = allowed.clone();
        bend(&mut body);
        assert!(!check(&body).is_empty(), "{what} passed: {body}");
    }
    let object = json!({"code": "MERCHANT_INACTIVE"});
    let not_acceptable = StatusCode::NOT_ACCEPTABLE;
    assert!(!violations("/payins/{idPayin}", "get", not_acceptable, &object).is_empty());
    let array = json!([object]);
    assert!(violations("/payins/{idPayin}", "get", not_acceptable, &array).is_empty());
}
