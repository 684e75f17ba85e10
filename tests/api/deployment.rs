//! Real deployments: Postgres over TLS, an older replica beside a newer migration,
//! and `paymirror serve` started outside the repository.

use std::time::Duration;

use paymirror::app::Application;
use paymirror::config::DatabaseSettings;

use crate::helpers::{free_port, serve_command, test_settings, wait_ready, TestApp, TestDatabase};

#[tokio::test]
async fn postgres_over_tls_with_sslmode_require() {
    let db = TestDatabase::create().await;
    let settings = DatabaseSettings {
        url: format!("{}?sslmode=require", db.url).into(),
        max_connections: 1,
        read_lanes: 0,
        acquire_timeout: Duration::from_millis(3000),
        statement_timeout: Duration::from_secs(10),
        ping_after_idle: Duration::from_millis(500),
        migration_lock_wait: Duration::from_secs(300),
    };
    let pool = settings.pool().expect("pool");

    let encrypted: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .expect("a TLS connection");

    assert!(encrypted);
}

#[tokio::test]
async fn an_older_replica_starts_after_a_newer_release_applied_a_migration() {
    let db = TestDatabase::create().await;
    let settings = test_settings(&db, "http://127.0.0.1:9");
    // The newer release migrated, including a migration this binary does not know.
    let newer = Application::build(settings.clone()).await.expect("builds");
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values (29991231000000, 'from a newer release', true, '\\x00', 1)",
    )
    .execute(newer.pool())
    .await
    .expect("a newer migration");
    drop(newer);

    let older = TestApp::spawn_with(db, settings).await;
    let ready = older.get("/readyz", None).await;

    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn serve_starts_from_a_directory_without_configuration_files() {
    let db = TestDatabase::create().await;
    let empty = std::env::temp_dir().join(format!("paymirror-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&empty).expect("an empty directory");
    let port = free_port();
    let mut serve = serve_command(&db, port, "http://127.0.0.1:9")
        .current_dir(&empty)
        .env_remove("PAYMIRROR_CONFIG_DIR")
        // Values that read as numbers stay strings.
        .env("PAYMIRROR__PLATFORM__MERCHANT_CODE", "0042")
        .env("PAYMIRROR__PLATFORM__SECRET", "0123456")
        .spawn()
        .expect("paymirror serve starts");

    wait_ready(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;

    assert!(serve.try_wait().expect("status").is_none(), "serve exited");
    let _ = serve.start_kill();
    let _ = std::fs::remove_dir(&empty);
}
