use std::process::Stdio;
use std::time::Duration;

use paymirror::domain::PaymentKind;
use paymirror::simulator::{Simulator, SimulatorConfig};
use sqlx::PgPool;

use crate::helpers::{eventually, payment, TestDatabase};

const SECRET: &str = "s3cr3t-never-LOG-me-0123456789";

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
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");

    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_paymirror"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", db.url.as_str())
        .env("PAYMIRROR__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PAYMIRROR__PLATFORM__BASE_URL", &sim_url)
        .env("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1")
        .env("PAYMIRROR__PLATFORM__SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("paymirror starts");
    // Read the pipes while the process runs: a full pipe would block its logging.
    let mut child = child;
    let stdout = tokio::spawn(drain(child.stdout.take()));
    let stderr = tokio::spawn(drain(child.stderr.take()));
    let http = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let ready = http.get(format!("{address}/readyz")).send().await.ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;

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

    child.start_kill().expect("kill");
    child.wait().await.expect("exit");
    let logs = format!(
        "{}{}",
        stdout.await.expect("stdout"),
        stderr.await.expect("stderr")
    );

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

/// Returns everything read from `pipe` until it closes.
async fn drain(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut text = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut text).await;
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
