use std::process::Output;

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
