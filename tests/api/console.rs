//! The operator console over plain HTTP: cookies, CSP, CSRF, revocation, sign-out,
//! escaping, clear 4xx answers, and the per-minute table behind the charts.

use std::time::Duration;

use paymirror::tokens::Permission;
use reqwest::header::LOCATION;

use crate::console_support::{
    console_app, csrf_of, more_callbacks, set_cookies, sync_state, Operator, CSP,
};
use crate::helpers::assert_error;

#[tokio::test]
async fn sign_in_sets_a_strict_session_cookie_never_the_token_and_every_answer_has_the_csp() {
    let (app, _sim) = console_app(&[]).await;
    let token = app.token("ops", &[]).await;
    let mut operator = Operator::new(&app);

    let form = operator.get("/console").await;
    assert_eq!(form.headers()["content-security-policy"], CSP);
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    let pre = set_cookies(&form).join("\n");
    assert!(
        pre.contains("HttpOnly; SameSite=Strict") && pre.contains("Path=/console"),
        "{pre}"
    );
    assert!(form.text().await.expect("form").contains(r#"name="token""#));

    let signed_in = operator.sign_in(&token).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()[LOCATION], "/console");
    let cookies = set_cookies(&signed_in);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("paymirror_console="))
        .expect("session cookie");
    for attribute in [
        "; HttpOnly",
        "; SameSite=Strict",
        "; Path=/console",
        "; Max-Age=43200",
    ] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    assert!(!cookies.concat().contains(&token));
    let overview = operator.get("/console").await;
    assert_eq!(overview.headers()["content-security-policy"], CSP);
    assert_eq!(overview.headers()["cache-control"], "no-store");
    assert!(overview
        .text()
        .await
        .expect("overview")
        .contains("read only"));

    for path in [
        "/console/assets/console.css",
        "/console/assets/console.js",
        "/console/nope",
    ] {
        let answer = operator.get(path).await;
        assert_eq!(answer.headers()["content-security-policy"], CSP, "{path}");
    }
    assert_error(operator.get("/console/assets/other.js").await, 404).await;

    let mut behind_tls = Operator::new(&app);
    let form = behind_tls.page("/console").await;
    let tls = [("x-forwarded-proto", "https")];
    let answer = behind_tls
        .post(
            "/console/sign-in",
            &[("token", &token), ("csrf", &csrf_of(&form))],
            &tls,
        )
        .await;
    assert!(set_cookies(&answer).iter().all(|c| c.ends_with("; Secure")));
}

