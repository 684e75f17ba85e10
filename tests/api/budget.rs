use std::sync::Arc;
use std::time::{Duration, Instant};

use paymirror::platform::{RateLimiter, SharedBudget, WINDOW};
use sqlx::PgPool;

use crate::helpers::TestApp;

async fn replica_limiter(pool: &PgPool, max: u32) -> Arc<RateLimiter> {
    let budget = SharedBudget::new(pool.clone(), "M1", max, WINDOW, Duration::from_secs(10))
        .await
        .expect("budget");
    Arc::new(RateLimiter::with_shared_budget(max, budget))
}

/// The most send times that fall within any one second.
fn peak_per_second(times: &[Instant]) -> usize {
    times
        .iter()
        .map(|&start| {
            times
                .iter()
                .filter(|&&t| t >= start && t - start < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn two_replicas_together_stay_within_the_merchants_limit() {
    let app = TestApp::spawn().await;
    // Two pools and two limiters: two replicas sharing one database.
    let other_pool = PgPool::connect(app.db.url.as_str())
        .await
        .expect("second pool");
    let replicas = [
        replica_limiter(&app.pool, 10).await,
        replica_limiter(&other_pool, 10).await,
    ];
    let started = Instant::now();

    let sends = futures_util::future::join_all((0..30).map(|i| {
        let limiter = replicas[i % 2].clone();
        async move {
            limiter.acquire().await;
            Instant::now()
        }
    }))
    .await;

    assert_eq!(peak_per_second(&sends), 10);
    // 30 sends at 10 per window need at least two full windows after the first ten.
    assert!(started.elapsed() >= 2 * WINDOW, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_pause_reaches_every_replica() {
    let app = TestApp::spawn().await;
    let first = replica_limiter(&app.pool, 10).await;
    let second = replica_limiter(&app.pool, 10).await;

    first.pause(Duration::from_millis(800)).await;
    let started = Instant::now();
    second.acquire().await;

    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_vanished_replicas_sends_age_out_of_the_window() {
    let app = TestApp::spawn().await;
    let vanished = replica_limiter(&app.pool, 5).await;
    for _ in 0..5 {
        vanished.acquire().await;
    }
    let filled = Instant::now();
    drop(vanished);

    let survivor = replica_limiter(&app.pool, 5).await;
    survivor.acquire().await;

    let waited = filled.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}
