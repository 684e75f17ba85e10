//! A platform outage ends well: no sync dies, the failing platform is probed about
//! once a second rather than hammered, and everything is synced soon after it
//! answers again. Pauses are capped and an operator can end one.

use std::time::{Duration, Instant};

use paymirror::domain::PaymentKind;
use paymirror::platform::{budget_state, resume, RateLimiter, SharedBudget, WINDOW};
use paymirror::simulator::{Faults, SimulatorConfig};

use crate::helpers::{eventually, payment, spawn_with_simulator, TestApp};

/// Outage length: 12 s by default; `OUTAGE_SECS=300` runs the five-minute case.
fn outage() -> Duration {
    let secs = std::env::var("OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    Duration::from_secs(secs)
}

#[tokio::test]
async fn an_outage_kills_no_sync_is_probed_gently_and_everything_syncs_after_recovery() {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.enabled = true;
            // The shipped backoff and bounds: a probe's job may back off for minutes.
            s.sync.backoff_base = Duration::from_millis(1000);
            s.sync.backoff_cap = Duration::from_millis(300_000);
            s.sync.poll_interval = Duration::from_millis(500);
        },
        SimulatorConfig::default(),
        false,
    )
    .await;
    const PAYMENTS: usize = 30;
    for n in 0..PAYMENTS {
        sim.create_payment(payment(PaymentKind::Payout, &format!("O-{n}"), "2.00"))
            .await;
    }
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let down_at = Instant::now();
    for n in 0..PAYMENTS {
        let answer = app
            .post_callback("payouts", format!(r#"{{"idEntity": "O-{n}"}}"#))
            .await;
        assert_eq!(answer.status(), 200);
    }

    tokio::time::sleep(outage()).await;
    sim.set_faults(Faults::default());
    let recovered_at = Instant::now();
    let during = sim
        .requests()
        .iter()
        .filter(|r| r.at >= down_at && r.at < recovered_at)
        .count();

    let stored = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from payments where status is not null")
            .fetch_one(&app.pool)
            .await
            .ok()
    };
    eventually(Duration::from_secs(45), || async {
        (stored().await? == PAYMENTS as i64).then_some(())
    })
    .await;
    let synced_after = recovered_at.elapsed();
    let dead: i64 = sqlx::query_scalar("select count(*) from sync_jobs where state = 'dead'")
        .fetch_one(&app.pool)
        .await
        .expect("count");

    eprintln!(
        "outage {:?}: {during} platform requests during it ({:.2}/s), all {PAYMENTS} synced {:.1} s after recovery, {dead} dead",
        outage(),
        during as f64 / outage().as_secs_f64(),
        synced_after.as_secs_f64()
    );
    assert_eq!(dead, 0);
    // About one probe a second, plus the failures that revealed the outage.
    assert!(
        during as u64 <= outage().as_secs() + 15,
        "{during} requests in {:?}",
        outage()
    );
}

#[tokio::test]
async fn retry_after_is_capped_at_a_minute() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    sim.create_payment(payment(PaymentKind::Payin, "RA-1", "1.00"))
        .await;
    sim.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_secs: Some(3600),
        ..Faults::default()
    });
    app.post_callback("payins", r#"{"idEntity": "RA-1"}"#).await;

    app.worker.run_until_idle().await.expect("worker");

    let due_in: f64 = sqlx::query_scalar(
        "select extract(epoch from run_at - now())::float8 from sync_jobs where payment_id = 'RA-1'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("run_at");
    assert!(due_in > 30.0 && due_in <= 61.0, "due in {due_in} s");
    let state = budget_state(&app.pool, "M1", WINDOW)
        .await
        .expect("budget")
        .expect("row");
    let paused_for = state
        .paused_until
        .map(|t| (t - chrono::Utc::now()).num_seconds())
        .unwrap_or_default();
    assert!((30..=61).contains(&paused_for), "paused for {paused_for} s");
}

#[tokio::test]
async fn an_operator_resume_releases_every_waiting_sender() {
    let app = TestApp::spawn().await;
    let budget = SharedBudget::new(app.pool.clone(), "M1", 10, WINDOW, Duration::from_secs(10))
        .await
        .expect("budget");
    let limiter = std::sync::Arc::new(RateLimiter::with_shared_budget(10, budget));
    limiter.pause(Duration::from_secs(60)).await;
    let waiting = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            drop(limiter.acquire().await);
        }
    });

    assert!(resume(&app.pool, "M1").await.expect("resume"));

    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("released within seconds, not a minute")
        .expect("joins");
}
