//! Stored payment documents (migration `20261207000001`): what the database keeps
//! beside each payment must serve the very bytes the service's serialiser writes,
//! whichever writer changed the row, and a row without one is served all the same.

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::http::PaymentDocument;
use paymirror::store;
use paymirror::tokens::Permission;

use crate::helpers::TestApp;

/// Payins with everything a document can hold: stubs, each status, nulls in every
/// optional place, text that JSON must escape, decimals of odd scales and times with
/// none, 3 and 6 fraction digits; and sync jobs in each state.
const PAYMENTS: &str = r#"
insert into payments (merchant_code, kind, id, status, final, amount, currency_code,
    fee_amount, fee_currency_code, failure_code, failure_message, failed_at,
    payment_method_code, is_test, platform_created_at, platform_processed_at, platform,
    first_seen_at, synced_at, updated_at)
values
  ('M1', 'payin', 'D-stub', null, false, null, null, null, null, null, null, null, null, null,
   null, null, null, '2026-12-01 10:00:00Z', null, '2026-12-01 10:00:00Z'),
  ('M1', 'payin', 'D-success', 'SUCCESS', true, 42.05, 'INR', 0.50, 'INR', null, null, null,
   'UPIQR', false, '2026-12-01T10:00:00.000Z', '2026-12-01T10:00:41.5Z',
   '{"process": {"status": "SUCCESS"}, "money": {"amount": 42.05}, "note": "é😀 </script>"}',
   '2026-12-01 10:00:00.1Z', '2026-12-01 10:00:41.123Z', '2026-12-01 10:00:41.123456Z'),
  ('M1', 'payin', 'D-failed', 'FAILED', true, 0.000001, 'EUR', null, null, 'INSUFFICIENT_FUNDS',
   E'quote " backslash \\ newline \n tab \t bell \u0007 del \u007f', '2026-12-01T10:01:00Z',
   null, true, 'not a time', null, '{"a": [1, 2.50, null, true, "x\"y"]}',
   '2026-12-01 10:00:00.000001Z', '2026-12-01 10:01:00Z', '2026-12-01 10:01:00.999999Z'),
  ('M1', 'payin', 'D-message', 'REFUSED', true, 123456789012345678.12, null, 1, null, null,
   'only a message', null, null, null, null, null, '[]',
   '2026-12-01 10:00:00Z', '2026-12-01 10:02:00Z', '2026-12-01 10:02:00Z'),
  ('M1', 'payin', 'D-newer', 'CHARGEBACK_PENDING', false, -3.10, 'INR', null, 'INR', 'CODE',
   null, null, 'CARD', false, '2026', '2027', '{}',
   '2026-12-01 10:00:00Z', '2026-12-01 10:03:00Z', '2026-12-01 10:03:00Z');
insert into sync_jobs (merchant_code, kind, payment_id, state, priority, run_at, attempts, last_error)
values
  ('M1', 'payin', 'D-stub', 'pending', 1, now(), 0, null),
  ('M1', 'payin', 'D-failed', 'dead', 1, now(), 7, E'the platform said "no" \\ \n twice'),
  ('M1', 'payin', 'D-message', 'running', 1, now(), 2, 'timed out'),
  ('M1', 'payin', 'D-newer', 'idle', 0, now(), 0, null)"#;

/// The ids of [`PAYMENTS`]; `D-success` has no sync job at all.
const IDS: [&str; 5] = ["D-stub", "D-success", "D-failed", "D-message", "D-newer"];

/// The app with [`PAYMENTS`] written, and a reader's token.
async fn app_with_payments() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    sqlx::raw_sql(PAYMENTS)
        .execute(&app.pool)
        .await
        .expect("payments");
    let token = app.token("reader", &[Permission::Read]).await;
    (app, token)
}

/// What the serialiser writes for the payment, from its columns (the way rows
/// without a stored document are served).
async fn serialised(app: &TestApp, id: &str) -> String {
    let id = PaymentId::parse(id).expect("a valid id");
    let row = store::find_payment(&app.pool, "M1", PaymentKind::Payin, &id)
        .await
        .expect("read")
        .expect("the payment exists");
    serde_json::to_string(&PaymentDocument::from(row)).expect("serialises")
}

async fn served(app: &TestApp, path: &str, token: &str) -> String {
    let answer = app.get(path, Some(token)).await;
    assert_eq!(answer.status(), 200, "{path}");
    answer.text().await.expect("a body")
}

/// The page `GET /v1/payins?limit=100` should be, from each payment's serialised document.
async fn serialised_page(app: &TestApp) -> String {
    let mut ids: Vec<(i64, String)> =
        sqlx::query_as("select position, id from payments where kind = 'payin'")
            .fetch_all(&app.pool)
            .await
            .expect("positions");
    ids.sort();
    let mut items = Vec::new();
    for (_, id) in &ids {
        items.push(serialised(app, id).await);
    }
    format!("{{\"items\":[{}],\"nextCursor\":null}}", items.join(","))
}

/// Asserts that each of [`IDS`] is served as `expected` (in order) and the first page
/// of 100 as `page`.
async fn assert_served_as(app: &TestApp, token: &str, expected: &[String], page: &str) {
    for (id, expected) in IDS.iter().zip(expected) {
        assert_eq!(
            &served(app, &format!("/v1/payins/{id}"), token).await,
            expected,
            "{id}"
        );
    }
    assert_eq!(served(app, "/v1/payins?limit=100", token).await, page);
}

