use std::collections::HashSet;
use std::time::Duration;

use paymirror::queue::{self, claim_due_jobs, enqueue_syncs, reap_expired_leases, Priority};
use sqlx::PgPool;

use crate::helpers::{eventually, TestApp};

/// Claims the one due job and fails it with no retry age left: it is dead, and
/// reconciled again after `reconcile_after` if its payment is not final.
async fn fail_for_good(
    app: &TestApp,
    reconcile_after: Duration,
) -> Option<paymirror::domain::JobState> {
    let job = claim_due_jobs(&app.pool, "M1", 1, Duration::from_secs(60))
        .await
        .expect("claim")
        .remove(0);
    let policy = queue::RetryPolicy {
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(1),
        max_age: Duration::ZERO,
        dead_reconcile_after: Some(reconcile_after),
        reconcile_max_age: Duration::from_secs(72 * 3600),
        retry_priority: None,
    };
    let mut conn = app.pool.acquire().await.expect("connection");
    queue::fail_job(&mut conn, &job, "boom", &policy)
        .await
        .expect("fail")
}

async fn job_state(pool: &PgPool, id: &str) -> (String, Option<i16>) {
    sqlx::query_as("select state, rerun_priority from sync_jobs where payment_id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("job row")
}

#[tokio::test]
async fn a_crashed_workers_job_comes_back_after_its_lease_and_the_old_holder_cannot_finish_it() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "CRASH-1"}"#)
        .await;
    let lease = Duration::from_millis(300);

    // A worker claims the job and dies without a word.
    let lost = claim_due_jobs(&app.pool, "M1", 10, lease)
        .await
        .expect("claim")
        .remove(0);
    assert!(claim_due_jobs(&app.pool, "M1", 10, lease)
        .await
        .expect("claim")
        .is_empty());

    let reclaimed = eventually(Duration::from_secs(10), || async {
        reap_expired_leases(&app.pool).await.expect("reap");
        claim_due_jobs(&app.pool, "M1", 10, lease)
            .await
            .expect("claim")
            .pop()
    })
    .await;

    assert_eq!(reclaimed.id, lost.id);
    assert_ne!(reclaimed.claim_token, lost.claim_token);
    let mut conn = app.pool.acquire().await.expect("connection");
    assert!(!queue::finish_job(&mut conn, &lost, None)
        .await
        .expect("finish"));
    assert!(queue::finish_job(&mut conn, &reclaimed, None)
        .await
        .expect("finish"));
    assert_eq!(job_state(&app.pool, "CRASH-1").await.0, "idle");
}

#[tokio::test]
async fn concurrent_claimers_on_two_pools_never_share_a_job() {
    let app = TestApp::spawn().await;
    for n in 0..60 {
        app.post_callback("payouts", format!(r#"{{"idEntity": "P-{n}"}}"#))
            .await;
    }
    // A second pool stands for a second replica on the same database.
    let other_replica = PgPool::connect(app.db.url.as_str())
        .await
        .expect("second pool");

    let claims = futures_util::future::join_all((0..12).map(|i| {
        let pool = if i % 2 == 0 {
            app.pool.clone()
        } else {
            other_replica.clone()
        };
        async move {
            let mut mine = Vec::new();
            loop {
                let jobs = claim_due_jobs(&pool, "M1", 3, Duration::from_secs(60))
                    .await
                    .expect("claim");
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| j.id.to_string()));
            }
        }
    }))
    .await;

    let all: Vec<String> = claims.into_iter().flatten().collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 60);
    assert_eq!(unique.len(), 60);
}

#[tokio::test]
async fn a_sync_requested_while_running_is_remembered_once_at_its_best_priority() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "RUN-1"}"#)
        .await;
    let job = claim_due_jobs(&app.pool, "M1", 1, Duration::from_secs(60))
        .await
        .expect("claim")
        .remove(0);

    let mut conn = app.pool.acquire().await.expect("connection");
    let key = [(job.kind, job.id.clone())];
    enqueue_syncs(&mut conn, "M1", &key, Priority::Reconcile)
        .await
        .expect("enqueue");
    enqueue_syncs(&mut conn, "M1", &key, Priority::Callback)
        .await
        .expect("enqueue");
    enqueue_syncs(&mut conn, "M1", &key, Priority::Manual)
        .await
        .expect("enqueue");
    assert_eq!(
        job_state(&app.pool, "RUN-1").await,
        ("running".into(), Some(0))
    );

    assert!(queue::finish_job(&mut conn, &job, None)
        .await
        .expect("finish"));
    let (state, rerun) = job_state(&app.pool, "RUN-1").await;
    assert_eq!((state.as_str(), rerun), ("pending", None));
    let again = claim_due_jobs(&app.pool, "M1", 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].priority, 0);
}

#[tokio::test]
async fn a_dead_sync_is_revived_by_a_new_callback() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "DEAD-1"}"#)
        .await;
    let state = fail_for_good(&app, Duration::from_secs(3600)).await;
    assert_eq!(state, Some(paymirror::domain::JobState::Dead));

    app.post_callback("payins", r#"{"idEntity": "DEAD-1"}"#)
        .await;

    let (state, attempts): (String, i32) =
        sqlx::query_as("select state, attempts from sync_jobs where payment_id = 'DEAD-1'")
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!((state.as_str(), attempts), ("pending", 0));
}

#[tokio::test]
async fn a_revived_job_is_due_now_not_at_its_old_run_at() {
    let app = TestApp::spawn().await;
    for state in ["idle", "dead"] {
        let id = format!("OLD-{state}");
        app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
        sqlx::query(
            "update sync_jobs set state = $2, run_at = now() - interval '3 days' where payment_id = $1",
        )
        .bind(&id)
        .bind(state)
        .execute(&app.pool)
        .await
        .expect("age the job");

        app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;

        let (state, late): (String, f64) = sqlx::query_as(
            "select state, extract(epoch from now() - run_at)::float8 from sync_jobs where payment_id = $1",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .expect("row");
        assert_eq!(state, "pending");
        assert!(late < 60.0, "run_at is {late} s old");
    }
}

#[tokio::test]
async fn a_dead_sync_of_a_payment_not_final_is_reconciled_again() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "LIMBO-1"}"#)
        .await;
    let state = fail_for_good(&app, Duration::ZERO).await;
    assert_eq!(state, Some(paymirror::domain::JobState::Dead));

    let promoted =
        queue::promote_due_reconciliations(&app.pool, "M1", Duration::from_secs(72 * 3600))
            .await
            .expect("promote");

    assert_eq!(promoted, 1);
    let (state, attempts): (String, i32) =
        sqlx::query_as("select state, attempts from sync_jobs where payment_id = 'LIMBO-1'")
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!((state.as_str(), attempts), ("pending", 0));
}

#[tokio::test]
async fn a_dead_sync_of_a_final_payment_is_left_alone() {
    let app = TestApp::spawn().await;
    app.post_callback("payins", r#"{"idEntity": "DONE-1"}"#)
        .await;
    sqlx::query("update payments set status = 'SUCCESS', final = true where id = 'DONE-1'")
        .execute(&app.pool)
        .await
        .expect("final");
    fail_for_good(&app, Duration::ZERO).await;

    let promoted =
        queue::promote_due_reconciliations(&app.pool, "M1", Duration::from_secs(72 * 3600))
            .await
            .expect("promote");

    assert_eq!(promoted, 0);
}
