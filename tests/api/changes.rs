//! The change feed and the lists miss nothing: commit-ordered positions, a long poll
//! woken by LISTEN/NOTIFY, and cursors that resume exactly.

use std::collections::HashMap;
use std::time::Duration;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::platform::PlatformPayment;
use paymirror::simulator::SimulatorConfig;
use paymirror::store::{list_changes, list_payments, publish_changes, upsert_payment, ListFilter};
use serde_json::Value;

use crate::helpers::{payment, spawn_with_simulator, TestApp};

fn answer(id: &str, status: &str) -> PlatformPayment {
    let body = format!(
        r#"{{"paymentRequested": {{"money": {{"amount": 1.00, "currencyCode": "INR"}}}},
             "process": {{"status": "{status}"}},
             "paymentMethodResponse": {{"paymentMethodCode": "UPIQR", "idPayin": "{id}"}}}}"#
    );
    let pid = PaymentId::parse(id).expect("valid id");
    PlatformPayment::parse(body.as_bytes(), PaymentKind::Payin, &pid).expect("parses")
}

#[tokio::test]
async fn writers_committing_out_of_order_never_make_a_reader_skip_a_change() {
    let app = TestApp::spawn().await;
    for id in ["EARLY-1", "LATE-1"] {
        app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
    }
    let (early, late) = (
        PaymentId::parse("EARLY-1").expect("id"),
        PaymentId::parse("LATE-1").expect("id"),
    );
    // The early writer starts first and writes its change...
    let mut first = app.pool.begin().await.expect("tx");
    let early_upsert = upsert_payment(
        &mut first,
        "M1",
        PaymentKind::Payin,
        &early,
        &answer("EARLY-1", "SUCCESS"),
    )
    .await
    .expect("upsert")
    .expect("row");
    // ...but a later writer commits first.
    let mut second = app.pool.begin().await.expect("tx");
    let late_upsert = upsert_payment(
        &mut second,
        "M1",
        PaymentKind::Payin,
        &late,
        &answer("LATE-1", "SUCCESS"),
    )
    .await
    .expect("upsert")
    .expect("row");
    publish_changes(&mut second, "M1", PaymentKind::Payin, &late, &late_upsert)
        .await
        .expect("publish");
    second.commit().await.expect("commit");

    // A reader pages past everything committed so far.
    let feed_page = list_changes(&app.pool, &["M1"], 0, 100)
        .await
        .expect("feed");
    let list_filter = ListFilter {
        limit: 100,
        ..ListFilter::default()
    };
    let list_page = list_payments(&app.pool, &["M1"], PaymentKind::Payin, &list_filter)
        .await
        .expect("list");
    let feed_cursor = feed_page.last().map_or(0, |c| c.position);
    let list_cursor = list_page.iter().map(|p| p.position).max().unwrap_or(0);

    publish_changes(&mut first, "M1", PaymentKind::Payin, &early, &early_upsert)
        .await
        .expect("publish");
    first.commit().await.expect("commit");

    let feed_rest = list_changes(&app.pool, &["M1"], feed_cursor, 100)
        .await
        .expect("feed");
    let list_rest = list_payments(
        &app.pool,
        &["M1"],
        PaymentKind::Payin,
        &ListFilter {
            after: Some(list_cursor),
            ..list_filter
        },
    )
    .await
    .expect("list");
    let feed_ids: Vec<String> = feed_page
        .iter()
        .chain(&feed_rest)
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(feed_ids, ["LATE-1", "EARLY-1"]);
    let synced_late: Vec<&str> = list_page
        .iter()
        .filter(|p| p.status.is_some())
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(synced_late, ["LATE-1"]);
    let rest_ids: Vec<&str> = list_rest.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(rest_ids, ["EARLY-1"]);
}

async fn changes(app: &TestApp, token: &str, query: &str) -> Value {
    let answer = app.get(&format!("/v1/changes?{query}"), Some(token)).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("JSON")
}