async fn documents_missing(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from payments where document is null")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_stored_document_is_served_byte_for_byte_as_the_serialiser_writes_it() {
    let (app, token) = app_with_payments().await;
    assert_eq!(documents_missing(&app).await, 0, "the trigger wrote each");

    for id in IDS {
        let expected = serialised(&app, id).await;
        let answer = served(&app, &format!("/v1/payins/{id}"), &token).await;
        assert_eq!(answer, expected, "{id}");
        // And it is the document of SPEC §2, sync state included.
        let doc: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        assert_eq!(doc["id"], id);
        assert!(doc["sync"]["state"].is_string(), "{answer}");
    }
    let failed: serde_json::Value =
        serde_json::from_str(&served(&app, "/v1/payins/D-failed", &token).await).expect("JSON");
    assert_eq!(failed["sync"]["state"], "dead");
    assert_eq!(
        failed["sync"]["lastError"],
        "the platform said \"no\" \\ \n twice"
    );
    assert_eq!(failed["amount"], "0.000001");
    assert_eq!(failed["firstSeenAt"], "2026-12-01T10:00:00.000001Z");

    let page = served(&app, "/v1/payins?limit=100", &token).await;
    assert_eq!(page, serialised_page(&app).await);
    app.stop().await;
}

#[tokio::test]
async fn a_payment_changed_by_an_older_release_or_by_hand_is_served_as_it_now_is() {
    let (app, token) = app_with_payments().await;

    // An older release's upsert names the columns it knows, never `document`.
    sqlx::query(
        "update payments set status = 'SUCCESS', final = true, amount = 7.5, currency_code = 'INR',
           platform = '{\"process\": {\"status\": \"SUCCESS\"}}', synced_at = now(), updated_at = now()
         where id = 'D-stub'",
    )
    .execute(&app.pool)
    .await
    .expect("an older release's write");
    // A callback's sync job changes without the payment.
    sqlx::query("update sync_jobs set state = 'idle', attempts = 3, last_error = 'gone' where payment_id = 'D-stub'")
        .execute(&app.pool)
        .await
        .expect("job");
    let answer = served(&app, "/v1/payins/D-stub", &token).await;
    assert_eq!(answer, serialised(&app, "D-stub").await);
    let doc: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(doc["status"], "SUCCESS");
    assert_eq!(doc["amount"], "7.5");
    assert_eq!(doc["sync"]["attempts"], 3);

    // A document written by hand is not kept: the row's own is.
    sqlx::query("update payments set document = '{\"forged\":true}' where id = 'D-success'")
        .execute(&app.pool)
        .await
        .expect("a hand-written document");
    assert_eq!(
        served(&app, "/v1/payins/D-success", &token).await,
        serialised(&app, "D-success").await
    );
    app.stop().await;
}

#[tokio::test]
async fn payments_written_before_documents_were_kept_are_served_the_same_and_backfilled() {
    let (app, token) = app_with_payments().await;
    let expected: Vec<String> = {
        let mut docs = Vec::new();
        for id in IDS {
            docs.push(serialised(&app, id).await);
        }
        docs
    };
    let page = serialised_page(&app).await;

    // As before the migration: no document. With the trigger off, the service's own
    // backfill cannot give them one while the reads run.
    sqlx::raw_sql(
        "alter table payments disable trigger payments_document;
         update payments set document = null;",
    )
    .execute(&app.pool)
    .await
    .expect("documents removed");
    assert_served_as(&app, &token, &expected, &page).await;
    assert_eq!(documents_missing(&app).await, 5, "read without a document");

    sqlx::query("alter table payments enable trigger payments_document")
        .execute(&app.pool)
        .await
        .expect("trigger back");
    let mut written = 0;
    loop {
        let n = store::backfill_documents(&app.pool, 2)
            .await
            .expect("backfill");
        assert!(n <= 2, "one batch at most");
        if n == 0 {
            break;
        }
        written += n;
    }
    // The service's own backfill may have taken some (it started with the app).
    assert!(written <= 5, "{written}");
    assert_eq!(documents_missing(&app).await, 0);
    assert_served_as(&app, &token, &expected, &page).await;
    app.stop().await;
}

#[tokio::test]
async fn a_callback_gives_a_new_payment_its_document_and_leaves_a_known_one_as_it_was() {
    let (app, token) = app_with_payments().await;
    let before = serialised(&app, "D-success").await;

    // D-success has no sync job; NEW-1 is not known at all.
    for id in ["D-success", "NEW-1"] {
        let answer = app
            .post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
        assert_eq!(answer.status(), 200, "{id}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&served(&app, "/v1/payins/D-success", &token).await).expect("JSON");
    assert_eq!(doc["sync"]["state"], "pending");
    assert_eq!(doc["status"], "SUCCESS");
    let mut unchanged: serde_json::Value = serde_json::from_str(&before).expect("JSON");
    unchanged["sync"] = doc["sync"].clone();
    assert_eq!(doc, unchanged, "only the job changed");

    let fresh = served(&app, "/v1/payins/NEW-1", &token).await;
    assert_eq!(fresh, serialised(&app, "NEW-1").await);
    let fresh: serde_json::Value = serde_json::from_str(&fresh).expect("JSON");
    assert_eq!(fresh["status"], serde_json::Value::Null);
    assert_eq!(fresh["sync"]["state"], "pending");
    assert_eq!(documents_missing(&app).await, 0);
    app.stop().await;
}
