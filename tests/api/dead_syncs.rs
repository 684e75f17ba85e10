use std::time::Duration;

use paymirror::simulator::SimulatorConfig;
use paymirror::tokens::Permission;
use serde_json::Value;

use crate::helpers::{assert_error, eventually, kill_syncs, spawn_with_simulator, TestApp};

/// An app where each of `ids` has a dead sync (the platform answered 500; no retry age).
async fn app_with_dead_sync(ids: &[&str]) -> (TestApp, paymirror::simulator::Simulator) {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.max_retry_age = Duration::from_millis(0);
            s.platform.outage_after_failures = 1000;
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    kill_syncs(&app, &sim, ids).await;
    (app, sim)
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn dead_syncs_are_listed_and_retried_in_bulk_by_a_writer() {
    let (app, _sim) = app_with_dead_sync(&["DS-1", "DS-2"]).await;
    let reader = app.token("reader", &[]).await;
    let writer = app.token("writer", &[Permission::Write]).await;

    let listed = json(app.get("/v1/dead-syncs", Some(&reader)).await).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "payout");
    assert_eq!(items[0]["attempts"], 1);
    assert!(items[0]["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("500")));
    assert!(items[0]["deadSince"].is_string());

    assert_error(app.post("/v1/dead-syncs/retry", Some(&reader)).await, 403).await;
    let retried = app.post("/v1/dead-syncs/retry", Some(&writer)).await;
    assert_eq!(retried.status(), 202);
    assert_eq!(json(retried).await["retried"], 2);

    assert_eq!(app.worker.run_until_idle().await.expect("worker"), 2);
    let doc = json(app.get("/v1/payouts/DS-1", Some(&reader)).await).await;
    assert_eq!(doc["status"], "PROCESSING");
    assert_eq!(doc["sync"]["state"], "idle");
    assert_eq!(
        json(app.get("/v1/dead-syncs", Some(&reader)).await).await["items"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn since_limits_what_is_listed_and_retried() {
    let (app, _sim) = app_with_dead_sync(&["OLD-1"]).await;
    let writer = app.token("writer", &[Permission::Write]).await;

    let future = "2999-01-01T00:00:00Z";
    let listed = json(
        app.get(&format!("/v1/dead-syncs?since={future}"), Some(&writer))
            .await,
    )
    .await;
    assert_eq!(listed["items"], serde_json::json!([]));
    let retried = json(
        app.post(
            &format!("/v1/dead-syncs/retry?since={future}"),
            Some(&writer),
        )
        .await,
    )
    .await;
    assert_eq!(retried["retried"], 0);
    assert_error(
        app.get("/v1/dead-syncs?since=last-week", Some(&writer))
            .await,
        400,
    )
    .await;

    let past = "2000-01-01T00:00:00Z";
    let retried = json(
        app.post(&format!("/v1/dead-syncs/retry?since={past}"), Some(&writer))
            .await,
    )
    .await;
    assert_eq!(retried["retried"], 1);
}

#[tokio::test]
async fn refresh_retries_one_dead_sync() {
    let (app, _sim) = app_with_dead_sync(&["ONE-1", "ONE-2"]).await;
    let writer = app.token("writer", &[Permission::Write]).await;

    let answer = json(app.post("/v1/payouts/ONE-1/refresh", Some(&writer)).await).await;

    assert_eq!(answer["sync"]["state"], "pending");
    assert_eq!(answer["sync"]["attempts"], 0);
    let listed = json(app.get("/v1/dead-syncs", Some(&writer)).await).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["ONE-2"]);
}

#[tokio::test]
async fn the_cli_lists_and_retries_dead_syncs() {
    let (app, _sim) = app_with_dead_sync(&["CLI-1"]).await;
    let run = |args: &'static [&'static str]| {
        let url = app.db.url.to_string();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_paymirror"))
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("DATABASE_URL", url)
                .env("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1")
                .output()
                .await
                .expect("paymirror runs")
        }
    };

    let listed = run(&["syncs", "dead"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.contains("CLI-1") && table.contains("500"), "{table}");

    let retried = run(&["syncs", "retry", "--since", "2000-01-01T00:00:00Z"]).await;
    assert_eq!(String::from_utf8_lossy(&retried.stdout).trim(), "1");

    let state: String = eventually(Duration::from_secs(5), || async {
        sqlx::query_scalar("select state from sync_jobs where payment_id = 'CLI-1'")
            .fetch_one(&app.pool)
            .await
            .ok()
    })
    .await;
    assert_eq!(state, "pending");
}