#[tokio::test]
async fn revoking_or_replacing_the_token_ends_its_sessions_and_sign_out_ends_one() {
    let (app, _sim) = console_app(&[]).await;
    let mut first = Operator::new(&app);
    first.sign_in(&app.token("alice", &[]).await).await;
    let mut second = Operator::new(&app);
    second
        .sign_in(&app.token("bob", &[Permission::Write]).await)
        .await;
    assert_eq!(first.get("/console/payments").await.status(), 200);
    assert_eq!(second.get("/console/payments").await.status(), 200);

    paymirror::tokens::revoke_tokens(&app.pool, "alice")
        .await
        .expect("revoked");
    let ended = first.get("/console/payments").await;
    assert_eq!(ended.status(), 303);
    assert_eq!(ended.headers()[LOCATION], "/console");
    assert!(first.page("/console").await.contains(r#"name="token""#));

    app.token("bob", &[Permission::Write]).await;
    assert_eq!(second.get("/console/dead-syncs").await.status(), 303);
    assert_error(
        second
            .post("/console/dead-syncs/retry-all", &[("csrf", "x")], &[])
            .await,
        401,
    )
    .await;

    let mut third = Operator::new(&app);
    third.sign_in(&app.token("carol", &[]).await).await;
    let session = third
        .cookies
        .get("paymirror_console")
        .cloned()
        .expect("session");
    let csrf = csrf_of(&third.page("/console/payments").await);
    let out = third
        .post("/console/sign-out", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status(), 303);
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("paymirror_console=;")));
    // The old cookie, replayed, opens nothing.
    third.cookies.insert("paymirror_console".into(), session);
    assert_eq!(third.get("/console/payments").await.status(), 303);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_or_from_elsewhere_are_refused_and_change_nothing() {
    let (app, _sim) = console_app(&["CS-1"]).await;
    let token = app.token("ops", &[Permission::Write]).await;
    let mut operator = Operator::new(&app);

    let form = operator.page("/console").await;
    let forged = operator
        .post(
            "/console/sign-in",
            &[("token", &token), ("csrf", "forged")],
            &[],
        )
        .await;
    assert!(assert_error(forged, 403).await.contains("CSRF"));
    operator.forget("paymirror_console_signin");
    let no_cookie = operator
        .post(
            "/console/sign-in",
            &[("token", &token), ("csrf", &csrf_of(&form))],
            &[],
        )
        .await;
    assert_error(no_cookie, 403).await;

    operator.sign_in(&token).await;
    let csrf = csrf_of(&operator.page("/console/dead-syncs").await);
    let retry = "/console/dead-syncs/retry-all";
    assert_error(operator.post(retry, &[], &[]).await, 403).await;
    assert_error(operator.post(retry, &[("csrf", "wrong")], &[]).await, 403).await;
    let elsewhere = [("origin", "http://evil.example")];
    assert_error(
        operator.post(retry, &[("csrf", &csrf)], &elsewhere).await,
        403,
    )
    .await;
    let cross_site = [("sec-fetch-site", "cross-site")];
    assert_error(
        operator.post(retry, &[("csrf", &csrf)], &cross_site).await,
        403,
    )
    .await;
    assert_eq!(sync_state(&app, "CS-1").await, "dead");

    let done = operator
        .post(retry, &[("csrf", &csrf), ("since", "")], &[])
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()[LOCATION], "/console/dead-syncs?retried=1");
    assert_eq!(sync_state(&app, "CS-1").await, "pending");
}

#[tokio::test]
async fn hostile_content_is_escaped_and_bad_input_is_a_clear_4xx() {
    let (app, _sim) = console_app(&[]).await;
    let mut operator = Operator::new(&app);
    operator.sign_in(&app.token("ops", &[]).await).await;

    let page = operator.page("/console/payments/payout/SEEN-1").await;
    assert!(
        page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));

    for (path, status) in [
        ("/console/payments/card/SEEN-1", 404),
        ("/console/payments/payout/NEVER-SEEN", 404),
        ("/console/payments/payout/bad%20id", 400),
        ("/console/payments?kind=card", 400),
        ("/console/payments?sync=asleep", 400),
        ("/console/payments?q=%3Cb%3E", 400),
        ("/console/payments?before=yesterday", 400),
        ("/console/changes/stream?after=-1", 400),
        (
            "/console/payments/payout/SEEN-1/callbacks?before=cb1.2.3.4",
            400,
        ),
        ("/console/payments/payout/NEVER-SEEN/callbacks", 404),
    ] {
        let message = assert_error(operator.get(path).await, status).await;
        assert!(!message.to_lowercase().contains("sql"), "{path}: {message}");
    }
    let found = operator
        .page("/console/payments?q=SEEN&kind=payout&status=success&sync=idle")
        .await;
    assert!(found.contains("/console/payments/payout/SEEN-1"), "{found}");
    let none = operator.page("/console/payments?status=FAILED").await;
    assert!(none.contains("No payment matches."));
}

