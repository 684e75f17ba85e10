//! Several merchant codes in one deployment (SPEC §4, `[[merchants]]`): callbacks by
//! merchant, each merchant's payments apart, and the default merchant unchanged.

use paymirror::config::{MerchantEntry, Settings};
use reqwest::Response;

use crate::helpers::{assert_error, test_settings, TestApp, TestDatabase};

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
