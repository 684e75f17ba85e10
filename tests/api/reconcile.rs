use std::time::Duration;

use paymirror::domain::{PaymentId, PaymentKind};
use paymirror::queue::claim_due_jobs;
use paymirror::simulator::{Faults, SimulatorConfig};
use sqlx::PgPool;

use crate::helpers::{payment, requests_for, spawn_with_simulator};

/// Makes every scheduled reconciliation due now, as if the time had come.
async fn make_reconciliations_due(pool: &PgPool) {
    sqlx::query("update sync_jobs set reconcile_at = now() - interval '1 second' where reconcile_at is not null")
        .execute(pool)
        .await
        .expect("update");
}

#[tokio::test]
async fn a_missed_final_callback_is_caught_by_reconciliation() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    sim.create_payment(payment(PaymentKind::Payin, "LOST-1", "20.00"))
        .await;
    app.post_callback("payins", r#"{"idEntity": "LOST-1"}"#)
        .await;
    app.worker.run_until_idle().await.expect("worker");
    let (reconcile_at, first_seen): (Option<chrono::DateTime<chrono::Utc>>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(
            "select j.reconcile_at, p.first_seen_at from sync_jobs j join payments p on p.id = j.payment_id
             where j.payment_id = 'LOST-1'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert_eq!(
        reconcile_at,
        Some(first_seen + chrono::Duration::seconds(60))
    );

    // The payment succeeds and the platform's callback never arrives.
    sim.set_faults(Faults {
        drop_callback_rate: 1.0,
        ..Faults::default()
    });
    sim.set_status(
        PaymentKind::Payin,
        &PaymentId::parse("LOST-1").expect("id"),
        "SUCCESS",
    )
    .await;
    assert_eq!(app.worker.promote_due_reconciliations().await, 0);
    make_reconciliations_due(&app.pool).await;
    assert_eq!(app.worker.promote_due_reconciliations().await, 1);
    app.worker.run_until_idle().await.expect("worker");

    let (status, reconcile_at): (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "select p.status, j.reconcile_at from payments p join sync_jobs j on j.payment_id = p.id where p.id = 'LOST-1'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("row");
    assert_eq!(status, "SUCCESS");
    assert_eq!(reconcile_at, None, "a final payment is not chased again");
    assert_eq!(requests_for(&sim, "/payins/LOST-1"), 2);
}

#[tokio::test]
async fn a_reconciliation_backlog_never_delays_a_fresh_callback() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    for n in 0..20 {
        let id = format!("OLD-{n}");
        sim.create_payment(payment(PaymentKind::Payin, &id, "1.00"))
            .await;
        app.post_callback("payins", format!(r#"{{"idEntity": "{id}"}}"#))
            .await;
    }
    app.worker.run_until_idle().await.expect("worker");
    make_reconciliations_due(&app.pool).await;
    assert_eq!(app.worker.promote_due_reconciliations().await, 20);
    let token = app
        .token("ops", &[paymirror::tokens::Permission::Write])
        .await;
    app.post("/v1/payins/MANUAL-1/refresh", Some(&token)).await;

    app.post_callback("payins", r#"{"idEntity": "FRESH-1"}"#)
        .await;

    let order: Vec<String> = {
        let mut order = Vec::new();
        for _ in 0..3 {
            let job = claim_due_jobs(&app.pool, "M1", 1, Duration::from_secs(60))
                .await
                .expect("claim");
            order.extend(job.into_iter().map(|j| j.id.to_string()));
        }
        order
    };
    assert_eq!(order[0], "FRESH-1");
    assert_eq!(order[1], "MANUAL-1");
    assert!(order[2].starts_with("OLD-"));
}
