use paymirror::tokens::Permission;

use crate::helpers::{assert_error, TestApp};
use std::time::Duration;

#[tokio::test]
async fn v1_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "A-1"}"#).await;

    assert_error(app.get("/v1/payins/A-1", None).await, 401).await;
    assert_error(app.get("/v1/payins/A-1", Some("not-a-token")).await, 401).await;
    assert_error(app.get("/v1/payins/A-1", Some(&"x".repeat(30))).await, 401).await;
    let token = app.token("ops", &[Permission::Read]).await;
    assert_eq!(app.get("/v1/payins/A-1", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn read_tokens_cannot_post_and_write_tokens_can_do_both() {
    let app = TestApp::spawn().await;
    let reader = app.token("reader", &[]).await;
    let writer = app.token("writer", &[Permission::Write]).await;

    assert_error(app.post("/v1/payins/R-1/refresh", Some(&reader)).await, 403).await;
    assert_eq!(
        app.post("/v1/payins/R-1/refresh", Some(&writer))
            .await
            .status(),
        202
    );
    assert_eq!(app.get("/v1/payins/R-1", Some(&writer)).await.status(), 200);
}

#[tokio::test]
async fn a_payment_known_only_by_callback_has_no_status_yet() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[]).await;
    app.post_callback("payouts", r#"{"idEntity": "PO-1"}"#)
        .await;

    let doc = app.get_json("/v1/payouts/PO-1", Some(&token)).await;

    assert_eq!(doc["kind"], "payout");
    assert_eq!(doc["id"], "PO-1");
    assert_eq!(doc["merchantCode"], "M1");
    assert!(doc["status"].is_null());
    assert_eq!(doc["final"], false);
    assert_eq!(doc["sync"]["state"], "pending");
    assert_eq!(doc["sync"]["attempts"], 0);
    assert!(doc["firstSeenAt"].is_string());
    assert!(doc["platform"].is_null());
}

#[tokio::test]
async fn unknown_payments_routes_and_methods_answer_in_the_error_body() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[]).await;

    assert_error(app.get("/v1/payins/NEVER-SEEN", Some(&token)).await, 404).await;
    assert_error(
        app.get("/v1/payins/NEVER-SEEN/history", Some(&token)).await,
        404,
    )
    .await;
    assert_error(app.get("/v1/refunds/X", Some(&token)).await, 404).await;
    assert_error(app.get("/nowhere", None).await, 404).await;
    assert_error(app.get("/callbacks/payins", None).await, 405).await;
    assert_error(app.get("/v1/payins/a.b", Some(&token)).await, 400).await;
    assert_error(app.get("/v1/payins?limit=0", Some(&token)).await, 400).await;
    assert_error(
        app.get("/v1/payins?updatedAfter=yesterday", Some(&token))
            .await,
        400,
    )
    .await;
    assert_error(
        app.get("/v1/payins?cursor=garbage", Some(&token)).await,
        400,
    )
    .await;
}

#[tokio::test]
async fn refresh_starts_tracking_an_unknown_id() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[Permission::Write]).await;

    let response = app.post("/v1/payins/NEW-1/refresh", Some(&token)).await;

    assert_eq!(response.status(), 202);
    let (state, priority): (String, i16) =
        sqlx::query_as("select state, priority from sync_jobs where payment_id = 'NEW-1'")
            .fetch_one(&app.pool)
            .await
            .expect("job");
    assert_eq!((state.as_str(), priority), ("pending", 1));
}

