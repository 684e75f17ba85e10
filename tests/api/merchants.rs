//! Several merchant codes in one deployment (SPEC §4, `[[merchants]]`): callbacks by
//! merchant, each merchant's payments apart, and the default merchant unchanged.

use std::time::Duration;

use paymirror::config::{MerchantEntry, Settings};
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Faults, RecordedRequest, SimMerchant, Simulator, SimulatorConfig};
use reqwest::Response;

use crate::helpers::{
    assert_error, payment, spawn_with_simulator, test_settings, TestApp, TestDatabase,
};

/// Adds merchant `code` (secret in the made-up variable `{code}_SECRET`) to `settings`.
pub fn add_merchant(settings: &mut Settings, code: &str, max_rps: u32, base_url: Option<&str>) {
    let secret_env = format!("{code}_SECRET");
    settings
        .merchant_secrets
        .insert(secret_env.clone(), format!("{code}-secret").into());
    settings.merchants.push(MerchantEntry {
        code: code.into(),
        secret_env,
        max_rps,
        base_url: base_url.map(str::to_owned),
    });
}

/// The app serving M1 (the default) and M2, with no platform behind it.
async fn two_merchants() -> TestApp {
    let db = TestDatabase::create().await;
    let mut settings = test_settings(&db, "http://127.0.0.1:9");
    add_merchant(&mut settings, "M2", 10, None);
    TestApp::spawn_with(db, settings).await
}

async fn post(app: &TestApp, path: &str, body: &str) -> Response {
    app.http
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("callback request")
}

/// Rows per merchant code of a table, in code order.
async fn per_merchant(app: &TestApp, table: &str) -> Vec<(String, i64)> {
    sqlx::query_as(&format!(
        "select merchant_code, count(*) from {table} group by 1 order by 1"
    ))
    .fetch_all(&app.pool)
    .await
    .expect("counted")
}

#[tokio::test]
async fn each_merchants_callbacks_are_stored_under_its_own_code() {
    let app = two_merchants().await;
    let body = r#"{"idEntity": "ORDER-1"}"#;
    for path in [
        "/callbacks/payins",
        "/callbacks/M1/payins",
        "/callbacks/M2/payins",
        "/callbacks/M2/payouts",
    ] {
        assert_eq!(post(&app, path, body).await.status(), 200, "{path}");
    }

    // The same order id under two merchant codes is two payments.
    let payments: Vec<(String, String, String)> =
        sqlx::query_as("select merchant_code, kind, id from payments order by 1, 2")
            .fetch_all(&app.pool)
            .await
            .expect("payments");
    let expected = [("M1", "payin"), ("M2", "payin"), ("M2", "payout")]
        .map(|(m, k)| (m.to_owned(), k.to_owned(), "ORDER-1".to_owned()));
    assert_eq!(payments, expected);
    assert_eq!(
        per_merchant(&app, "callbacks_on_record").await,
        [("M1".into(), 2), ("M2".into(), 2)]
    );
    assert_eq!(
        per_merchant(&app, "sync_jobs").await,
        [("M1".into(), 1), ("M2".into(), 2)]
    );
}

