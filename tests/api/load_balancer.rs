//! `deploy/haproxy.cfg` run by a real HAProxy in front of the app: the public face
//! passes only the platform's callbacks (404 for the rest, 413 for large bodies, 429
//! past the per-source rate, 403 for sources off the allow-list); the internal face
//! passes the API, console, document, metrics and probes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::helpers::{eventually, free_port, TestApp};

/// HAProxy running the project's configuration in front of `app`.
struct LoadBalancer {
    public: String,
    internal: String,
    _process: Child,
}

impl LoadBalancer {
    /// Starts HAProxy with `deploy/haproxy.cfg` and the given extra environment, and
    /// waits until both faces answer.
    async fn start(app: &TestApp, env: &[(&str, &str)]) -> LoadBalancer {
        let (public, internal) = (free_port(), free_port());
        let app_port = app.address.rsplit(':').next().expect("a port");
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let process = Command::new("haproxy")
            .arg("-f")
            .arg(&config)
            .env("PUBLIC_BIND", format!("127.0.0.1:{public}"))
            .env("INTERNAL_BIND", format!("127.0.0.1:{internal}"))
            .env("PAYMIRROR_SERVERS", format!("127.0.0.1:{app_port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts (Debian's package haproxy; .ci/run installs it)");
        let lb = LoadBalancer {
            public: format!("http://127.0.0.1:{public}"),
            internal: format!("http://127.0.0.1:{internal}"),
            _process: process,
        };
        let http = app.http.clone();
        let probe = format!("{}/healthz", lb.internal);
        // HAProxy passes requests once its health check has seen `/readyz` answer;
        // on a loaded CI machine a first check can time out, and the server then
        // needs `rise 2` checks `inter 2s` apart: 10 s was cut once (2026-12-06).
        eventually(Duration::from_secs(30), || {
            let (http, probe) = (http.clone(), probe.clone());
            async move {
                let answer = http.get(&probe).send().await.ok()?;
                (answer.status() == 200).then_some(())
            }
        })
        .await;
        lb
    }
}

/// Sends `method path` (with a callback body for POSTs) and returns the status and body.
async fn send(app: &TestApp, base: &str, method: &str, path: &str, token: &str) -> (u16, String) {
    let url = format!("{base}{path}");
    let request = match method {
        "POST" => app
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"idEntity": "LB-1"}"#),
        _ => app.http.get(url),
    };
    let answer = request.bearer_auth(token).send().await.expect("answered");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_configuration_is_valid() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
    let checked = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&config)
        .output()
        .await
        .expect("haproxy runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn the_public_face_passes_only_callbacks_and_the_internal_face_the_rest() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[]).await;
    let lb = LoadBalancer::start(&app, &[]).await;

    for (method, path, expected) in [
        ("POST", "/callbacks/payins", 200),
        ("POST", "/callbacks/payouts", 200),
        ("GET", "/callbacks/payins", 404),
        ("POST", "/callbacks/elsewhere", 404),
        ("GET", "/v1/payins", 404),
        ("GET", "/v1/payins/LB-1", 404),
        ("POST", "/v1/payins/LB-1/refresh", 404),
        ("GET", "/v1/changes", 404),
        ("GET", "/console", 404),
        ("GET", "/openapi.json", 404),
        ("GET", "/metrics", 404),
        ("GET", "/healthz", 404),
        ("GET", "/readyz", 404),
    ] {
        let (status, body) = send(&app, &lb.public, method, path, &token).await;
        assert_eq!(status, expected, "public {method} {path}: {body}");
        if status == 404 {
            let body: serde_json::Value = serde_json::from_str(&body).expect("the error body");
            assert_eq!(body["status"], 404, "public {method} {path}");
        }
    }
    for (method, path) in [
        ("GET", "/v1/payins"),
        ("GET", "/v1/payins/LB-1"),
        ("GET", "/v1/changes"),
        ("GET", "/console"),
        ("GET", "/openapi.json"),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ] {
        let (status, body) = send(&app, &lb.internal, method, path, &token).await;
        assert_eq!(status, 200, "internal {method} {path}: {body}");
    }
    // The callbacks the public face passed reached the app and were stored.
    let stored: i64 =
        sqlx::query_scalar("select count(*) from callbacks_on_record where payment_id = 'LB-1'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(stored, 2);

    let large = app
        .http
        .post(format!("{}/callbacks/payins", lb.public))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"idEntity": "LB-2", "pad": "{}"}}"#,
            "x".repeat(70_000)
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(large.status(), 413);
}

#[tokio::test]
async fn the_public_face_limits_each_source_and_admits_only_the_listed_sources() {
    let app = TestApp::spawn().await;
    let lb = LoadBalancer::start(&app, &[("CALLBACK_RATE_LIMIT", "5")]).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            send(&app, &lb.public, "POST", "/callbacks/payins", "")
                .await
                .0,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    drop(lb);

    let dir = std::env::temp_dir().join(format!("paymirror-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let elsewhere = dir.join("elsewhere.lst");
    let here = dir.join("here.lst");
    std::fs::write(&elsewhere, "# the platform\n203.0.113.0/24\n").expect("written");
    std::fs::write(&here, "# the platform\n127.0.0.0/8\n").expect("written");
    let refused = LoadBalancer::start(
        &app,
        &[("PLATFORM_SOURCES", elsewhere.to_str().expect("UTF-8"))],
    )
    .await;
    assert_eq!(
        send(&app, &refused.public, "POST", "/callbacks/payins", "")
            .await
            .0,
        403
    );
    let admitted =
        LoadBalancer::start(&app, &[("PLATFORM_SOURCES", here.to_str().expect("UTF-8"))]).await;
    assert_eq!(
        send(&app, &admitted.public, "POST", "/callbacks/payins", "")
            .await
            .0,
        200
    );
    let _ = std::fs::remove_dir_all(&dir);
}
