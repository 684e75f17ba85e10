use std::process::Output;

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::TestDatabase;

async fn paymirror(db: &TestDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_paymirror"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", db.url.as_str())
        .env_remove("PAYMIRROR__PLATFORM__SECRET")
        .env_remove("PAYMIRROR__PLATFORM__MERCHANT_CODE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("paymirror runs")
}

#[tokio::test]
async fn tokens_create_prints_only_the_token_and_list_never_shows_it() {
    let db = TestDatabase::create().await;

    let created = paymirror(
        &db,
        &[
            "tokens",
            "create",
            "--account",
            "billing",
            "--permission",
            "write",
        ],
        &[],
    )
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    let token = stdout.trim_end_matches('\n');
    assert_eq!(token.len(), 30, "{stdout:?}");
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));

    let listed = paymirror(&db, &["tokens", "list"], &[]).await;
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("billing") && listing.contains("write"),
        "{listing}"
    );
    assert!(!listing.contains(token));

    let revoked = paymirror(&db, &["tokens", "revoke", "--account", "billing"], &[]).await;
    assert!(revoked.status.success());
    let listed = paymirror(&db, &["tokens", "list"], &[]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("false"));
}

#[tokio::test]
async fn serve_without_a_secret_stops_and_names_the_key() {
    let db = TestDatabase::create().await;

    let output = paymirror(
        &db,
        &["serve"],
        &[("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1")],
    )
    .await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PAYMIRROR__PLATFORM__SECRET"), "{stderr}");
}

#[tokio::test]
async fn an_invalid_value_is_named_too() {
    let db = TestDatabase::create().await;
    let env = [
        ("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1"),
        ("PAYMIRROR__PLATFORM__SECRET", "x"),
        ("PAYMIRROR__PLATFORM__MAX_RPS", "lots"),
    ];

    let output = paymirror(&db, &["serve"], &env).await;

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_rps"), "{stderr}");
}

/// Parses a command's stdout as a JSON array of objects.
fn json_rows(output: &Output) -> Vec<serde_json::Map<String, Value>> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|row| row.as_object().expect("an object").clone())
        .collect()
}

#[tokio::test]
async fn tokens_list_json_is_an_array_of_camel_case_objects_without_the_token() {
    let db = TestDatabase::create().await;
    let created = paymirror(
        &db,
        &[
            "tokens",
            "create",
            "--account",
            "ledger",
            "--permission",
            "write",
        ],
        &[],
    )
    .await;
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert_eq!(token.len(), 30);

    let listed = paymirror(&db, &["tokens", "list", "--json"], &[]).await;

    let rows = json_rows(&listed);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "account",
            "active",
            "createdAt",
            "lastUsedAt",
            "merchants",
            "permissions",
            "useCount"
        ]
    );
    assert_eq!(row["account"], "ledger");
    assert_eq!(row["permissions"], json!(["write"]));
    assert_eq!(row["active"], true);
    assert_eq!(row["useCount"], 0);
    assert_eq!(row["lastUsedAt"], Value::Null);
    let created_at = row["createdAt"].as_str().expect("createdAt is a string");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&token));
}

#[tokio::test]
async fn syncs_dead_json_lists_each_dead_sync_and_an_empty_array_when_none() {
    let db = TestDatabase::create().await;
    let merchant = [("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1")];
    let none = paymirror(&db, &["syncs", "dead", "--json"], &merchant).await;
    assert!(json_rows(&none).is_empty());
    let pool = PgPool::connect(db.url.as_str()).await.expect("connect");
    for (kind, id) in [("payin", "DEAD-1"), ("payout", "DEAD-2")] {
        sqlx::query("insert into payments (merchant_code, kind, id) values ('M1', $1, $2)")
            .bind(kind)
            .bind(id)
            .execute(&pool)
            .await
            .expect("payment");
        sqlx::query(
            "insert into sync_jobs (merchant_code, kind, payment_id, state, priority, attempts,
                                    last_error, failing_since)
             values ('M1', $1, $2, 'dead', 0, 7, 'the platform answered 500', now() - interval '1 day')",
        )
        .bind(kind)
        .bind(id)
        .execute(&pool)
        .await
        .expect("dead sync");
    }
    pool.close().await;

    let listed = paymirror(&db, &["syncs", "dead", "--json"], &merchant).await;

    let rows = json_rows(&listed);
    let ids: Vec<&Value> = rows.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&&json!("DEAD-1")) && ids.contains(&&json!("DEAD-2")));
    let payin = rows
        .iter()
        .find(|r| r["id"] == "DEAD-1")
        .expect("DEAD-1 listed");
    assert_eq!(payin["kind"], "payin");
    assert_eq!(payin["attempts"], 7);
    assert_eq!(payin["lastError"], "the platform answered 500");
    assert!(payin["failingSince"].is_string() && payin["deadSince"].is_string());
    assert!(rows.iter().all(|r| r.keys().all(|k| !k.contains('_'))));
}

/// With a `[[merchants]]` entry, the operator commands take `--merchant`: a code the
/// configuration names, or an error naming the code.
#[tokio::test]
async fn operator_commands_take_a_configured_merchant() {
    let db = TestDatabase::create().await;
    let dir = std::env::temp_dir().join(format!("paymirror-cli-{}", db.name));
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(
        dir.join("default.toml"),
        "[[merchants]]\ncode = \"M2\"\nsecret_env = \"M2_SECRET\"\n",
    )
    .expect("config file");
    let dir_text = dir.to_string_lossy().into_owned();
    let env = [
        ("PAYMIRROR_CONFIG_DIR", dir_text.as_str()),
        ("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1"),
    ];

    let created = paymirror(
        &db,
        &["tokens", "create", "--account", "shop", "--merchant", "M2"],
        &env,
    )
    .await;
    assert!(created.status.success(), "{created:?}");
    let listed = paymirror(&db, &["tokens", "list", "--json"], &env).await;
    let rows = json_rows(&listed);
    assert_eq!(rows[0]["merchants"], json!(["M2"]));

    for args in [
        &["tokens", "create", "--account", "x", "--merchant", "M9"][..],
        &["syncs", "dead", "--merchant", "M9"],
        &["syncs", "retry", "--merchant", "M9"],
        &["platform", "status", "--merchant", "M9"],
        &["platform", "resume", "--merchant", "M9"],
    ] {
        let refused = paymirror(&db, args, &env).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            stderr.contains("\"M9\" is not configured"),
            "{args:?}: {stderr}"
        );
    }
    for args in [
        &["syncs", "dead", "--merchant", "M2", "--json"][..],
        &["platform", "status", "--merchant", "M2"],
    ] {
        let answered = paymirror(&db, args, &env).await;
        assert!(answered.status.success(), "{args:?}: {answered:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