#[tokio::test]
async fn a_callback_for_a_merchant_not_served_here_is_404_and_stores_nothing() {
    let app = two_merchants().await;
    for path in [
        "/callbacks/M3/payins",
        "/callbacks/m2/payouts",
        "/callbacks/%20M2/payins",
        "/callbacks/M2%2Fx/payins",
    ] {
        let answer = post(&app, path, r#"{"idEntity": "ORDER-1"}"#).await;
        let message = assert_error(answer, 404).await;
        assert!(!message.contains("M3"), "{message}");
    }
    for table in ["callbacks_on_record", "payments", "sync_jobs"] {
        assert_eq!(per_merchant(&app, table).await, [], "{table}");
    }
}

#[tokio::test]
async fn a_single_merchant_deployment_serves_its_merchant_by_code_too() {
    let app = TestApp::spawn().await;
    assert_eq!(
        post(&app, "/callbacks/M1/payouts", r#"{"idEntity": "P-1"}"#)
            .await
            .status(),
        200
    );
    assert_error(
        post(&app, "/callbacks/M2/payouts", r#"{"idEntity": "P-1"}"#).await,
        404,
    )
    .await;
    assert_eq!(
        per_merchant(&app, "callbacks_on_record").await,
        [("M1".into(), 1)]
    );
}

/// Waits until `count` payments of `merchant` are stored with status `SUCCESS`.
async fn synced(app: &TestApp, merchant: &str, count: i64, within: Duration) {
    crate::helpers::eventually(within, || async {
        let stored: i64 = sqlx::query_scalar(
            "select count(*) from payments where merchant_code = $1 and status = 'SUCCESS'",
        )
        .bind(merchant)
        .fetch_one(&app.pool)
        .await
        .ok()?;
        (stored == count).then_some(())
    })
    .await;
}

/// The platform requests of one merchant, as the simulator received them.
fn arrivals(sim: &Simulator, merchant: &str) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|r| r.merchant.as_deref() == Some(merchant))
        .collect()
}

/// One merchant refused by the platform (406 MERCHANT_INACTIVE) while the other syncs
/// a backlog: the refused one is paused alone, and each stays within its own limit
/// as the platform counts arrivals, with no 429.
#[tokio::test]
async fn an_inactive_merchant_never_slows_another_and_each_keeps_its_own_limit() {
    const BACKLOG: usize = 300;
    const M1_RPS: u32 = 30;
    let sim_config = SimulatorConfig {
        max_rps: M1_RPS,
        merchants: vec![SimMerchant {
            code: "M2".into(),
            secret: "M2-secret".into(),
            max_rps: 10,
        }],
        ..SimulatorConfig::default()
    };
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.enabled = true;
            s.platform.max_rps = M1_RPS;
            let base_url = s.platform.base_url.clone();
            add_merchant(s, "M2", 10, Some(&base_url));
        },
        sim_config,
        false,
    )
    .await;
    sim.set_merchant_faults(
        "M2",
        Some(Faults {
            merchant_inactive: true,
            ..Faults::default()
        }),
    );
    for n in 0..BACKLOG {
        let id = format!("ORDER-{n}");
        sim.create_payment(payment(PaymentKind::Payin, &id, "10.00"))
            .await;
        let order = PaymentId::parse(&id).expect("id");
        assert!(sim.set_status(PaymentKind::Payin, &order, "SUCCESS").await);
        let m2 = payment(PaymentKind::Payin, &id, "20.00");
        sim.create_payment_as("M2", m2).await.expect("M2 payment");
    }
    for n in 0..BACKLOG {
        let body = format!(r#"{{"idEntity": "ORDER-{n}"}}"#);
        assert_eq!(
            post(&app, "/callbacks/M2/payins", &body).await.status(),
            200
        );
        assert_eq!(post(&app, "/callbacks/payins", &body).await.status(), 200);
    }

    synced(&app, "M1", BACKLOG as i64, Duration::from_secs(120)).await;

    let stats = sim.stats();
    let m1 = &stats.per_merchant["M1"];
    let m2 = &stats.per_merchant["M2"];
    assert!(m1.peak_requests_per_second <= u64::from(M1_RPS), "{m1:?}");
    assert!(m2.peak_requests_per_second <= 10, "{m2:?}");
    assert_eq!(
        m1.throttled_by_window + m2.throttled_by_window,
        0,
        "{stats:?}"
    );
    // M2 is paused, not failing: its syncs wait, none dead, no attempt spent.
    let m2_jobs: Vec<(String, i32)> = sqlx::query_as(
        "select distinct state::text, attempts from sync_jobs where merchant_code = 'M2'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("M2 jobs");
    assert!(
        m2_jobs
            .iter()
            .all(|(state, attempts)| state != "dead" && *attempts == 0),
        "{m2_jobs:?}"
    );
    let m2_seen = arrivals(&sim, "M2");
    assert!(
        m2_seen.iter().all(|r| r.status == 406),
        "M2 got only 406: {:?}",
        m2_seen.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // The budget M1 used while its backlog synced (printed; measured as a benchmark
    // by `examples/sync_backlog`, not asserted here).
    let m1_seen = arrivals(&sim, "M1");
    if let (Some(first), Some(last)) = (m1_seen.first(), m1_seen.last()) {
        let seconds = (last.at - first.at).as_secs_f64().max(1.0);
        println!(
            "M1: {} requests in {seconds:.1} s = {:.0} % of {M1_RPS}/s; M2: {} requests, all 406",
            m1_seen.len(),
            100.0 * m1_seen.len() as f64 / (seconds * f64::from(M1_RPS)),
            m2_seen.len()
        );
    }
}

/// The same order id under two merchant codes: two documents, each with its own
/// history, each fetched with its own merchant's token.
#[tokio::test]
async fn the_same_id_under_two_merchants_is_two_payments_with_their_own_histories() {
    let sim_config = SimulatorConfig {
        merchants: vec![SimMerchant {
            code: "M2".into(),
            secret: "M2-secret".into(),
            max_rps: 10,
        }],
        ..SimulatorConfig::default()
    };
    let (app, sim) = spawn_with_simulator(
        |s| {
            let base_url = s.platform.base_url.clone();
            add_merchant(s, "M2", 10, Some(&base_url));
        },
        sim_config,
        false,
    )
    .await;
    let id = PaymentId::parse("SHARED-1").expect("id");
    sim.create_payment(payment(PaymentKind::Payin, "SHARED-1", "10.00"))
        .await;
    sim.create_payment_as("M2", payment(PaymentKind::Payin, "SHARED-1", "77.00"))
        .await
        .expect("M2 payment");
    assert!(
        sim.set_status_as("M2", PaymentKind::Payin, &id, "FAILED")
            .await
    );
    for path in ["/callbacks/payins", "/callbacks/M2/payins"] {
        assert_eq!(
            post(&app, path, r#"{"idEntity": "SHARED-1"}"#)
                .await
                .status(),
            200
        );
    }
    let m1 = app.worker.run_until_idle().await.expect("M1 worker");
    let m2 = app
        .worker_for("M2")
        .expect("M2 worker")
        .run_until_idle()
        .await
        .expect("M2 worker");
    assert_eq!((m1, m2), (1, 1));

    let stored: Vec<(String, String, String)> = sqlx::query_as(
        "select merchant_code, status, amount::text from payments where id = 'SHARED-1' order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("payments");
    assert_eq!(
        stored,
        [
            ("M1".into(), "PROCESSING".into(), "10.00".into()),
            ("M2".into(), "FAILED".into(), "77.00".into())
        ]
    );
    let history: Vec<(String, String)> = sqlx::query_as(
        "select merchant_code, status from payment_status_history where payment_id = 'SHARED-1' order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("history");
    assert_eq!(
        history,
        [
            ("M1".into(), "PROCESSING".into()),
            ("M2".into(), "FAILED".into())
        ]
    );
    // Each fetch carried its own merchant's token.
    let subjects: Vec<Option<String>> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/payins/"))
        .map(|r| r.merchant)
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(subjects.contains(&Some("M1".into())) && subjects.contains(&Some("M2".into())));
}
