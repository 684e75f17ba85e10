//! The read lanes keep a connection from one read to the next, and never one whose
//! read was cancelled mid-statement: such a connection may still be running the
//! statement, or hold half of its answer, and the next read on it would get either.

use std::time::Duration;

use paymirror::db::Lanes;
use sqlx::PgPool;

use crate::helpers::TestDatabase;

async fn backend_pid(lanes: &Lanes) -> i32 {
    let mut lane = lanes.acquire().await.expect("a lane");
    let pid = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *lane)
        .await;
    lane.settle(&pid);
    pid.expect("a backend pid")
}

#[tokio::test]
async fn a_settled_read_keeps_its_lane_and_a_cancelled_one_closes_it() {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url.as_str()).await.expect("a pool");
    let lanes = Lanes::new(
        pool.clone(),
        1,
        Duration::from_secs(60),
        Duration::from_millis(300),
    );

    let first = backend_pid(&lanes).await;
    assert_eq!(lanes.idle(), 1);
    assert_eq!(
        backend_pid(&lanes).await,
        first,
        "the lane kept its connection"
    );

    // A read cut off mid-statement (a client that hung up, a request timeout).
    let cancelled = tokio::time::timeout(Duration::from_millis(300), async {
        let mut lane = lanes.acquire().await.expect("a lane");
        let slept = sqlx::query("select pg_sleep(30)").execute(&mut *lane).await;
        lane.settle(&slept);
    })
    .await;
    assert!(cancelled.is_err(), "the read was cut off");
    assert_eq!(
        lanes.idle(),
        0,
        "the cut-off read's connection was not kept"
    );

    let next = backend_pid(&lanes).await;
    assert_ne!(next, first, "the next read runs on a new connection");
    pool.close().await;
}

#[tokio::test]
async fn a_read_finding_every_lane_busy_waits_for_one_and_no_longer_than_the_timeout() {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url.as_str()).await.expect("a pool");
    let lanes = Lanes::new(
        pool.clone(),
        1,
        Duration::from_secs(60),
        Duration::from_millis(300),
    );

    let mut busy = lanes.acquire().await.expect("the one lane");
    let held: Result<i32, _> = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *busy)
        .await;
    busy.settle(&held);
    let waited = lanes.acquire().await;
    assert!(
        matches!(waited, Err(sqlx::Error::PoolTimedOut)),
        "the second read gives up after the acquire timeout"
    );
    drop(waited);
    drop(busy);
    assert_eq!(
        backend_pid(&lanes).await,
        held.expect("a pid"),
        "once given back, the lane serves the next read"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_failed_statement_keeps_the_lane_and_a_lost_connection_does_not() {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(db.url.as_str()).await.expect("a pool");
    let lanes = Lanes::new(
        pool.clone(),
        1,
        Duration::from_secs(60),
        Duration::from_millis(300),
    );
    let first = backend_pid(&lanes).await;

    let mut lane = lanes.acquire().await.expect("a lane");
    let refused = sqlx::query("select 1 / 0").execute(&mut *lane).await;
    lane.settle(&refused);
    drop(lane);
    assert!(refused.is_err());
    assert_eq!(
        backend_pid(&lanes).await,
        first,
        "a statement error leaves the connection fit"
    );

    sqlx::query("select pg_terminate_backend($1)")
        .bind(first)
        .execute(&pool)
        .await
        .expect("terminate the lane's session");
    let mut lane = lanes.acquire().await.expect("a lane");
    let lost = sqlx::query("select 1").execute(&mut *lane).await;
    lane.settle(&lost);
    drop(lane);
    assert!(lost.is_err(), "the first read after the cut fails");
    assert_eq!(lanes.idle(), 0, "the lost connection is not kept");
    assert_ne!(backend_pid(&lanes).await, first);
    pool.close().await;
}
