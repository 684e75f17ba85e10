//! The operator console over plain HTTP: cookies, CSP, CSRF, revocation, sign-out,
//! escaping, clear 4xx answers, and the per-minute table behind the charts.

use std::collections::HashMap;
use std::time::Duration;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Faults, Simulator, SimulatorConfig};
use paymirror::tokens::Permission;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::Response;

use crate::helpers::{assert_error, payment, spawn_with_simulator, TestApp};

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An app with one payout `SEEN-1` synced twice (PROCESSING, then SUCCESS, with a
/// hostile extra field in a callback) and a dead sync for each of `dead`.
pub async fn console_app(dead: &[&str]) -> (TestApp, Simulator) {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.max_retry_age_ms = 0;
            s.platform.outage_after_failures = 1000;
            // Only the overview flushes and samples: what a test sees does not depend on timing.
            s.console.stats_flush_secs = 3600;
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    sim.create_payment(payment(PaymentKind::Payout, "SEEN-1", "12.50"))
        .await;
    app.post_callback(
        "payouts",
        r#"{"idEntity": "SEEN-1", "note": "<script>alert('x')</script>"}"#,
    )
    .await;
    app.worker.run_until_idle().await.expect("worker");
    let seen = PaymentId::parse("SEEN-1").expect("id");
    sim.set_status(PaymentKind::Payout, &seen, "SUCCESS").await;
    app.post_callback("payouts", r#"{"idEntity": "SEEN-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");

    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    for id in dead {
        sim.create_payment(payment(PaymentKind::Payout, id, "3.00"))
            .await;
        app.post_callback("payouts", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
    }
    app.worker.run_until_idle().await.expect("worker");
    sim.set_faults(Faults::default());
    (app, sim)
}

/// Returns the sync state of a payout.
pub async fn sync_state(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("select state from sync_jobs where payment_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .expect("sync job")
}

/// A browser stand-in: keeps cookies, follows no redirects.
pub struct Operator {
    address: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Operator {
    pub fn new(app: &TestApp) -> Operator {
        Operator {
            address: app.address.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join("; ")
    }

    fn keep_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap_or_default();
            let Some((name, rest)) = text.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn forget(&mut self, name: &str) {
        self.cookies.remove(name);
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let response = self
            .http
            .get(format!("{}{path}", self.address))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep_cookies(response.headers());
        response
    }

    /// POSTs a form, with the same-origin headers a browser sends plus `extra`.
    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.address))
            .header("cookie", self.cookie_header())
            .form(form);
        if !extra.iter().any(|(name, _)| *name == "origin") {
            request = request.header("origin", self.address.clone());
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("POST");
        self.keep_cookies(response.headers());
        response
    }

    /// Returns a page's text, failing unless it answered 200.
    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("page")
    }

    /// Signs in through the form; returns the sign-in answer.
    pub async fn sign_in(&mut self, token: &str) -> Response {
        let form = self.page("/console").await;
        let csrf = csrf_of(&form);
        self.post(
            "/console/sign-in",
            &[("token", token), ("csrf", &csrf)],
            &[],
        )
        .await
    }
}

/// Returns the first CSRF token in a page's forms.
pub fn csrf_of(html: &str) -> String {
    let after = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .expect("the page has a CSRF field");
    after.split('"').next().unwrap_or_default().to_owned()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect()
}

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
    assert!(paymirror::console::sample_minute(&app.pool, "M1", week)
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
