//! Several merchant codes in one deployment (SPEC §4, `[[merchants]]`): callbacks by
//! merchant, each merchant's payments apart, and the default merchant unchanged.

use std::time::Duration;

use paymirror::config::{MerchantEntry, Settings};
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Faults, RecordedRequest, SimMerchant, Simulator, SimulatorConfig};
use reqwest::Response;

use crate::console_support::{csrf_of, Operator};
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

/// The app serving M1 (the default, at `m1_rps`) and M2 (at 10/s) against one
/// simulator serving both with the same limits; `configure` adjusts the app's settings.
async fn with_two_merchant_simulator(
    m1_rps: u32,
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, Simulator) {
    let sim_config = SimulatorConfig {
        max_rps: m1_rps,
        merchants: vec![SimMerchant {
            code: "M2".into(),
            secret: "M2-secret".into(),
            max_rps: 10,
        }],
        ..SimulatorConfig::default()
    };
    spawn_with_simulator(
        |s| {
            s.platform.max_rps = m1_rps;
            let base_url = s.platform.base_url.clone();
            add_merchant(s, "M2", 10, Some(&base_url));
            configure(s);
        },
        sim_config,
        false,
    )
    .await
}

/// `count` payins `ORDER-n` on the platform under both merchants (M1's already
/// SUCCESS, M2's processing), and each merchant's callback for each, posted to the app.
async fn backlog_for_both(app: &TestApp, sim: &Simulator, count: usize) {
    for n in 0..count {
        let id = format!("ORDER-{n}");
        sim.create_payment(payment(PaymentKind::Payin, &id, "10.00"))
            .await;
        let order = PaymentId::parse(&id).expect("id");
        assert!(sim.set_status(PaymentKind::Payin, &order, "SUCCESS").await);
        sim.create_payment_as("M2", payment(PaymentKind::Payin, &id, "20.00"))
            .await
            .expect("M2 payment");
    }
    for n in 0..count {
        let body = format!(r#"{{"idEntity": "ORDER-{n}"}}"#);
        assert_eq!(post(app, "/callbacks/M2/payins", &body).await.status(), 200);
        assert_eq!(post(app, "/callbacks/payins", &body).await.status(), 200);
    }
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
    let (app, sim) = with_two_merchant_simulator(M1_RPS, |s| s.sync.enabled = true).await;
    sim.set_merchant_faults(
        "M2",
        Some(Faults {
            merchant_inactive: true,
            ..Faults::default()
        }),
    );
    backlog_for_both(&app, &sim, BACKLOG).await;

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
    let (app, sim) = with_two_merchant_simulator(10, |_| {}).await;
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

/// Two merchants' payments synced from the simulator, the same id under both.
async fn synced_pair() -> (TestApp, Simulator) {
    let (app, sim) = with_two_merchant_simulator(10, |_| {}).await;
    for (merchant, id, amount) in [("M1", "SHARED-1", "10.00"), ("M1", "ONLY-M1", "11.00")] {
        sim.create_payment_as(merchant, payment(PaymentKind::Payin, id, amount))
            .await
            .expect("M1 payment");
        let body = format!(r#"{{"idEntity": "{id}"}}"#);
        assert_eq!(post(&app, "/callbacks/payins", &body).await.status(), 200);
    }
    for (id, amount) in [("SHARED-1", "77.00"), ("ONLY-M2", "78.00")] {
        sim.create_payment_as("M2", payment(PaymentKind::Payin, id, amount))
            .await
            .expect("M2 payment");
        let body = format!(r#"{{"idEntity": "{id}"}}"#);
        assert_eq!(
            post(&app, "/callbacks/M2/payins", &body).await.status(),
            200
        );
    }
    for worker in &app.workers {
        assert_eq!(worker.run_until_idle().await.expect("worker"), 2);
    }
    (app, sim)
}

/// `(merchantCode, id)` of each item of a list or feed answer.
fn merchants_and_ids(items: &serde_json::Value) -> Vec<(String, String)> {
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["merchantCode"]
                    .as_str()
                    .expect("merchantCode")
                    .to_owned(),
                item["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_v1_route_takes_the_merchant_and_means_the_default_without_it() {
    let (app, _sim) = synced_pair().await;
    let token = app
        .token("orders", &[paymirror::tokens::Permission::Write])
        .await;
    let get = |path: &'static str| app.get_json(path, Some(&token));

    let default = get("/v1/payins/SHARED-1").await;
    assert_eq!(
        (default["merchantCode"].as_str(), default["amount"].as_str()),
        (Some("M1"), Some("10.00"))
    );
    let m2 = get("/v1/payins/SHARED-1?merchant=M2").await;
    assert_eq!(
        (m2["merchantCode"].as_str(), m2["amount"].as_str()),
        (Some("M2"), Some("77.00"))
    );
    assert_eq!(
        get("/v1/payins/SHARED-1/history?merchant=M2")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        get("/v1/payins/SHARED-1/callbacks?merchant=M2")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_error(app.get("/v1/payins/ONLY-M2", Some(&token)).await, 404).await;

    let mut both = merchants_and_ids(&get("/v1/payins?merchant=M1,M2").await["items"]);
    both.sort();
    let expected = [
        ("M1", "ONLY-M1"),
        ("M1", "SHARED-1"),
        ("M2", "ONLY-M2"),
        ("M2", "SHARED-1"),
    ]
    .map(|(m, id)| (m.to_owned(), id.to_owned()));
    assert_eq!(both, expected);
    assert_eq!(
        merchants_and_ids(&get("/v1/payins").await["items"]).len(),
        2
    );
    let mut feed = merchants_and_ids(&get("/v1/changes?merchant=M2,M1").await["items"]);
    feed.sort();
    assert_eq!(feed, expected);

    // A merchant named twice in one list counts once; a page of one covers both.
    let page = get("/v1/payins?merchant=M2,M1,M2&limit=3").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    let cursor = page["nextCursor"].as_str().expect("a next page").to_owned();
    let rest = app
        .get_json(
            &format!("/v1/payins?merchant=M1,M2&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));

    let refreshed = app
        .post("/v1/payins/ONLY-M2/refresh?merchant=M2", Some(&token))
        .await;
    assert_eq!(refreshed.status(), 202);
    for (path, status) in [
        ("/v1/payins/SHARED-1?merchant=M3", 404),
        ("/v1/payins?merchant=M1,M3", 404),
        ("/v1/payins/SHARED-1?merchant=M1,M2", 400),
        ("/v1/payins/SHARED-1?merchant=M1&merchant=M2", 400),
        ("/v1/payins?merchant=", 400),
        ("/v1/payins?merchant=M%201", 400),
        ("/v1/dead-syncs?merchant=M1,M2", 400),
    ] {
        assert_error(app.get(path, Some(&token)).await, status).await;
    }
    for path in [
        "/v1/dead-syncs?merchant=M2",
        "/v1/callbacks/ignored?merchant=M2",
        "/v1/changes?merchant=M1",
    ] {
        assert_eq!(app.get(path, Some(&token)).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_scoped_token_sees_its_merchants_only_as_if_the_others_did_not_exist() {
    let (app, _sim) = synced_pair().await;
    let m2_only = paymirror::tokens::create_token(&app.pool, "m2-shop", &[], &["M2".into()])
        .await
        .expect("scoped token");

    // Without ?merchant=, a token scoped to one merchant means that one.
    let own = app.get_json("/v1/payins/SHARED-1", Some(&m2_only)).await;
    assert_eq!(own["merchantCode"], "M2");
    let listed = app.get_json("/v1/payins", Some(&m2_only)).await;
    let mut ids = merchants_and_ids(&listed["items"]);
    ids.sort();
    assert_eq!(
        ids,
        [
            ("M2".into(), "ONLY-M2".into()),
            ("M2".into(), "SHARED-1".into())
        ]
    );
    assert_eq!(
        app.get("/v1/payins/ONLY-M2?merchant=M2", Some(&m2_only))
            .await
            .status(),
        200
    );

    // The other merchant's payments: 404, worded as for a merchant not served here.
    let hidden = assert_error(
        app.get("/v1/payins/ONLY-M1?merchant=M1", Some(&m2_only))
            .await,
        404,
    )
    .await;
    let absent = assert_error(
        app.get("/v1/payins/ONLY-M1?merchant=M9", Some(&m2_only))
            .await,
        404,
    )
    .await;
    assert_eq!(hidden.replace("M1", "M9"), absent);
    for path in [
        "/v1/payins/ONLY-M1",
        "/v1/payins?merchant=M1",
        "/v1/payins?merchant=M2,M1",
        "/v1/changes?merchant=M1",
        "/v1/payins/SHARED-1/history?merchant=M1",
        "/v1/dead-syncs?merchant=M1",
    ] {
        assert_error(app.get(path, Some(&m2_only)).await, 404).await;
    }
    let feed = app.get_json("/v1/changes", Some(&m2_only)).await;
    assert!(merchants_and_ids(&feed["items"])
        .iter()
        .all(|(m, _)| m == "M2"));
}

/// Metrics carry a `merchant` label whose values come from the configuration only:
/// a callback naming a code not served here adds no series.
#[tokio::test]
async fn metrics_are_labelled_by_configured_merchants_only() {
    let app = two_merchants().await;
    let body = r#"{"idEntity": "ORDER-1"}"#;
    assert_eq!(post(&app, "/callbacks/M2/payins", body).await.status(), 200);
    assert_error(
        post(&app, "/callbacks/NOT-SERVED-7/payins", body).await,
        404,
    )
    .await;

    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    for series in [
        r#"paymirror_sync_jobs{merchant="M2",state="pending"} 1"#,
        r#"paymirror_sync_jobs{merchant="M1",state="pending"} 0"#,
        r#"paymirror_callbacks_total{merchant="M2",kind="payin",outcome="accepted",result="stored"}"#,
    ] {
        assert!(text.contains(series), "{series} not in\n{text}");
    }
    assert!(!text.contains("NOT-SERVED-7"), "{text}");
}

/// The console shows one merchant at a time, chosen in its header among those the
/// session's token sees, with that merchant's payments, queue and limit.
#[tokio::test]
async fn the_console_shows_the_chosen_merchant_and_a_scoped_token_only_its_own() {
    let (app, _sim) = synced_pair().await;
    let all = app.token("ops", &[]).await;
    let mut operator = Operator::new(&app);
    assert_eq!(operator.sign_in(&all).await.status(), 303);

    let payments = operator.page("/console/payments").await;
    assert!(
        payments.contains("ONLY-M1") && !payments.contains("ONLY-M2"),
        "{payments}"
    );
    let overview = operator.page("/console").await;
    assert!(overview.contains(r#"<option value="M2""#), "{overview}");
    let csrf = csrf_of(&overview);
    let chose = operator
        .post(
            "/console/merchant",
            &[("csrf", &csrf), ("merchant", "M2")],
            &[],
        )
        .await;
    assert_eq!(chose.status(), 303);
    let payments = operator.page("/console/payments").await;
    assert!(
        payments.contains("ONLY-M2") && !payments.contains("ONLY-M1"),
        "{payments}"
    );
    assert_eq!(
        operator
            .get("/console/payments/payin/ONLY-M1")
            .await
            .status(),
        404
    );
    assert_eq!(
        operator
            .get("/console/payments/payin/ONLY-M2")
            .await
            .status(),
        200
    );
    let refused = operator
        .post(
            "/console/merchant",
            &[("csrf", &csrf), ("merchant", "M9")],
            &[],
        )
        .await;
    assert_eq!(refused.status(), 404);

    // A token scoped to M1 opens a console of M1 only: no choice, no way to M2.
    let m1_only = paymirror::tokens::create_token(&app.pool, "m1-shop", &[], &["M1".into()])
        .await
        .expect("scoped token");
    let mut scoped = Operator::new(&app);
    assert_eq!(scoped.sign_in(&m1_only).await.status(), 303);
    let overview = scoped.page("/console").await;
    assert!(!overview.contains(r#"<option value="M2""#), "{overview}");
    let csrf = csrf_of(&overview);
    let refused = scoped
        .post(
            "/console/merchant",
            &[("csrf", &csrf), ("merchant", "M2")],
            &[],
        )
        .await;
    assert_eq!(refused.status(), 404);
    let payments = scoped.page("/console/payments").await;
    assert!(
        payments.contains("ONLY-M1") && !payments.contains("ONLY-M2"),
        "{payments}"
    );
}

/// The first migration of the release that serves several merchants: a database the
/// single-merchant release wrote has every migration before it.
const FIRST_MULTI_MERCHANT_MIGRATION: i64 = 20261206000002;

/// A database the single-merchant release wrote (its migrations only, rows as it wrote
/// them) keeps every row under its merchant code when this release starts on it with a
/// second merchant; its tokens stay unscoped and read the default merchant as before.
#[tokio::test]
async fn a_single_merchant_database_keeps_its_rows_when_a_second_merchant_is_added() {
    let db = TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(db.url.as_str()).await.expect("pool");
    let mut previous = paymirror::migrations::migrator();
    previous.migrations = previous
        .migrations
        .iter()
        .filter(|m| m.version < FIRST_MULTI_MERCHANT_MIGRATION)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    previous
        .run(&pool)
        .await
        .expect("the previous release's migrations");
    let token = "A".repeat(30);
    sqlx::query(
        "insert into api_tokens (account, token_hash, permissions) values ('orders', $1, '{read}')",
    )
    .bind(paymirror::tokens::hash(&token))
    .execute(&pool)
    .await
    .expect("the previous release's token");
    sqlx::query(
        "insert into payments (merchant_code, kind, id, status, final, amount, currency_code)
         values ('M1', 'payin', 'OLD-1', 'SUCCESS', true, 5.00, 'EUR')",
    )
    .execute(&pool)
    .await
    .expect("the previous release's payment");
    pool.close().await;

    let mut settings = test_settings(&db, "http://127.0.0.1:9");
    add_merchant(&mut settings, "M2", 10, None);
    let app = TestApp::spawn_with(db, settings).await;

    let old = app.get_json("/v1/payins/OLD-1", Some(&token)).await;
    assert_eq!(
        (old["merchantCode"].as_str(), old["status"].as_str()),
        (Some("M1"), Some("SUCCESS"))
    );
    assert_eq!(
        app.get("/v1/payins/OLD-1?merchant=M1", Some(&token))
            .await
            .status(),
        200
    );
    assert_error(
        app.get("/v1/payins/OLD-1?merchant=M2", Some(&token)).await,
        404,
    )
    .await;
    assert_eq!(
        app.get("/v1/payins?merchant=M2", Some(&token))
            .await
            .status(),
        200,
        "an unscoped token of the previous release sees every merchant"
    );
    assert_eq!(per_merchant(&app, "payments").await, [("M1".into(), 1)]);
}

/// A merchant the platform throttles (429) or fails (5xx, an outage) is paused or
/// probed alone: the other merchant's backlog syncs meanwhile within its own limit.
#[tokio::test]
async fn a_throttled_or_failing_merchant_never_holds_the_other() {
    const BACKLOG: usize = 60;
    const M1_RPS: u32 = 30;
    let faults = [
        Faults {
            throttle_rate: 1.0,
            ..Faults::default()
        },
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    ];
    for fault in faults {
        let (app, sim) = with_two_merchant_simulator(M1_RPS, |s| {
            s.sync.enabled = true;
            s.platform.outage_after_failures = 3;
        })
        .await;
        sim.set_merchant_faults("M2", Some(fault.clone()));
        backlog_for_both(&app, &sim, BACKLOG).await;

        synced(&app, "M1", BACKLOG as i64, Duration::from_secs(60)).await;

        let m1 = &sim.stats().per_merchant["M1"];
        assert!(
            m1.peak_requests_per_second <= u64::from(M1_RPS),
            "{fault:?}: {m1:?}"
        );
        assert_eq!(
            m1.throttled_by_window + m1.throttled_injected,
            0,
            "{fault:?}"
        );
        let m2_synced: i64 = sqlx::query_scalar(
            "select count(*) from payments where merchant_code = 'M2' and status is not null",
        )
        .fetch_one(&app.pool)
        .await
        .expect("M2 payments");
        assert_eq!(m2_synced, 0, "{fault:?}");
        assert!(
            !arrivals(&sim, "M2")
                .iter()
                .any(|r| r.status == 200 && r.path.starts_with("/payins/")),
            "{fault:?}"
        );
        app.stop().await;
    }
}
