//! Start-up migrations as replicas meet them: one waits for another's migration as
//! long as it takes (and no longer than told), and five started at once on an empty
//! database all become ready.

use std::time::Duration;

use sqlx::migrate::Migrate;
use sqlx::{Connection, PgConnection};

use crate::helpers::TestDatabase;
use crate::replica::Replica;

/// A connection holding sqlx's migration lock, taken the way sqlx itself takes it
/// (as a replica of a release that lets sqlx migrate does).
async fn hold_migration_lock(db: &TestDatabase) -> PgConnection {
    let mut conn = PgConnection::connect(db.url.as_str())
        .await
        .expect("connects");
    conn.lock().await.expect("sqlx's migration lock");
    conn
}

#[tokio::test]
async fn a_replica_waits_for_a_migration_held_for_14_s_then_serves() {
    let db = TestDatabase::create().await;
    let mut holder = hold_migration_lock(&db).await;
    // The default statement_timeout (10 s) is shorter than the wait.
    let mut replica = Replica::start(&db, &[]);

    replica
        .wait_for_log(
            "waiting for another replica to finish migrating",
            Duration::from_secs(10),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(
        replica.process.try_wait().expect("status").is_none(),
        "serve gave up waiting:\n{}",
        replica.logs()
    );
    holder.unlock().await.expect("released");

    replica.wait_ready(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_replica_waits_no_longer_than_migration_lock_wait_secs() {
    let db = TestDatabase::create().await;
    let _holder = hold_migration_lock(&db).await;
    let mut replica = Replica::start(
        &db,
        &[("PAYMIRROR__DATABASE__MIGRATION_LOCK_WAIT_SECS", "1")],
    );

    let status = tokio::time::timeout(Duration::from_secs(30), replica.process.wait())
        .await
        .expect("serve stops")
        .expect("status");

    assert!(!status.success());
    // What it printed last may still be on its way through the pipe.
    replica
        .wait_for_log(
            "PAYMIRROR__DATABASE__MIGRATION_LOCK_WAIT_SECS",
            Duration::from_secs(10),
        )
        .await;
}

#[tokio::test]
async fn five_replicas_started_at_once_on_an_empty_database_all_become_ready() {
    let db = TestDatabase::create().await;
    let mut replicas: Vec<Replica> = (0..5).map(|_| Replica::start(&db, &[])).collect();

    for replica in &mut replicas {
        replica.wait_ready(Duration::from_secs(60)).await;
    }

    let applied: i64 = {
        let mut conn = PgConnection::connect(db.url.as_str())
            .await
            .expect("connects");
        sqlx::query_scalar("select count(*) from _sqlx_migrations")
            .fetch_one(&mut conn)
            .await
            .expect("count")
    };
    assert_eq!(
        applied as usize,
        paymirror::migrations::migrator().iter().count()
    );
}