fn items(page: &Value) -> Vec<(String, String, Option<String>)> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|c| {
                    (
                        c["id"].as_str().unwrap_or_default().to_owned(),
                        c["status"].as_str().unwrap_or_default().to_owned(),
                        c["previousStatus"].as_str().map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_follower_sees_every_transition_exactly_once_while_300_payments_sync() {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.enabled = true;
            s.platform.max_rps = 200;
        },
        SimulatorConfig {
            max_rps: 200,
            ..SimulatorConfig::default()
        },
        true,
    )
    .await;
    let token = app.token("follower", &[]).await;
    const PAYMENTS: usize = 300;
    for n in 0..PAYMENTS {
        let mut p = payment(PaymentKind::Payin, &format!("F-{n}"), "1.00");
        // A third go straight to a final status; the others pass through PROCESSING.
        p.final_status = Some(if n % 2 == 0 { "SUCCESS" } else { "FAILED" }.into());
        // 1.5 s: long enough that a loaded machine still syncs them first as PROCESSING.
        p.finalize_after = Duration::from_millis(if n % 3 == 0 { 0 } else { 1500 });
        sim.create_payment(p).await;
        if n % 3 != 0 {
            app.post_callback("payins", format!(r#"{{"idEntity": "F-{n}"}}"#))
                .await;
        }
    }

    // Follow until every payment reached its final status, page by page.
    let mut seen = Vec::new();
    let mut cursor = "c0".to_owned();
    let finals = |seen: &[(String, String, Option<String>)]| {
        seen.iter()
            .filter(|(_, s, _)| s == "SUCCESS" || s == "FAILED")
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while finals(&seen) < PAYMENTS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} finals seen",
            finals(&seen)
        );
        let page = changes(&app, &token, &format!("after={cursor}&limit=37&wait=5")).await;
        seen.extend(items(&page));
        cursor = page["nextCursor"].as_str().expect("a cursor").to_owned();
    }
    // Whatever came after the last final status (nothing should), then compare.
    seen.extend(items(
        &changes(&app, &token, &format!("after={cursor}")).await,
    ));

    let history: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select payment_id, status, previous_status from payment_status_history order by position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("history");
    let count = |rows: &[(String, String, Option<String>)]| {
        let mut counts: HashMap<(String, String, Option<String>), usize> = HashMap::new();
        for row in rows {
            *counts.entry(row.clone()).or_default() += 1;
        }
        counts
    };
    assert_eq!(seen.len(), history.len());
    assert_eq!(count(&seen), count(&history));
    assert!(
        count(&seen).values().all(|&n| n == 1),
        "a transition came twice"
    );
    let two_changes = history.iter().filter(|(_, _, prev)| prev.is_some()).count();
    assert!(two_changes > 0, "some payments changed status twice");
}

#[tokio::test]
async fn a_consumer_resumes_from_its_saved_cursor_and_gets_each_change_once() {
    let app = TestApp::spawn().await;
    let token = app.token("follower", &[]).await;
    for n in 0..20 {
        let id = format!("R-{n}");
        app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
        let mut tx = app.pool.begin().await.expect("tx");
        let pid = PaymentId::parse(&id).expect("id");
        let upserted = upsert_payment(
            &mut tx,
            "M1",
            PaymentKind::Payin,
            &pid,
            &answer(&id, "SUCCESS"),
        )
        .await
        .expect("upsert")
        .expect("row");
        publish_changes(&mut tx, "M1", PaymentKind::Payin, &pid, &upserted)
            .await
            .expect("publish");
        tx.commit().await.expect("commit");
    }

    let first = changes(&app, &token, "limit=7").await;
    let saved = first["nextCursor"].as_str().expect("cursor").to_owned();
    // The consumer restarts: a new client, only the saved cursor.
    let rest: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/changes?after={saved}&limit=100",
            app.address
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");

    let ids: Vec<String> = items(&first)
        .into_iter()
        .chain(items(&rest))
        .map(|(id, _, _)| id)
        .collect();
    let expected: Vec<String> = (0..20).map(|n| format!("R-{n}")).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_waiting_request_is_woken_by_the_commit_of_a_change() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let token = app.token("follower", &[]).await;
    sim.create_payment(payment(PaymentKind::Payout, "W-1", "9.00"))
        .await;
    let idle = changes(&app, &token, "wait=1").await;
    assert_eq!(idle["items"], Value::Array(vec![]));
    let cursor = idle["nextCursor"].as_str().expect("cursor").to_owned();

    let waiting = {
        let (http, address, token, cursor) = (
            app.http.clone(),
            app.address.clone(),
            token.clone(),
            cursor.clone(),
        );
        tokio::spawn(async move {
            http.get(format!("{address}/v1/changes?after={cursor}&wait=25"))
                .bearer_auth(token)
                .send()
                .await
                .expect("request")
                .json::<Value>()
                .await
                .expect("JSON")
        })
    };
    app.post_callback("payouts", r#"{"idEntity": "W-1"}"#).await;
    app.worker.run_until_idle().await.expect("sync");

    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken long before the 25 s wait")
        .expect("joins");
    assert_eq!(
        items(&woken),
        [("W-1".to_owned(), "PROCESSING".to_owned(), None)]
    );
}

#[tokio::test]
async fn a_timed_out_wait_answers_no_items_and_the_same_cursor() {
    let app = TestApp::spawn().await;
    let token = app.token("follower", &[]).await;

    let page = changes(&app, &token, "after=c0&wait=1").await;

    assert_eq!(page["items"], Value::Array(vec![]));
    assert_eq!(page["nextCursor"], "c0");
    let bad = app.get("/v1/changes?after=42", Some(&token)).await;
    crate::helpers::assert_error(bad, 400).await;
    let too_long = app.get("/v1/changes?wait=31", Some(&token)).await;
    crate::helpers::assert_error(too_long, 400).await;
}