#[tokio::test]
async fn a_failed_fetch_is_visible_in_the_document_and_retried_later() {
    let db = crate::helpers::TestDatabase::create().await;
    // Nothing listens on port 9: every fetch fails to connect.
    let mut settings = crate::helpers::test_settings(&db, "http://127.0.0.1:9");
    settings.sync.backoff_base = Duration::from_millis(60_000);
    let app = TestApp::spawn_with(db, settings).await;
    let token = app.token("ops", &[]).await;
    app.post_callback("payins", r#"{"idEntity": "UNREACH-1"}"#)
        .await;

    let processed = app.worker.run_until_idle().await.expect("worker runs");

    assert_eq!(processed, 1);
    let doc = app.get_json("/v1/payins/UNREACH-1", Some(&token)).await;
    assert_eq!(doc["sync"]["state"], "pending");
    assert_eq!(doc["sync"]["attempts"], 1);
    assert_eq!(
        doc["sync"]["lastError"],
        "could not reach the platform: connection failed"
    );
    assert!(doc["status"].is_null());
}

#[tokio::test]
async fn shutdown_stops_the_server_cleanly() {
    let app = TestApp::spawn().await;
    let address = app.address.clone();
    app.post_callback("payins", r#"{"idEntity": "S-1"}"#).await;

    app.stop().await;

    assert!(reqwest::get(format!("{address}/healthz")).await.is_err());
}

#[tokio::test]
async fn a_payments_callbacks_are_on_record_oldest_first_and_ignored_ones_apart() {
    let app = TestApp::spawn().await;
    let token = app.token("support", &[]).await;
    for body in [
        r#"{"idEntity": "CB-1"}"#,
        r#"{"idEntity": "CB-1", "event": "payment.statusChange", "note": "\u0000"}"#,
        r#"{"event": "ping"}"#,
        r#"{"idEntity": "CB-2"}"#,
    ] {
        assert_eq!(app.post_callback("payins", body).await.status(), 200);
    }

    let record = app
        .get_json("/v1/payins/CB-1/callbacks", Some(&token))
        .await;
    let ignored = app.get_json("/v1/callbacks/ignored", Some(&token)).await;

    let bodies: Vec<&serde_json::Value> = record
        .as_array()
        .map(|r| r.iter().map(|c| &c["body"]).collect())
        .unwrap_or_default();
    assert_eq!(bodies.len(), 2, "{record}");
    assert_eq!(*bodies[0], serde_json::json!({"idEntity": "CB-1"}));
    assert_eq!(bodies[1]["event"], "payment.statusChange");
    assert_eq!(
        bodies[1]["note"], "\u{FFFD}",
        "the safe stored form of a NUL"
    );
    assert_eq!(record[0]["outcome"], "accepted");
    assert!(record[0]["receivedAt"].is_string());
    assert_eq!(
        ignored["items"].as_array().map(Vec::len),
        Some(1),
        "{ignored}"
    );
    assert_eq!(ignored["items"][0]["body"]["event"], "ping");
    assert_eq!(ignored["items"][0]["kind"], "payin");
    let unknown = app.get("/v1/payins/NEVER-1/callbacks", Some(&token)).await;
    crate::helpers::assert_error(unknown, 404).await;
}

#[tokio::test]
async fn callbacks_past_their_retention_are_pruned_and_recent_ones_kept() {
    let app = TestApp::spawn().await;
    for n in 0..2500 {
        app.post_callback("payouts", format!(r#"{{"idEntity": "OLD-{}"}}"#, n % 50))
            .await;
    }
    // Rows an older binary wrote, one per callback, during a rolling deploy.
    sqlx::query(
        "insert into callbacks (merchant_code, kind, payment_id, outcome, body)
         select 'M1', 'payout', 'LEGACY-' || g, 'accepted', '{}'::jsonb from generate_series(1, 10) g",
    )
    .execute(&app.pool)
    .await
    .expect("legacy rows");
    for table in ["callback_batches", "callbacks"] {
        sqlx::query(&format!(
            "update {table} set created_at = now() - interval '31 days'"
        ))
        .execute(&app.pool)
        .await
        .expect("age them");
    }
    app.post_callback("payouts", r#"{"idEntity": "NEW-1"}"#)
        .await;

    let pruned =
        paymirror::store::prune_callbacks(&app.pool, std::time::Duration::from_secs(30 * 86_400))
            .await
            .expect("prune");

    assert_eq!(pruned, 2510);
    let left: Vec<String> = sqlx::query_scalar("select payment_id from callbacks_on_record")
        .fetch_all(&app.pool)
        .await
        .expect("rows");
    assert_eq!(left, ["NEW-1"]);
}

#[tokio::test]
async fn callbacks_sharing_a_batch_or_left_by_an_older_binary_are_each_on_record_once() {
    let app = TestApp::spawn().await;
    let token = app.token("support", &[]).await;
    // An older binary's rows, one per callback (a rolling deploy), then a batch as this
    // version's writer commits it: a payin and a payout with the same id, another
    // payment, and a callback without idEntity, in the order received.
    for sql in [
        r#"insert into callbacks (merchant_code, kind, payment_id, outcome, body, created_at) values
             ('M1', 'payin', 'MIX-1', 'accepted', '{"n": 1}', now() - interval '1 minute'),
             ('M1', 'payin', null, 'ignored', '{"n": 2}', now() - interval '1 minute'),
             ('M2', 'payin', 'MIX-1', 'accepted', '{"n": 0}', now() - interval '1 minute')"#,
        r#"insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies) values
             ('M1', '{payin, payout, payin, payin, payin}', '{MIX-1, MIX-1, MIX-2, NULL, MIX-1}',
              '{accepted, accepted, accepted, ignored, accepted}',
              array['{"n": 3}', '{"n": 4}', '{"n": 5}', '{"n": 6}', '{"n": 7}']::jsonb[]),
             ('M2', '{payin}', '{MIX-1}', '{accepted}', array['{"n": 0}']::jsonb[])"#,
    ] {
        sqlx::query(sql)
            .execute(&app.pool)
            .await
            .expect("callbacks");
    }
    sqlx::query("insert into payments (merchant_code, kind, id) values ('M1', 'payin', 'MIX-1')")
        .execute(&app.pool)
        .await
        .expect("payment");
    let numbers = |answer: &serde_json::Value, field: &str| -> Vec<i64> {
        answer[field]
            .as_array()
            .or(answer.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|c| c["body"]["n"].as_i64())
                    .collect()
            })
            .unwrap_or_default()
    };

    let record = app
        .get_json("/v1/payins/MIX-1/callbacks", Some(&token))
        .await;
    let ignored = app.get_json("/v1/callbacks/ignored", Some(&token)).await;

    assert_eq!(numbers(&record, "-"), [1, 3, 7], "{record}");
    assert_eq!(numbers(&ignored, "items"), [2, 6], "{ignored}");
    // Found the same once the index's pending entries are merged into it.
    paymirror::store::merge_pending(&app.pool)
        .await
        .expect("merge");
    let merged = app
        .get_json("/v1/payins/MIX-1/callbacks", Some(&token))
        .await;
    assert_eq!(merged, record);
}

#[tokio::test]
async fn after_every_session_is_cut_at_most_one_read_fails_and_the_rest_are_answered() {
    let db = crate::helpers::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db, "http://127.0.0.1:9");
    // Every pooled connection counts as in steady use: only a failure seen makes the
    // pool ping them (whatever this machine's speed).
    settings.database.ping_after_idle = Duration::from_millis(600_000);
    let app = TestApp::spawn_with(db, settings).await;
    let token = app.token("support", &[]).await;
    sqlx::query("insert into payments (merchant_code, kind, id) values ('M1', 'payin', 'CUT-R')")
        .execute(&app.pool)
        .await
        .expect("payment");
    // Several pooled connections, handed out without a ping.
    let warm = (0..16).map(|_| app.get("/v1/payins/CUT-R", Some(&token)));
    for answer in futures_util::future::join_all(warm).await {
        assert_eq!(answer.status(), 200);
    }
    let database = app.db.name.clone();
    app.db
        .admin(&format!(
            "select pg_terminate_backend(pid, 5000) from pg_stat_activity where datname = '{database}'"
        ))
        .await;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(
            app.get("/v1/payins/CUT-R", Some(&token))
                .await
                .status()
                .as_u16(),
        );
    }

    // The first read may meet a connection cut while in steady use (503); that failure
    // makes every connection given back before it suspect, so none of them fails again.
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(failed <= 1, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 200), "{statuses:?}");
}

/// A row whose id no longer parses (written by hand, or by a release with another
/// pattern) is not served past the pattern, skipped, or a panic: its reads answer an
/// opaque 500 and the service goes on answering everything else.
#[tokio::test]
async fn a_stored_id_that_no_longer_parses_answers_500_and_nothing_else_breaks() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[]).await;
    app.post_callback("payouts", r#"{"idEntity": "PO-1"}"#)
        .await;
    sqlx::query(
        "insert into payments (merchant_code, kind, id) values ('M1', 'payin', 'not/an id')",
    )
    .execute(&app.pool)
    .await
    .expect("inserted by hand");

    let message = assert_error(app.get("/v1/payins", Some(&token)).await, 500).await;
    assert!(!message.contains("not/an id"), "{message}");
    assert_eq!(app.get("/v1/payouts", Some(&token)).await.status(), 200);
    assert_eq!(
        app.get("/v1/payouts/PO-1", Some(&token)).await.status(),
        200
    );
}
