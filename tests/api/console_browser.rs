//! The operator console in a real headless Chromium: sign-in with read and write
//! tokens, a payment found by id, a dead sync retried (and refused to a reader),
//! a bad token, a forged form, the charts and the live tail.
//! `PAYMIRROR_SCREENSHOTS=docs` saves the README's screenshots on the way.

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::tokens::Permission;
use serde_json::json;

use crate::console_support::{console_app, more_callbacks, sync_state};
use crate::helpers::{eventually, TestApp};
use crate::webdriver::{Browser, WAIT};

/// Signs in through the form with `token`.
async fn sign_in(browser: &Browser, app: &TestApp, token: &str) {
    browser.goto(&format!("{}/console", app.address)).await;
    let field = browser.find("input[name=token]").await;
    browser.type_into(&field, token).await;
    browser
        .click(&browser.find("button[type=submit]").await)
        .await;
    // The answer has loaded (signed in, or refused): navigating before it would
    // abort the sign-in.
    browser.find("#who, #refused").await;
}

/// For the README's screenshot only: 24 hours of made-up minutes before this one
/// (a daily swell of callbacks, a burst of 429s, a backlog that drains).
async fn seed_a_sample_day(app: &TestApp) {
    sqlx::query(
        "insert into console_minutes (merchant_code, minute, callbacks, platform_requests,
           platform_fetches, platform_throttled, status_changes, queue_pending, queue_running, queue_dead)
         select 'M1', m, c, c + c / 10 + 2, c + c / 10, t, c * 8 / 10, q, least(q, 8), d
         from (select m, n,
                 (60 + 45 * sin(n / 230.0) + 20 * random())::int8 as c,
                 case when n between 900 and 915 then (5 * random())::int8 else 0 end as t,
                 case when n between 900 and 960 then (960 - n) * 3 else (3 * random())::int8 end as q,
                 case when n > 1100 then 1 else 0 end as d
               from generate_series(1, 1439) n,
                    lateral (select date_trunc('minute', now()) - make_interval(mins => 1440 - n) as m) x) s
         on conflict (merchant_code, minute) do nothing",
    )
    .execute(&app.pool)
    .await
    .expect("sample minutes");
}

#[tokio::test]
async fn a_reader_sees_the_overview_charts_but_cannot_retry_a_dead_sync() {
    let (app, _sim) = console_app(&["DEAD-1"]).await;
    let token = app.token("reader", &[]).await;
    let browser = Browser::start().await;

    sign_in(&browser, &app, &token).await;
    assert!(browser.text_of("#who").await.contains("read only"));
    assert_eq!(browser.text_of("#dead").await, "1");
    for (series, total) in [("callbacks", 3), ("fetches", 3), ("changes", 2)] {
        let chart = browser
            .find(&format!("svg.chart[data-series={series}]"))
            .await;
        assert_eq!(
            browser.attribute(&chart, "data-total").await,
            Some(total.to_string()),
            "{series}"
        );
        let drawn = browser
            .find_all(&format!("svg.chart[data-series={series}] polyline"))
            .await;
        let points = browser
            .attribute(&drawn[0], "points")
            .await
            .unwrap_or_default();
        assert!(points.split(' ').count() >= 2, "{series}: {points}");
    }
    let queue = browser.find("svg.chart[data-series=queue]").await;
    assert!(browser
        .attribute(&queue, "data-points")
        .await
        .is_some_and(|n| n != "0"));
    if std::env::var_os("PAYMIRROR_SCREENSHOTS").is_some() {
        seed_a_sample_day(&app).await;
        browser.goto(&format!("{}/console", app.address)).await;
        browser.screenshot("console-overview.png").await;
    }

    browser
        .goto(&format!("{}/console/dead-syncs", app.address))
        .await;
    let row = browser.text_of("#dead-syncs tr[data-id=DEAD-1]").await;
    assert!(row.contains("500"), "the last error is shown: {row}");
    assert!(browser.find_all("button.retry").await.is_empty());
    assert!(browser.find_all("#retry-all").await.is_empty());
    // The buttons are absent; a POST crafted with the session's valid CSRF token is refused too.
    let status = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/console/dead-syncs/retry', {method: 'POST',
                   body: new URLSearchParams({csrf, kind: 'payout', id: 'DEAD-1'})})
               .then(r => done(r.status), e => done(String(e)));",
            json!([]),
        )
        .await;
    assert_eq!(status, json!(403));
    assert_eq!(sync_state(&app, "DEAD-1").await, "dead");
}

