//! Requests held open on purpose: a long poll of the change feed lasts the whole
//! `wait` it asked for, beyond `server.request_timeout_ms`, and ends at once on
//! shutdown; the console's live stream is not cut by the request timeout either.

use std::time::Duration;

use paymirror::domain::PaymentKind;
use serde_json::Value;
use tokio::time::Instant;

use crate::console_support::{console_app_with, Operator};
use crate::helpers::{eventually, payment, test_settings, TestApp, TestDatabase};

/// The longest wait the feed takes.
const WAIT_SECS: u64 = 30;

/// Returns the number of the app's database sessions whose last statement read the
/// change feed: once it is 1, a long poll has read an empty feed and is waiting.
async fn feed_readers(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and query like '%from payment_status_history%position > $2%'
           and pid <> pg_backend_pid()",
    )
    .fetch_one(&app.pool)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test]
async fn a_long_poll_on_a_quiet_feed_is_held_for_the_whole_thirty_seconds() {
    let db = TestDatabase::create().await;
    let settings = test_settings(&db, "http://127.0.0.1:9");
    assert!(
        settings.server.request_timeout < Duration::from_secs(WAIT_SECS),
        "the default request timeout is shorter than the wait, so this test can fail"
    );
    let app = TestApp::spawn_with(db, settings).await;
    let token = app.token("follower", &[]).await;

    let started = Instant::now();
    let answer = app
        .get(
            &format!("/v1/changes?after=c0&wait={WAIT_SECS}"),
            Some(&token),
        )
        .await;
    let held = started.elapsed();

    assert_eq!(answer.status(), 200);
    let page: Value = answer.json().await.expect("JSON");
    assert_eq!(page["items"], Value::Array(vec![]));
    assert_eq!(page["nextCursor"], "c0", "a cursor to wait again with");
    assert!(
        held >= Duration::from_millis(WAIT_SECS * 1000 - 100),
        "answered after {held:?}, before the wait ended"
    );
}

#[tokio::test]
async fn shutdown_answers_a_waiting_long_poll_at_once() {
    let app = TestApp::spawn().await;
    let token = app.token("follower", &[]).await;
    let request = app
        .http
        .get(format!(
            "{}/v1/changes?after=c0&wait={WAIT_SECS}",
            app.address
        ))
        .bearer_auth(token);
    let waiting = tokio::spawn(async move {
        let answer = request.send().await.expect("answered");
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.expect("JSON"))
    });
    eventually(Duration::from_secs(10), || async {
        (feed_readers(&app).await == 1).then_some(())
    })
    .await;

    let stopping = Instant::now();
    app.stop().await;
    let (status, page) = waiting.await.expect("joins");

    assert_eq!(status, 200);
    assert_eq!(page["items"], Value::Array(vec![]));
    assert_eq!(page["nextCursor"], "c0");
    assert!(
        stopping.elapsed() < Duration::from_secs(WAIT_SECS / 3),
        "shutdown waited {:?} for the long poll",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn the_console_stream_outlives_the_request_timeout() {
    let (app, sim) = console_app_with(&[], |s| {
        s.server.request_timeout = Duration::from_millis(300)
    })
    .await;
    let mut operator = Operator::new(&app);
    operator.sign_in(&app.token("ops", &[]).await).await;
    let mut stream = operator.get("/console/changes/stream?after=0").await;
    assert_eq!(stream.status(), 200);

    // Longer than the request timeout, then a change: the open stream still carries it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    sim.create_payment(payment(PaymentKind::Payin, "LATER-1", "1.00"))
        .await;
    app.post_callback("payins", r#"{"idEntity": "LATER-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");

    let mut received = String::new();
    while !received.contains("LATER-1") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the change arrives")
            .expect("stream readable")
            .expect("stream still open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
}
