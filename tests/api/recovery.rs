//! Crash recovery: a claimed job's lease is kept alive while its holder works, and
//! returns within seconds when the holder dies — proved on a real `paymirror serve`
//! killed with SIGKILL mid-stream.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paymirror::domain::PaymentKind;
use paymirror::queue::{claim_due_jobs, reap_expired_leases};
use paymirror::simulator::{Simulator, SimulatorConfig};
use paymirror::sync::JobOutcome;
use tokio::process::Child;

use crate::helpers::{
    eventually, free_port, payment, serve_command, spawn_with_simulator, wait_ready, TestDatabase,
};

#[tokio::test]
async fn a_live_holder_keeps_its_lease_through_a_fetch_longer_than_the_lease() {
    let (app, sim) = spawn_with_simulator(
        |s| s.sync.lease = Duration::from_millis(2000),
        SimulatorConfig::default(),
        false,
    )
    .await;
    sim.create_payment(payment(PaymentKind::Payin, "SLOW-1", "5.00"))
        .await;
    sim.set_latency(Duration::from_millis(6000));
    app.post_callback("payins", r#"{"idEntity": "SLOW-1"}"#)
        .await;
    let job = claim_due_jobs(&app.pool, "M1", 1, Duration::from_millis(2000))
        .await
        .expect("claim")
        .remove(0);

    let worker = app.worker.clone();
    let fetch = tokio::spawn(async move { worker.process_job(job).await });
    // Three lease lengths pass while the fetch is in flight: nobody else may take it.
    let mut double_claims = 0;
    while !fetch.is_finished() {
        reap_expired_leases(&app.pool).await.expect("reap");
        double_claims += claim_due_jobs(&app.pool, "M1", 1, Duration::from_secs(60))
            .await
            .expect("claim")
            .len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(double_claims, 0);
    assert_eq!(fetch.await.expect("joins"), JobOutcome::Synced);
}

/// A `paymirror serve` process against the test database and simulator.
fn serve(db: &TestDatabase, port: u16, sim: &Simulator) -> Child {
    serve_command(db, port, &sim.base_url())
        .spawn()
        .expect("paymirror serve starts")
}

#[tokio::test]
async fn every_acknowledged_callback_is_stored_soon_after_a_sigkill_and_restart() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind simulator");
    let sim = Simulator::start(listener, SimulatorConfig::default())
        .await
        .expect("simulator");
    const PAYMENTS: usize = 50;
    for n in 0..PAYMENTS {
        sim.create_payment(payment(PaymentKind::Payin, &format!("K-{n}"), "1.00"))
            .await;
    }
    // Slow answers: when the kill comes, fetches are in flight.
    sim.set_latency(Duration::from_millis(1000));
    let db = TestDatabase::create().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut first = serve(&db, port, &sim);
    wait_ready(&http, &base).await;

    // A stream of callbacks, one every 40 ms, straight through the kill.
    let acked = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn({
        let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
        async move {
            let mut acknowledged = Vec::new();
            for n in 0..PAYMENTS {
                let id = format!("K-{n}");
                let answer = http
                    .post(format!("{base}/callbacks/payins"))
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"idEntity": "{id}"}}"#))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                if answer.is_ok_and(|a| a.status() == 200) {
                    acknowledged.push(id);
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            acknowledged
        }
    });
    // Halfway through the stream, with fetches in flight on the slow platform.
    eventually(Duration::from_secs(30), || async {
        (acked.load(Ordering::Relaxed) >= PAYMENTS / 2).then_some(())
    })
    .await;
    sim.wait_until(Duration::from_secs(30), |sim| {
        sim.requests()
            .iter()
            .any(|r| r.path.starts_with("/payins/"))
    })
    .await
    .expect("fetches under way");
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    let acknowledged: HashSet<String> = stream.await.expect("stream").into_iter().collect();
    assert!(acknowledged.len() >= PAYMENTS / 2, "{acknowledged:?}");
    assert!(
        acknowledged.len() < PAYMENTS,
        "the kill came after the stream ended"
    );

    let _second = serve(&db, port, &sim);
    let restarted = Instant::now();
    let pool = sqlx::PgPool::connect(db.url.as_str()).await.expect("pool");
    eventually(Duration::from_secs(30), || async {
        let stored: Vec<String> =
            sqlx::query_scalar("select id from payments where status is not null")
                .fetch_all(&pool)
                .await
                .ok()?;
        let stored: HashSet<String> = stored.into_iter().collect();
        acknowledged.is_subset(&stored).then_some(())
    })
    .await;
    eprintln!(
        "every one of {} acknowledged callbacks stored {:.1} s after the restart",
        acknowledged.len(),
        restarted.elapsed().as_secs_f64()
    );
}