/// Returns the address the page's "Older callbacks" link leads to, if it has one.
fn older_link(page: &str) -> Option<String> {
    let after = page.split(r#"id="older-callbacks" href=""#).nth(1)?;
    after
        .split('"')
        .next()
        .map(|href| href.replace("&amp;", "&"))
}

#[tokio::test]
async fn a_payments_page_shows_its_latest_callbacks_and_older_ones_are_a_page_away() {
    let (app, _sim) = console_app(&[]).await;
    more_callbacks(&app, 21).await;
    let mut operator = Operator::new(&app);
    operator.sign_in(&app.token("ops", &[]).await).await;

    let latest = operator.page("/console/payments/payout/SEEN-1").await;

    assert!(
        latest.contains("The latest 20 callbacks received"),
        "{latest}"
    );
    assert_eq!(latest.matches(r#"<div class="callback">"#).count(), 20);
    let position = |page: &str, n: usize| page.find(&format!("&quot;n&quot;: {n}\n"));
    assert!(position(&latest, 21) < position(&latest, 2), "newest first");
    assert!(position(&latest, 1).is_none() && !latest.contains("alert("));
    let older = older_link(&latest).expect("a link to older callbacks");
    assert!(older.starts_with("/console/payments/payout/SEEN-1/callbacks?before="));
    let rest = operator.page(&older).await;
    assert_eq!(
        rest.matches(r#"<div class="callback">"#).count(),
        3,
        "{rest}"
    );
    assert!(position(&rest, 1).is_some());
    assert!(rest.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
    assert_eq!(older_link(&rest), None, "the oldest page links no further");
    assert!(rest.contains(r#"href="/console/payments/payout/SEEN-1""#));
}

#[tokio::test]
async fn every_replica_adds_its_counts_to_the_minutes_and_old_minutes_are_pruned() {
    let (app, _sim) = console_app(&["MIN-1"]).await;
    let mut operator = Operator::new(&app);
    operator.sign_in(&app.token("ops", &[]).await).await;
    // The overview flushes this replica's counts and samples the queue.
    let overview = operator.page("/console").await;
    assert!(overview.contains(r#"data-series="callbacks""#));

    let (callbacks, fetches, requests, changes, dead): (i64, i64, i64, i64, Option<i64>) = sqlx::query_as(
        "select sum(callbacks)::int8, sum(platform_fetches)::int8, sum(platform_requests)::int8,
                sum(status_changes)::int8, max(queue_dead)
         from console_minutes where merchant_code = 'M1'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("minutes");
    assert_eq!((callbacks, changes, dead), (3, 2, Some(1)));
    assert_eq!(fetches, 3);
    assert!(requests > fetches, "token requests count too: {requests}");

    sqlx::query("insert into console_minutes (merchant_code, minute, callbacks) values ('M1', now() - interval '8 days', 1)")
        .execute(&app.pool)
        .await
        .expect("old minute");
    sqlx::query("delete from console_minutes where minute = date_trunc('minute', now())")
        .execute(&app.pool)
        .await
        .expect("fresh minute");
    let week = Duration::from_secs(7 * 86_400);
    assert!(paymirror::ops::sample_minute(&app.pool, "M1", week)
        .await
        .expect("sampled"));
    let old: i64 = sqlx::query_scalar(
        "select count(*) from console_minutes where minute < now() - interval '7 days'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(old, 0);
}

#[tokio::test]
async fn the_tail_streams_changes_to_its_session_and_ends_when_the_token_is_revoked() {
    let (app, sim) = console_app(&[]).await;
    let mut operator = Operator::new(&app);
    assert_eq!(operator.get("/console/changes/stream").await.status(), 303);
    operator.sign_in(&app.token("ops", &[]).await).await;

    let mut stream = operator.get("/console/changes/stream?after=0").await;
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut received = String::new();
    while received.matches("event: change").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("events arrive")
            .expect("stream readable")
            .expect("stream open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        received.contains(r#""id":"SEEN-1","status":"SUCCESS""#),
        "{received}"
    );

    paymirror::tokens::revoke_tokens(&app.pool, "ops")
        .await
        .expect("revoked");
    sim.create_payment(crate::helpers::payment(
        paymirror::domain::PaymentKind::Payin,
        "AFTER-1",
        "1.00",
    ))
    .await;
    app.post_callback("payins", r#"{"idEntity": "AFTER-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");
    // The next change wakes the stream, which finds its session over and ends.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            assert!(!String::from_utf8_lossy(&chunk).contains("AFTER-1"));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended");
}
