use serde_json::json;

use crate::helpers::{assert_error, TestApp};
use std::time::Duration;

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.pool)
        .await
        .expect("count query")
}

#[tokio::test]
async fn a_callback_is_stored_with_its_sync_job_before_the_200() {
    let app = TestApp::spawn().await;

    let response = app
        .post_callback(
            "payins",
            json!({"idEntity": "TST-1", "event": "payment.statusChange"}).to_string(),
        )
        .await;

    assert_eq!(response.status(), 200);
    let (kind, id, outcome): (String, String, String) =
        sqlx::query_as("select kind, payment_id, outcome from callbacks_on_record")
            .fetch_one(&app.pool)
            .await
            .expect("callback stored");
    assert_eq!(
        (kind.as_str(), id.as_str(), outcome.as_str()),
        ("payin", "TST-1", "accepted")
    );
    let (state, priority): (String, i16) = sqlx::query_as(
        "select state, priority from sync_jobs where kind = 'payin' and payment_id = 'TST-1'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("sync job scheduled");
    assert_eq!((state.as_str(), priority), ("pending", 0));
}

#[tokio::test]
async fn the_url_decides_payin_or_payout() {
    let app = TestApp::spawn().await;

    assert_eq!(
        app.post_callback("payouts", r#"{"idEntity": "PO-7"}"#)
            .await
            .status(),
        200
    );

    assert_eq!(
        count(
            &app,
            "select count(*) from sync_jobs where kind = 'payout' and payment_id = 'PO-7'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "select count(*) from sync_jobs where kind = 'payin'").await,
        0
    );
}

#[tokio::test]
async fn duplicate_callbacks_for_a_pending_sync_add_nothing() {
    let app = TestApp::spawn().await;

    for _ in 0..5 {
        assert_eq!(
            app.post_callback("payins", r#"{"idEntity": "DUP-1"}"#)
                .await
                .status(),
            200
        );
    }

    assert_eq!(
        count(&app, "select count(*) from callbacks_on_record").await,
        5
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from sync_jobs where state = 'pending'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn concurrent_callbacks_are_all_stored() {
    let app = TestApp::spawn().await;

    let answers = futures_util::future::join_all((0..200).map(|i| {
        app.post_callback(
            "payins",
            json!({"idEntity": format!("C-{}", i % 50)}).to_string(),
        )
    }))
    .await;

    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(
        count(&app, "select count(*) from callbacks_on_record").await,
        200
    );
    assert_eq!(count(&app, "select count(*) from sync_jobs").await, 50);
}

#[tokio::test]
async fn unknown_event_types_and_extra_fields_are_accepted() {
    let app = TestApp::spawn().await;

    let body =
        json!({"idEntity": "EV-1", "event": "payment.somethingNew", "extra": {"nested": [1, 2]}});
    assert_eq!(
        app.post_callback("payins", body.to_string()).await.status(),
        200
    );

    let stored: serde_json::Value = sqlx::query_scalar("select body from callbacks_on_record")
        .fetch_one(&app.pool)
        .await
        .expect("stored");
    assert_eq!(stored, body);
    assert_eq!(
        count(
            &app,
            "select count(*) from sync_jobs where payment_id = 'EV-1'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn an_object_without_id_entity_is_recorded_as_ignored() {
    let app = TestApp::spawn().await;

    assert_eq!(
        app.post_callback("payins", r#"{"event": "ping"}"#)
            .await
            .status(),
        200
    );

    assert_eq!(
        count(
            &app,
            "select count(*) from callbacks_on_record where outcome = 'ignored' and payment_id is null"
        )
        .await,
        1
    );
    assert_eq!(count(&app, "select count(*) from sync_jobs").await, 0);
}

#[tokio::test]
async fn invalid_json_is_400_and_stores_nothing() {
    let app = TestApp::spawn().await;

    for body in ["{not json", "[1]", r#""TST-1""#, ""] {
        let message = assert_error(app.post_callback("payins", body).await, 400).await;
        assert!(!message.contains("sql"), "{message}");
    }

    assert_eq!(
        count(&app, "select count(*) from callbacks_on_record").await,
        0
    );
}

#[tokio::test]
async fn an_id_outside_the_pattern_is_400() {
    let app = TestApp::spawn().await;
    let too_long = "x".repeat(251);

    for id in ["", "a/b", "../etc", "a b", "ä", too_long.as_str()] {
        let response = app
            .post_callback("payins", json!({"idEntity": id}).to_string())
            .await;
        assert_error(response, 400).await;
    }
    let response = app.post_callback("payins", r#"{"idEntity": 42}"#).await;
    assert_error(response, 400).await;

    assert_eq!(count(&app, "select count(*) from sync_jobs").await, 0);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(64 * 1024);

    let response = app
        .post_callback(
            "payins",
            json!({"idEntity": "BIG-1", "pad": padding}).to_string(),
        )
        .await;

    assert_error(response, 413).await;
    assert_eq!(
        count(&app, "select count(*) from callbacks_on_record").await,
        0
    );
}

#[tokio::test]
async fn database_down_is_503_never_200_and_the_retry_is_stored() {
    let app = TestApp::spawn().await;
    app.db.take_down().await;

    let response = app
        .post_callback("payins", r#"{"idEntity": "DOWN-1"}"#)
        .await;
    assert_error(response, 503).await;

    app.db.bring_up().await;
    let retried = app
        .post_callback("payins", r#"{"idEntity": "DOWN-1"}"#)
        .await;
    assert_eq!(retried.status(), 200);
    assert_eq!(
        count(
            &app,
            "select count(*) from callbacks_on_record where payment_id = 'DOWN-1'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from sync_jobs where payment_id = 'DOWN-1'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;

    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    app.post_callback("payins", r#"{"idEntity": "M-1"}"#).await;
    let metrics = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics text");
    assert!(metrics.contains("paymirror_callbacks_total"), "{metrics}");
    assert!(
        metrics.contains(r#"paymirror_sync_jobs{merchant="M1",state="pending"} 1"#),
        "{metrics}"
    );

    app.db.take_down().await;
    assert_error(app.get("/readyz", None).await, 503).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    app.db.bring_up().await;
}

#[tokio::test]
async fn a_writer_whose_idle_connection_was_cut_stores_the_next_callback_at_once() {
    let db = crate::helpers::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db, "http://127.0.0.1:9");
    settings.sync.enabled = false;
    // Every batch counts as after an idle spell: the held connection is always pinged.
    settings.database.ping_after_idle = Duration::from_millis(0);
    let app = TestApp::spawn_with(db, settings).await;
    assert_eq!(
        app.post_callback("payins", r#"{"idEntity": "CUT-1"}"#)
            .await
            .status(),
        200
    );
    // Every session of the app is cut (a failover, a firewall's idle timeout), the
    // writer's own connection among them; the database itself stays up.
    let database = app.db.name.clone();
    app.db
        .admin(&format!(
            "select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = '{database}'"
        ))
        .await;

    let answer = app
        .post_callback("payins", r#"{"idEntity": "CUT-2"}"#)
        .await;

    assert_eq!(answer.status(), 200);
    assert_eq!(
        count(
            &app,
            "select count(*) from callbacks_on_record where payment_id in ('CUT-1', 'CUT-2')"
        )
        .await,
        2
    );
}
