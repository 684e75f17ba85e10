//! One callback never decides another's answer: a row Postgres refuses is refused
//! alone, its neighbours in the same group-commit batch are stored.

use std::sync::Arc;
use std::time::Duration;

use paymirror::config::InboxSettings;
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::inbox::{Inbox, InboxEntry, NotStored};
use paymirror::ops::Tally;
use serde_json::json;

use crate::helpers::TestApp;

fn entry(id: &str, body: serde_json::Value) -> InboxEntry {
    entry_of("M1", id, body)
}

fn entry_of(merchant: &str, id: &str, body: serde_json::Value) -> InboxEntry {
    InboxEntry {
        merchant: Arc::from(merchant),
        kind: PaymentKind::Payin,
        id: Some(PaymentId::parse(id).expect("valid id")),
        body,
    }
}

/// A batch holding two merchants' callbacks stores each under its own code, and a row
/// Postgres refuses in one merchant's run leaves the other's alone.
/// An inbox of its own on the app's database: one writer, batches of up to 64.
fn one_writer_inbox(app: &TestApp) -> (Inbox, Vec<tokio::task::JoinHandle<()>>) {
    let settings = InboxSettings {
        writers: 1,
        batch_size: 64,
        ..crate::helpers::test_settings(&app.db, "http://127.0.0.1:9").inbox
    };
    Inbox::start(
        app.pool.clone(),
        &settings,
        std::time::Duration::from_millis(500),
        Tally::default(),
    )
}

#[tokio::test]
async fn a_batch_of_two_merchants_stores_each_under_its_own_code() {
    let app = TestApp::spawn().await;
    let (inbox, _writers) = one_writer_inbox(&app);
    // Interleaved, so one batch holds both merchants, the same ids under each.
    let submissions = (0..20).map(|n| {
        let inbox = inbox.clone();
        async move {
            let merchant = if n % 2 == 0 { "M1" } else { "M2" };
            let id = format!("SAME-{}", n / 2);
            inbox
                .submit(entry_of(merchant, &id, json!({ "idEntity": id })))
                .await
        }
    });
    let hostile = inbox.submit(entry_of(
        "M2",
        "BAD-1",
        json!({"idEntity": "BAD-1", "note": "\u{0}"}),
    ));
    let (answers, hostile) = tokio::join!(futures_util::future::join_all(submissions), hostile);

    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert!(matches!(hostile, Err(NotStored::Refused(_))), "{hostile:?}");
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "select merchant_code, count(*) from callbacks_on_record
         where payment_id like 'SAME-%' group by 1 order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("callbacks");
    assert_eq!(stored, [("M1".into(), 10), ("M2".into(), 10)]);
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "select merchant_code, count(*) from sync_jobs where state = 'pending' group by 1 order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("jobs");
    assert_eq!(jobs, [("M1".into(), 10), ("M2".into(), 10)]);
}

#[tokio::test]
async fn a_row_postgres_refuses_is_refused_alone_and_its_batch_neighbours_commit() {
    let app = TestApp::spawn().await;
    let (inbox, _writers) = one_writer_inbox(&app);

    // On this single-threaded test runtime every submission is queued before the
    // writer runs, so all 41 share one batch. jsonb refuses NUL in a string.
    let honest = (0..40).map(|n| {
        let inbox = inbox.clone();
        async move {
            let id = format!("OK-{n}");
            inbox.submit(entry(&id, json!({ "idEntity": id }))).await
        }
    });
    let hostile = inbox.submit(entry(
        "BAD-1",
        json!({"idEntity": "BAD-1", "note": "\u{0}"}),
    ));
    let (honest, hostile) = tokio::join!(futures_util::future::join_all(honest), hostile);

    assert!(honest.iter().all(Result::is_ok), "{honest:?}");
    assert!(
        matches!(hostile, Err(NotStored::Refused(ref code)) if code == "22P05"),
        "{hostile:?}"
    );
    // The client is told what in its body could not be stored, never the SQLSTATE.
    let told = hostile.map_err(|e| e.to_string()).expect_err("refused");
    assert!(told.contains("character"), "{told}");
    assert!(
        !told.contains("SQLSTATE") && !told.contains("22P05"),
        "{told}"
    );
    let stored: Vec<String> = sqlx::query_scalar(
        "select payment_id from callbacks_on_record order by payment_id collate \"C\"",
    )
    .fetch_all(&app.pool)
    .await
    .expect("callbacks");
    assert_eq!(stored.len(), 40);
    assert!(stored.iter().all(|id| id.starts_with("OK-")));
    let pending: i64 = sqlx::query_scalar("select count(*) from sync_jobs where state = 'pending'")
        .fetch_one(&app.pool)
        .await
        .expect("jobs");
    assert_eq!(pending, 40);
}

