//! Slow and greedy clients: headers trickled past the header timeout, bodies that
//! stall or crawl, more callbacks at once than the concurrency limit, and a request
//! in flight while the app shuts down.

use std::time::Duration;

use futures_util::future::join_all;
use paymirror::app::Application;
use paymirror::config::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::raw::read_answer;
use crate::helpers::{assert_error, eventually, test_settings, TestApp, TestDatabase};

const TRICKLE: Duration = Duration::from_millis(50);

pub(super) async fn spawn(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::create().await;
    let mut settings = test_settings(&db, "http://127.0.0.1:9");
    configure(&mut settings);
    TestApp::spawn_with(db, settings).await
}

pub(super) fn socket_address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Opens a callback request announcing `length` body bytes and returns once the
/// handler is reading the body: `expect: 100-continue` makes hyper say so.
pub(super) async fn open_callback(address: &str, length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    let head = format!(
        "POST /callbacks/payins HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         connection: close\r\nexpect: 100-continue\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("an interim answer");
        interim.push(byte);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");
    stream
}

/// Sends a header line, one byte every [`TRICKLE`], until the server closes; returns how long that took.
async fn trickle_headers(address: String) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(&address).await.expect("connects");
    let head = b"POST /callbacks/payins HTTP/1.1\r\nhost: test\r\nx-slow: ";
    for byte in head.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(TRICKLE).await;
    }
    started.elapsed()
}

pub(super) async fn honest_callbacks(app: &TestApp, count: usize) -> Vec<u16> {
    let posts = (0..count)
        .map(|i| app.post_callback("payouts", format!(r#"{{"idEntity": "HONEST-{i}"}}"#)));
    join_all(posts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect()
}

#[tokio::test]
async fn clients_trickling_headers_are_cut_off_while_honest_callbacks_are_answered() {
    let timeout = Duration::from_millis(500);
    let app = spawn(|s| s.server.header_read_timeout = Duration::from_millis(500)).await;
    let address = socket_address(&app);

    let slow: Vec<_> = (0..20)
        .map(|_| tokio::spawn(trickle_headers(address.clone())))
        .collect();
    let statuses = honest_callbacks(&app, 50).await;

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for client in slow {
        let lasted = client.await.expect("slow client task");
        assert!(lasted >= timeout, "closed after {lasted:?}");
    }
    assert_eq!(honest_callbacks(&app, 1).await, [200]);
}

#[tokio::test]
async fn a_stalled_body_is_408_and_nothing_is_stored() {
    let app = spawn(|s| s.server.body_read_timeout = Duration::from_millis(300)).await;

    let mut stream = open_callback(&socket_address(&app), 100).await;
    stream
        .write_all(br#"{"idEntity":"#)
        .await
        .expect("part of the body");
    let answer = read_answer(&mut stream).await;

    assert_eq!(answer.status(), Some(408), "{answer:?}");
    answer.assert_pinned_error();
    let stored: i64 = sqlx::query_scalar("select count(*) from callbacks_on_record")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}

/// The request timeout answers too, in the pinned body (its layer sits inside the one
/// that renders foreign errors), when a body crawls without ever stalling.
#[tokio::test]
async fn a_crawling_body_meets_the_request_timeout_with_the_pinned_body() {
    let app = spawn(|s| s.server.request_timeout = Duration::from_millis(300)).await;
    let mut stream = open_callback(&socket_address(&app), 1000).await;
    let (mut reader, mut writer) = stream.split();

    let crawl = async {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(TRICKLE).await;
        }
    };
    let (answer, ()) = tokio::join!(read_answer(&mut reader), crawl);

    assert_eq!(answer.status(), Some(408), "{answer:?}");
    answer.assert_pinned_error();
}

#[tokio::test]
async fn callbacks_beyond_the_concurrency_limit_past_the_queue_time_get_503() {
    let app = spawn(|s| {
        s.server.callback_concurrency = 2;
        s.server.callback_queue = Duration::from_millis(200);
        s.server.body_read_timeout = Duration::from_millis(60_000);
    })
    .await;
    let address = socket_address(&app);
    let body = br#"{"idEntity":"HELD-1"}"#;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(open_callback(&address, body.len()).await);
    }

    let extra = app
        .post_callback("payins", r#"{"idEntity": "EXTRA-1"}"#)
        .await;
    assert_error(extra, 503).await;

    for mut stream in held {
        stream.write_all(body).await.expect("the body");
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status(), Some(200), "{answer:?}");
    }
    assert_eq!(honest_callbacks(&app, 2).await, [200, 200]);
}

#[tokio::test]
async fn a_burst_beyond_the_concurrency_limit_waits_for_slots_instead_of_being_shed() {
    let app = spawn(|s| {
        s.server.callback_concurrency = 2;
        s.server.callback_queue = Duration::from_millis(10_000);
    })
    .await;

    let answers = futures_util::future::join_all(
        (0..40).map(|n| app.post_callback("payins", format!(r#"{{"idEntity": "Q-{n}"}}"#))),
    )
    .await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
}

#[tokio::test]
async fn shutdown_drains_a_callback_in_flight_and_refuses_new_connections() {
    let db = TestDatabase::create().await;
    let app = Application::build(test_settings(&db, "http://127.0.0.1:9"))
        .await
        .expect("application builds");
    let address = format!("127.0.0.1:{}", app.port());
    let pool = app.pool().clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let body = br#"{"idEntity":"DRAIN-1"}"#;
    let mut in_flight = open_callback(&address, body.len()).await;

    shutdown.cancel();
    eventually(Duration::from_secs(10), || async {
        TcpStream::connect(&address).await.is_err().then_some(())
    })
    .await;
    in_flight.write_all(body).await.expect("the body");

    assert_eq!(read_answer(&mut in_flight).await.status(), Some(200));
    running
        .await
        .expect("app task joins")
        .expect("app stops cleanly");
    let stored: i64 =
        sqlx::query_scalar("select count(*) from callbacks_on_record where payment_id = 'DRAIN-1'")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(stored, 1);
}
