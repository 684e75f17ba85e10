//! Forged callbacks cost nothing lasting: an id the platform never knew is retried
//! behind every fresh callback, and once dead as "not found" it is never fetched again
//! unless a callback, a refresh or an operator asks; a real callback is fetched ahead
//! of a flood of forged ones; no payment is reconciled past `reconcile.max_age_hours`.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use paymirror::domain::PaymentKind;
use paymirror::queue::{self, Priority};
use paymirror::simulator::SimulatorConfig;

use crate::helpers::{eventually, payment, spawn_with_simulator, TestApp};

/// Posts a payin callback for each id, 64 at a time; every one must be answered 200.
async fn post_callbacks(app: &TestApp, ids: impl Iterator<Item = String>) {
    let statuses: Vec<u16> = stream::iter(ids)
        .map(|id| async move {
            app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
                .await
                .status()
                .as_u16()
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200));
}

/// Platform fetches of payins whose id starts with `prefix`.
fn fetches(sim: &paymirror::simulator::Simulator, prefix: &str) -> usize {
    let path = format!("/payins/{prefix}");
    sim.requests()
        .iter()
        .filter(|r| r.path.starts_with(&path))
        .count()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn ids_dead_as_not_found_are_retried_last_and_never_reconciled() {
    let (app, sim) = spawn_with_simulator(
        |s| {
            s.sync.enabled = true;
            s.sync.not_found_max_age = Duration::from_millis(500);
            s.reconcile.interval = Duration::from_secs(2);
            s.platform.max_rps = 100;
        },
        SimulatorConfig {
            max_rps: 100,
            ..SimulatorConfig::default()
        },
        false,
    )
    .await;
    post_callbacks(&app, (0..20).map(|n| format!("FORGED-{n}"))).await;

    // After the first 410 the retries run at reconciliation priority.
    eventually(Duration::from_secs(20), || async {
        let retried = count(
            &app,
            "select count(*) from sync_jobs where payment_id like 'FORGED-%' and attempts >= 1 and state = 'pending'",
        )
        .await;
        (retried > 0).then_some(())
    })
    .await;
    let urgent_retries = count(
        &app,
        &format!(
            "select count(*) from sync_jobs where payment_id like 'FORGED-%' and attempts >= 1
               and state = 'pending' and priority <> {}",
            Priority::Reconcile.as_i16()
        ),
    )
    .await;
    assert_eq!(urgent_retries, 0, "a 410 retry kept callback priority");

    eventually(Duration::from_secs(30), || async {
        let dead = count(
            &app,
            "select count(*) from sync_jobs where payment_id like 'FORGED-%' and state = 'dead'",
        )
        .await;
        (dead == 20).then_some(())
    })
    .await;
    let spent = fetches(&sim, "FORGED-");
    let scheduled = count(
        &app,
        "select count(*) from sync_jobs where payment_id like 'FORGED-%' and reconcile_at is not null",
    )
    .await;
    assert_eq!(
        scheduled, 0,
        "a reconciliation is scheduled for a forged id"
    );

    // Three reconciliation intervals later, not one more fetch.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(fetches(&sim, "FORGED-"), spent);

    // A new callback revives one.
    post_callbacks(&app, std::iter::once("FORGED-0".to_owned())).await;
    eventually(Duration::from_secs(10), || async {
        (fetches(&sim, "FORGED-0") > 0 && fetches(&sim, "FORGED-") > spent).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_real_callback_is_fetched_ahead_of_a_flood_of_2000_forged_ones() {
    let (app, sim) =
        spawn_with_simulator(|s| s.sync.enabled = true, SimulatorConfig::default(), false).await;
    sim.create_payment(payment(PaymentKind::Payin, "REAL-1", "42.05"))
        .await;
    post_callbacks(&app, (0..2000).map(|n| format!("FLOOD-{n}"))).await;
    post_callbacks(&app, std::iter::once("REAL-1".to_owned())).await;
    let sent = tokio::time::Instant::now();
    let flood_before = fetches(&sim, "FLOOD-");

    eventually(Duration::from_secs(30), || async {
        (fetches(&sim, "REAL-1") > 0).then_some(())
    })
    .await;
    let waited = sent.elapsed();
    let flood_between = fetches(&sim, "FLOOD-") - flood_before;

    println!(
        "REAL-1 fetched {waited:?} after its callback was stored, {flood_between} forged fetches \
         in between, {} of 2000 forged ids fetched by then",
        flood_before + flood_between
    );
    // At 10 requests a second the flood's first fetches take 200 s; claims alternate
    // between the oldest and the newest due callback, so the real one goes within two.
    assert!(
        flood_between <= 3,
        "{flood_between} forged ids were fetched before the real one"
    );
}

#[tokio::test]
async fn no_payment_is_reconciled_past_the_maximum_age() {
    let app = TestApp::spawn().await;
    post_callbacks(&app, ["OLD-1", "YOUNG-1"].into_iter().map(str::to_owned)).await;
    sqlx::raw_sql(
        "update payments set first_seen_at = now() - interval '73 hours' where id = 'OLD-1';
         update sync_jobs set created_at = now() - interval '73 hours' where payment_id = 'OLD-1';
         update sync_jobs set state = 'dead', reconcile_at = now() - interval '1 second'",
    )
    .execute(&app.pool)
    .await
    .expect("an old dead sync and a young one, both due");

    let promoted =
        queue::promote_due_reconciliations(&app.pool, "M1", Duration::from_secs(72 * 3600))
            .await
            .expect("promote");

    assert_eq!(promoted, 1);
    let states: Vec<(String, String, bool)> = sqlx::query_as(
        "select payment_id, state, reconcile_at is not null from sync_jobs order by payment_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("jobs");
    assert_eq!(
        states,
        [
            ("OLD-1".to_owned(), "dead".to_owned(), false),
            ("YOUNG-1".to_owned(), "pending".to_owned(), false),
        ]
    );
}
