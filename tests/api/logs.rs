use std::process::Stdio;
use std::time::Duration;

use paymirror::domain::PaymentKind;
use paymirror::simulator::{Simulator, SimulatorConfig};
use sqlx::PgPool;
use tokio::process::Child;

use crate::helpers::{eventually, free_port, payment, serve_command, wait_ready, TestDatabase};

const SECRET: &str = "s3cr3t-never-LOG-me-0123456789";

/// Sends a request with an `x-request-id` and returns the answer's status.
async fn send(request: reqwest::RequestBuilder, request_id: &str) -> u16 {
    let answer = request
        .header("x-request-id", request_id)
        .send()
        .await
        .expect("request");
    let echoed = answer.headers().get("x-request-id").map(|v| v.as_bytes());
    assert_eq!(echoed, Some(request_id.as_bytes()));
    answer.status().as_u16()
}

/// The lines of `logs` that mention `needle`.
fn lines_with<'a>(logs: &'a str, needle: &str) -> Vec<&'a str> {
    logs.lines().filter(|l| l.contains(needle)).collect()
}

/// Runs the real binary at its default level with stderr on a pipe: each request has
/// one access-log line naming method, route template, status, latency and request id,
/// at ERROR for a 5xx only, and no line has an ANSI escape.
#[tokio::test]
async fn each_request_has_one_plain_access_log_line_with_its_route_and_request_id() {
    let db = TestDatabase::create().await;
    let (child, address) = serve(
        &db,
        "http://127.0.0.1:9",
        &[
            ("PAYMIRROR__SYNC__ENABLED", "false"),
            ("PAYMIRROR__DATABASE__ACQUIRE_TIMEOUT_MS", "500"),
        ],
    )
    .await;
    let http = reqwest::Client::new();

    let payment = http.get(format!("{address}/v1/payins/RAW-ID-77"));
    assert_eq!(send(payment, "rid-payment").await, 401);
    let callback = http
        .post(format!("{address}/callbacks/payins"))
        .body(r#"{"idEntity": "ACC-1"}"#);
    assert_eq!(send(callback, "rid-callback").await, 200);
    assert_eq!(
        send(
            http.get(format!("{address}/nowhere/RAW-ID-78")),
            "rid-unmatched"
        )
        .await,
        404
    );
    assert_eq!(
        send(http.get(format!("{address}/healthz")), "rid-probe").await,
        200
    );
    let metrics = http
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(
        metrics.contains("\npaymirror_log_lines_dropped_total 0\n"),
        "no log line dropped on a drained pipe:\n{metrics}"
    );
    db.take_down().await;
    let refused = http
        .post(format!("{address}/callbacks/payins"))
        .body(r#"{"idEntity": "ACC-2"}"#);
    assert_eq!(send(refused, "rid-down").await, 503);
    let logs = stop(child).await;

    assert!(!logs.contains('\x1b'), "ANSI escapes on a pipe:\n{logs}");
    let expected = [
        (
            "rid-payment",
            " INFO ",
            "GET",
            "/v1/{kinds}/{id}",
            "status=401",
        ),
        (
            "rid-callback",
            " INFO ",
            "POST",
            "/callbacks/payins",
            "status=200",
        ),
        ("rid-unmatched", " INFO ", "GET", "unmatched", "status=404"),
        (
            "rid-down",
            " ERROR ",
            "POST",
            "/callbacks/payins",
            "status=503",
        ),
    ];
    for (request_id, level, method, route, status) in expected {
        let span =
            format!(r#"request{{method={method} route="{route}" request_id="{request_id}"}}"#);
        let access: Vec<&str> = lines_with(&logs, &span)
            .into_iter()
            .filter(|l| l.contains("paymirror::ops::requests"))
            .collect();
        assert_eq!(access.len(), 1, "{span}:\n{logs}");
        for part in [level, status, "latency_ms="] {
            assert!(access[0].contains(part), "{part} missing: {}", access[0]);
        }
    }
    // The handler's own line about the 503 carries the request's span too.
    let handler = lines_with(&logs, "answering 503");
    assert!(
        !handler.is_empty()
            && handler
                .iter()
                .all(|l| l.contains(r#"request_id="rid-down""#)),
        "{logs}"
    );
    assert_eq!(
        lines_with(&logs, " ERROR ").len(),
        1,
        "ERROR is for the 5xx only:\n{logs}"
    );
    assert!(!logs.contains("RAW-ID-7"), "a raw path was logged:\n{logs}");
    assert!(
        lines_with(&logs, "rid-probe").is_empty(),
        "probes are logged at debug"
    );
    assert!(!logs.contains("response failed"), "{logs}");
}

/// Runs the real binary with debug logging through a full sync, then searches its
/// output for the merchant secret and every bearer token the platform handed out.
#[tokio::test]
async fn the_merchant_secret_and_tokens_never_reach_the_logs() {
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim_url = format!("http://{}", sim_listener.local_addr().expect("address"));
    let config = SimulatorConfig {
        secret: SECRET.into(),
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(sim_listener, config)
        .await
        .expect("simulator");
    let db = TestDatabase::create().await;
    let (child, address) = serve(&db, &sim_url, &[("RUST_LOG", "debug")]).await;
    let http = reqwest::Client::new();

    for n in 0..3 {
        sim.create_payment(payment(PaymentKind::Payin, &format!("LOG-{n}"), "7.77"))
            .await;
        let answer = http
            .post(format!("{address}/callbacks/payins"))
            .body(format!(r#"{{"idEntity": "LOG-{n}"}}"#))
            .send()
            .await
            .expect("callback");
        assert_eq!(answer.status(), 200);
    }
    let pool = PgPool::connect(db.url.as_str()).await.expect("connect");
    eventually(Duration::from_secs(30), || async {
        let synced: i64 =
            sqlx::query_scalar("select count(*) from payments where status is not null")
                .fetch_one(&pool)
                .await
                .ok()?;
        (synced == 3).then_some(())
    })
    .await;
    pool.close().await;

    let logs = stop(child).await;

    assert!(
        logs.contains("payment synced"),
        "the logs say nothing useful:\n{logs}"
    );
    assert!(!logs.contains(SECRET), "the secret leaked");
    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| {
            r.authorization
                .as_deref()?
                .strip_prefix("Bearer ")
                .map(str::to_owned)
        })
        .collect();
    assert!(!tokens.is_empty());
    for token in tokens {
        assert!(!logs.contains(&token), "a platform token leaked");
        // Not even its signature part.
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(!logs.contains(signature), "a token signature leaked");
    }
}

/// Starts `paymirror serve` on a free port with its output piped (stderr is not a
/// terminal) and `NO_COLOR` unset; returns once it is ready.
async fn serve(db: &TestDatabase, platform_url: &str, env: &[(&str, &str)]) -> (Server, String) {
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let mut command = serve_command(db, port, platform_url);
    command
        .env("PAYMIRROR__PLATFORM__SECRET", SECRET)
        .env_remove("PAYMIRROR__LOG__LEVEL")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("PAYMIRROR__LOG__FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("paymirror starts");
    // Read the pipes while the process runs: a full pipe would block its logging.
    let stdout = tokio::spawn(drain(child.stdout.take()));
    let stderr = tokio::spawn(drain(child.stderr.take()));
    wait_ready(&reqwest::Client::new(), &address).await;
    (
        Server {
            child,
            stdout,
            stderr,
        },
        address,
    )
}

/// A running `paymirror serve` and the tasks reading its output.
struct Server {
    child: Child,
    stdout: tokio::task::JoinHandle<String>,
    stderr: tokio::task::JoinHandle<String>,
}

/// Returns everything read from `pipe` until it closes.
async fn drain(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut text).await;
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Stops the server as an orchestrator does (SIGTERM, then SIGKILL after 10 s) and
/// returns everything it wrote: the log lines still queued are written on the way out.
async fn stop(mut server: Server) -> String {
    if let Some(pid) = server.child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .is_err()
    {
        server.child.start_kill().expect("kill");
    }
    server.child.wait().await.expect("exit");
    format!(
        "{}{}",
        server.stdout.await.expect("stdout"),
        server.stderr.await.expect("stderr")
    )
}