#[tokio::test]
async fn with_the_database_down_every_callback_of_the_batch_is_unavailable() {
    let app = TestApp::spawn().await;
    let (inbox, _writers) = one_writer_inbox(&app);
    app.db.take_down().await;

    let answers = futures_util::future::join_all((0..5).map(|n| {
        let inbox = inbox.clone();
        async move {
            let id = format!("DOWN-{n}");
            inbox.submit(entry(&id, json!({ "idEntity": id }))).await
        }
    }))
    .await;

    assert!(
        answers.iter().all(|a| *a == Err(NotStored::Unavailable)),
        "{answers:?}"
    );
    app.db.bring_up().await;
}

/// An app whose sync workers are off and whose payin `id` has had one callback
/// (stored, its sync pending), with callbacks answered 503 after `commit_timeout_ms`.
async fn app_with_a_queued_payment(id: &str, commit_timeout_ms: u64) -> TestApp {
    let db = crate::helpers::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db, "http://127.0.0.1:9");
    settings.sync.enabled = false;
    settings.inbox.commit_timeout = Duration::from_millis(commit_timeout_ms);
    let app = TestApp::spawn_with(db, settings).await;
    let body = format!(r#"{{"idEntity": "{id}"}}"#);
    assert_eq!(app.post_callback("payins", body).await.status(), 200);
    app
}

/// Opens a transaction that runs `sql` (taking a lock) and holds it until rolled back.
async fn holding(app: &TestApp, sql: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = app.pool.begin().await.expect("transaction");
    sqlx::query(sql).execute(&mut *holder).await.expect("lock");
    holder
}

#[tokio::test]
async fn a_callback_that_times_out_on_the_database_is_answered_503() {
    let app = app_with_a_queued_payment("LOCKED-1", 300).await;
    // Another transaction keeps every insert out of the callbacks (a migration's
    // lock, a stuck session): the writer must wait for it. (The payment's job is
    // already pending, so the callback would not even touch its row.)
    let blocker = holding(&app, "lock table callback_batches in share mode").await;

    let answer = app
        .post_callback("payins", r#"{"idEntity": "LOCKED-1"}"#)
        .await;

    crate::helpers::assert_error(answer, 503).await;
    blocker.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_callback_for_a_payment_already_queued_does_not_wait_for_its_job() {
    let app = app_with_a_queued_payment("QUEUED-1", 1000).await;
    // Another transaction holds the pending job (a worker claiming it, an operator's
    // session). The repeated callback needs nothing of it: it is stored at once.
    let holder = holding(
        &app,
        "select 1 from sync_jobs where payment_id = 'QUEUED-1' for update",
    )
    .await;

    let answer = app
        .post_callback("payins", r#"{"idEntity": "QUEUED-1", "n": 2}"#)
        .await;

    assert_eq!(answer.status(), 200);
    holder.rollback().await.expect("rollback");
    let (callbacks, state): (i64, String) = sqlx::query_as(
        "select (select count(*) from callbacks_on_record where payment_id = 'QUEUED-1'),
                (select state from sync_jobs where payment_id = 'QUEUED-1')",
    )
    .fetch_one(&app.pool)
    .await
    .expect("stored");
    assert_eq!((callbacks, state.as_str()), (2, "pending"));
}

#[tokio::test]
async fn every_database_session_has_a_statement_timeout() {
    let db = crate::helpers::TestDatabase::create().await;
    let mut settings = crate::helpers::test_settings(&db, "http://127.0.0.1:9");
    settings.database.statement_timeout = Duration::from_millis(4321);
    let app = TestApp::spawn_with(db, settings).await;

    let timeout: String = sqlx::query_scalar("show statement_timeout")
        .fetch_one(&app.pool)
        .await
        .expect("show");

    assert_eq!(timeout, "4321ms");
}

#[tokio::test]
async fn a_burst_below_the_concurrency_limit_is_never_shed() {
    let app = TestApp::spawn().await;

    let answers = futures_util::future::join_all(
        (0..1000).map(|n| app.post_callback("payins", format!(r#"{{"idEntity": "BURST-{n}"}}"#))),
    )
    .await;

    let shed = answers.iter().filter(|a| a.status() != 200).count();
    assert_eq!(shed, 0);
}
