//! What the console's tests share: an app with payments worth looking at, and an
//! HTTP client that keeps cookies like a browser.

use std::collections::HashMap;
use std::time::Duration;

use paymirror::config::Settings;
use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::simulator::{Simulator, SimulatorConfig};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::Response;

use crate::helpers::{kill_syncs, payment, spawn_with_simulator, TestApp};

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An app with one payout `SEEN-1` synced twice (PROCESSING, then SUCCESS, with a
/// hostile extra field in a callback) and a dead sync for each of `dead`.
pub async fn console_app(dead: &[&str]) -> (TestApp, Simulator) {
    console_app_with(dead, |_| {}).await
}

/// [`console_app`] with settings of the test's own on top.
pub async fn console_app_with(
    dead: &[&str],
    configure: impl FnOnce(&mut Settings),
) -> (TestApp, Simulator) {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.max_retry_age = Duration::from_millis(0);
            s.platform.outage_after_failures = 1000;
            // Only the overview flushes and samples: what a test sees does not depend on timing.
            s.console.stats_flush = Duration::from_secs(3600);
            configure(s);
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

    kill_syncs(&app, &sim, dead).await;
    (app, sim)
}

/// Posts `count` more callbacks for the payout `SEEN-1`, numbered from 1 in `n`.
pub async fn more_callbacks(app: &TestApp, count: usize) {
    for n in 1..=count {
        let body = format!(r#"{{"idEntity": "SEEN-1", "n": {n}}}"#);
        assert_eq!(app.post_callback("payouts", body).await.status(), 200);
    }
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
    pub cookies: HashMap<String, String>,
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

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .collect()
}