#[tokio::test]
async fn a_writer_finds_a_payment_by_id_and_retries_a_dead_sync() {
    let (app, _sim) = console_app(&["DEAD-2"]).await;
    let token = app.token("writer", &[Permission::Write]).await;
    let browser = Browser::start().await;

    sign_in(&browser, &app, &token).await;
    assert!(browser.text_of("#who").await.contains("read & write"));
    browser
        .click(&browser.find("nav a[href='/console/payments']").await)
        .await;
    browser.type_into(&browser.find("#q").await, "SEEN-1").await;
    browser.click(&browser.find("#search").await).await;
    // The unfiltered list shows payment links too: click one of the results only.
    browser.wait_for_url("q=SEEN-1").await;
    browser
        .click(&browser.find("#payments a.payment-link").await)
        .await;

    let history = browser.text_of("#history").await;
    let (processing, success) = (history.find("PROCESSING"), history.find("SUCCESS"));
    assert!(
        processing.is_some() && processing < success,
        "oldest first: {history}"
    );
    let callbacks = browser.text_of("#callbacks").await;
    assert!(callbacks.contains("Callbacks received (2)"), "{callbacks}");
    assert!(
        callbacks.contains(r#""note": "<script>alert('x')</script>""#),
        "verbatim, as text: {callbacks}"
    );
    assert!(browser
        .text_of("#document")
        .await
        .contains(r#""status": "SUCCESS""#));
    assert_eq!(browser.text_of("#sync-state").await, "idle");
    browser.screenshot("console-payment.png").await;
    browser.click(&browser.find("#refresh").await).await;
    browser.find("#refreshed").await;
    assert_eq!(sync_state(&app, "SEEN-1").await, "pending");

    browser
        .goto(&format!("{}/console/dead-syncs", app.address))
        .await;
    browser
        .find("#dead-syncs tr[data-id=DEAD-2] button.retry")
        .await;
    browser.screenshot("console-dead-syncs.png").await;
    browser
        .click(
            &browser
                .find("#dead-syncs tr[data-id=DEAD-2] button.retry")
                .await,
        )
        .await;
    assert!(browser
        .text_of("#retried")
        .await
        .contains("1 dead sync is pending again"));
    assert_eq!(sync_state(&app, "DEAD-2").await, "pending");
    assert!(browser
        .find_all("#dead-syncs tr[data-id=DEAD-2]")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_payments_older_callbacks_are_a_click_away() {
    let (app, _sim) = console_app(&[]).await;
    more_callbacks(&app, 21).await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, &app.token("reader", &[]).await).await;

    browser
        .goto(&format!("{}/console/payments/payout/SEEN-1", app.address))
        .await;
    let latest = browser.text_of("#callbacks").await;
    assert!(
        latest.contains("The latest 20 callbacks received"),
        "{latest}"
    );
    assert!(!latest.contains("alert("), "the oldest is not among them");
    browser.click(&browser.find("#older-callbacks").await).await;
    browser.wait_for_url("/callbacks?before=").await;

    let older = browser.text_of("#callbacks").await;
    assert!(older.contains("Older callbacks received"), "{older}");
    assert_eq!(browser.find_all("#callbacks div.callback").await.len(), 3);
    assert!(
        older.contains(r#""note": "<script>alert('x')</script>""#),
        "verbatim, as text: {older}"
    );
    assert!(browser.find_all("#older-callbacks").await.is_empty());
}

#[tokio::test]
async fn a_bad_token_is_rejected_and_a_forged_form_is_refused() {
    let (app, _sim) = console_app(&["DEAD-3"]).await;
    let browser = Browser::start().await;

    sign_in(&browser, &app, "not-a-token-not-a-token-not-ab").await;
    assert!(browser.text_of("#refused").await.contains("not accepted"));
    browser.screenshot("console-sign-in.png").await;
    browser
        .goto(&format!("{}/console/dead-syncs", app.address))
        .await;
    browser.find("input[name=token]").await;
    assert_eq!(
        browser.current_url().await,
        format!("{}/console", app.address)
    );

    sign_in(
        &browser,
        &app,
        &app.token("writer", &[Permission::Write]).await,
    )
    .await;
    browser
        .goto(&format!("{}/console/dead-syncs", app.address))
        .await;
    browser
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged');",
            json!([]),
        )
        .await;
    browser.click(&browser.find("#retry-all").await).await;
    eventually(WAIT, || async {
        let body = browser.text_of("body").await;
        (body.contains("\"status\":403") && body.contains("CSRF")).then_some(())
    })
    .await;
    assert_eq!(sync_state(&app, "DEAD-3").await, "dead");
}

#[tokio::test]
async fn the_change_feed_tail_shows_new_status_changes_live() {
    let (app, sim) = console_app(&[]).await;
    let token = app.token("reader", &[]).await;
    sim.create_payment(crate::helpers::payment(
        PaymentKind::Payin,
        "LIVE-1",
        "9.99",
    ))
    .await;
    let browser = Browser::start().await;
    sign_in(&browser, &app, &token).await;

    browser
        .goto(&format!("{}/console/changes", app.address))
        .await;
    browser.find("table#changes[data-live=true]").await;
    app.post_callback("payins", r#"{"idEntity": "LIVE-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");
    sim.set_status(
        PaymentKind::Payin,
        &PaymentId::parse("LIVE-1").expect("id"),
        "SUCCESS",
    )
    .await;
    app.post_callback("payins", r#"{"idEntity": "LIVE-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");

    let top = eventually(WAIT, || async {
        let rows = browser.find_all("#changes tbody tr.fresh").await;
        let first = rows.first()?;
        let text = browser.text(first).await;
        (rows.len() == 2 && text.contains("LIVE-1")).then_some(text)
    })
    .await;
    assert!(
        top.contains("PROCESSING") && top.contains("SUCCESS"),
        "{top}"
    );
    browser.screenshot("console-changes.png").await;
}
