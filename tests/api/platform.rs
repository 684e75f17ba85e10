use std::sync::Arc;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::platform::{PlatformClient, RateLimiter};
use paymirror::simulator::{Simulator, SimulatorConfig};

use crate::helpers::{payment, request_trail, requests_for, test_settings, TestDatabase};

async fn simulator_and_client() -> (Simulator, PlatformClient, TestDatabase) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = Simulator::start(listener, SimulatorConfig::default())
        .await
        .expect("simulator");
    let db = TestDatabase::create().await;
    let settings = test_settings(&db, &sim.base_url());
    let client =
        PlatformClient::new(&settings.platform, Arc::new(RateLimiter::new(10))).expect("client");
    (sim, client, db)
}

fn id(raw: &str) -> PaymentId {
    PaymentId::parse(raw).expect("valid id")
}

#[tokio::test]
async fn concurrent_fetches_share_one_token_request() {
    let (sim, client, _db) = simulator_and_client().await;
    for n in 0..5 {
        sim.create_payment(payment(PaymentKind::Payin, &format!("T-{n}"), "1.00"))
            .await;
    }

    let ids: Vec<PaymentId> = (0..5).map(|n| id(&format!("T-{n}"))).collect();
    let results = futures_util::future::join_all(
        ids.iter()
            .map(|i| client.fetch_payment(PaymentKind::Payin, i)),
    )
    .await;

    assert!(results.iter().all(Result::is_ok));
    assert_eq!(requests_for(&sim, "/auth-tokens"), 1);
}

#[tokio::test]
async fn a_401_costs_one_token_refresh_and_one_retry() {
    let (sim, client, _db) = simulator_and_client().await;
    sim.create_payment(payment(PaymentKind::Payout, "R-1", "9.99"))
        .await;
    client
        .fetch_payment(PaymentKind::Payout, &id("R-1"))
        .await
        .expect("first fetch");

    sim.revoke_tokens();
    let fetched = client
        .fetch_payment(PaymentKind::Payout, &id("R-1"))
        .await
        .expect("fetch after refresh");

    assert_eq!(
        fetched
            .snapshot
            .amount
            .map(|m| m.amount.to_string())
            .as_deref(),
        Some("9.99")
    );
    let trail = request_trail(&sim);
    let expected = [
        ("/auth-tokens", 200),
        ("/payouts/R-1", 200),
        ("/payouts/R-1", 401),
        ("/auth-tokens", 200),
        ("/payouts/R-1", 200),
    ];
    assert_eq!(trail, expected.map(|(p, s)| (p.to_owned(), s)));
}

#[tokio::test]
async fn the_token_asks_only_for_read_operations() {
    let (sim, client, _db) = simulator_and_client().await;
    sim.create_payment(payment(PaymentKind::Payin, "OPS-1", "1.00"))
        .await;
    client
        .fetch_payment(PaymentKind::Payin, &id("OPS-1"))
        .await
        .expect("fetch");

    let authorization = sim
        .requests()
        .iter()
        .find_map(|r| r.authorization.clone())
        .expect("a bearer token was sent");
    let jwt = authorization.strip_prefix("Bearer ").expect("bearer");
    let mut unverified = jsonwebtoken::Validation::default();
    unverified.insecure_disable_signature_validation();
    let key = jsonwebtoken::DecodingKey::from_secret(&[]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &unverified)
        .expect("a JWT")
        .claims;
    assert_eq!(
        claims["operations"],
        serde_json::json!(["GET /payins/.*", "GET /payouts/.*"])
    );
    assert_eq!(claims["sub"], "M1");
}

/// A request that waits 400 ms for its connection reaches the platform that much
/// after it was sent: counting it only from its send would let the platform see
/// more than `max_rps` arrivals in one second.
#[tokio::test]
async fn slow_connection_set_up_never_makes_the_platform_see_more_than_max_rps() {
    let (sim, client, _db) = simulator_and_client().await;
    for n in 0..30 {
        sim.create_payment(payment(PaymentKind::Payin, &format!("C-{n}"), "1.00"))
            .await;
    }
    sim.set_faults(paymirror::simulator::Faults {
        connect_delay_ms: 400,
        ..Default::default()
    });

    let ids: Vec<PaymentId> = (0..30).map(|n| id(&format!("C-{n}"))).collect();
    let results = futures_util::future::join_all(
        ids.iter()
            .map(|i| client.fetch_payment(PaymentKind::Payin, i)),
    )
    .await;

    let stats = sim.stats();
    assert_eq!(stats.throttled_by_window, 0, "{stats:?}");
    assert!(stats.peak_requests_per_second <= 10, "{stats:?}");
    assert!(results.iter().all(Result::is_ok));
}

/// The platform's clock two hours behind ours: every token's `exp` is long past by our
/// clock, yet each lives its `validitySecs` on the platform. One token serves every fetch.
#[tokio::test]
async fn a_skewed_platform_clock_costs_one_token_per_lifetime_not_one_per_fetch() {
    let (sim, client, _db) = simulator_and_client().await;
    sim.set_faults(paymirror::simulator::Faults {
        token_clock_skew_secs: -7200,
        ..Default::default()
    });
    sim.create_payment(payment(PaymentKind::Payin, "SKEW-1", "1.00"))
        .await;

    for _ in 0..5 {
        client
            .fetch_payment(PaymentKind::Payin, &id("SKEW-1"))
            .await
            .expect("fetch");
    }

    let trail = request_trail(&sim);
    let tokens = trail
        .iter()
        .filter(|(path, _)| path == "/auth-tokens")
        .count();
    assert_eq!(tokens, 1, "{trail:?}");
    assert_eq!(trail.len(), 6, "{trail:?}");
    assert!(trail.iter().all(|(_, status)| *status == 200), "{trail:?}");
}
