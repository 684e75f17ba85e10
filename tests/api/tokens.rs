use std::time::Duration;

use paymirror::tokens::{self, Permission};

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn only_the_newest_token_of_an_account_is_valid() {
    let app = TestApp::spawn().await;
    let first = app.token("billing", &[Permission::Read]).await;
    let second = app.token("billing", &[Permission::Read]).await;

    assert_eq!(first.len(), 30);
    assert_ne!(first, second);
    assert_error(app.get("/v1/payins", Some(&first)).await, 401).await;
    assert_eq!(app.get("/v1/payins", Some(&second)).await.status(), 200);
}

#[tokio::test]
async fn a_revoked_token_is_never_valid_again() {
    let app = TestApp::spawn().await;
    let token = app.token("billing", &[]).await;
    assert_eq!(app.get("/v1/payins", Some(&token)).await.status(), 200);

    tokens::revoke_tokens(&app.pool, "billing")
        .await
        .expect("revoked");
    app.token("other", &[]).await;

    // The replica remembered the token until the database's notice of the change.
    refused_soon(&app, "/v1/payins", &token, 401).await;
    for path in ["/v1/payins", "/v1/payins/P-1", "/v1/payouts", "/v1/changes"] {
        assert_error(app.get(path, Some(&token)).await, 401).await;
    }
}

/// Waits until `path` answers `status` to `token` (a replica hears of a token's change
/// from the database, milliseconds after it commits), then checks the answer's body.
async fn refused_soon(app: &TestApp, path: &str, token: &str, status: u16) {
    let answer = crate::helpers::eventually(Duration::from_secs(10), || async {
        let answer = app.get(path, Some(token)).await;
        (answer.status() == status).then_some(answer)
    })
    .await;
    assert_error(answer, status).await;
}

/// Waits for the replica's connection listening for token changes; returns its pid.
async fn token_listener(app: &TestApp) -> i32 {
    crate::helpers::eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar(
            "select pid from pg_stat_activity
             where datname = current_database()
               and query ilike 'listen%paymirror_api_tokens%'",
        )
        .fetch_optional(&app.pool)
        .await
        .ok()
        .flatten()
    })
    .await
}

/// A replica remembers the tokens it found active; the database itself announces a
/// change, so one made by hand (or by an older release) is heard as well.
#[tokio::test]
async fn a_token_changed_by_hand_is_refused_by_a_replica_that_remembered_it() {
    let app = TestApp::spawn().await;
    token_listener(&app).await;
    let stored = app.post_callback("payins", r#"{"idEntity":"P-1"}"#).await;
    assert_eq!(stored.status(), 200);
    let reader = app.token("reader", &[]).await;
    let writer = app.token("writer", &[Permission::Write]).await;
    for token in [&reader, &writer] {
        for path in ["/v1/payins/P-1", "/v1/payins"] {
            assert_eq!(app.get(path, Some(token)).await.status(), 200);
        }
    }

    sqlx::query("update api_tokens set active = false where account = 'reader'")
        .execute(&app.pool)
        .await
        .expect("deactivated by hand");
    refused_soon(&app, "/v1/payins/P-1", &reader, 401).await;
    assert_error(app.get("/v1/payins", Some(&reader)).await, 401).await;

    sqlx::query("update api_tokens set permissions = '{admin}' where account = 'writer'")
        .execute(&app.pool)
        .await
        .expect("re-permissioned by hand");
    refused_soon(&app, "/v1/payins", &writer, 403).await;
    assert_error(app.get("/v1/payins/P-1", Some(&writer)).await, 403).await;

    sqlx::query("delete from api_tokens")
        .execute(&app.pool)
        .await
        .expect("deleted by hand");
    refused_soon(&app, "/v1/payins/P-1", &writer, 401).await;
}

/// A notice sent while the replica's listening connection is down is lost: the replica
/// forgets every token when it loses the connection, and checks each in the database
/// until it listens again.
#[tokio::test]
async fn a_replica_that_lost_its_listening_connection_forgets_every_token() {
    let app = TestApp::spawn().await;
    let listener = token_listener(&app).await;
    let token = app.token("billing", &[]).await;
    assert_eq!(app.get("/v1/payins", Some(&token)).await.status(), 200);
    assert_eq!(app.get("/v1/payins", Some(&token)).await.status(), 200);

    // No notice this time: the change is made with the triggers off, after the
    // listening connection is gone.
    let terminated: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(listener)
        .fetch_one(&app.pool)
        .await
        .expect("terminated");
    assert!(terminated);
    let mut tx = app.pool.begin().await.expect("a transaction");
    sqlx::query("alter table api_tokens disable trigger user")
        .execute(&mut *tx)
        .await
        .expect("triggers off");
    sqlx::query("update api_tokens set active = false")
        .execute(&mut *tx)
        .await
        .expect("deactivated");
    sqlx::query("alter table api_tokens enable trigger user")
        .execute(&mut *tx)
        .await
        .expect("triggers on");
    tx.commit().await.expect("committed");

    refused_soon(&app, "/v1/payins", &token, 401).await;
}

#[tokio::test]
async fn tokens_are_stored_hashed_and_listing_counts_use() {
    let app = TestApp::spawn().await;
    let token = app.token("billing", &[Permission::Write]).await;
    app.get("/v1/payins", Some(&token)).await;
    app.get("/v1/payouts", Some(&token)).await;

    let hashes: Vec<String> = sqlx::query_scalar("select token_hash from api_tokens")
        .fetch_all(&app.pool)
        .await
        .expect("rows");
    assert!(hashes.iter().all(|h| h != &token && h.len() == 64));
    // Use is written every two seconds, not on each request.
    let listed = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        let listed = tokens::list_tokens(&app.pool).await.ok()?;
        (listed.first()?.use_count == 2).then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].account, "billing");
    let permissions: Vec<&str> = listed[0]
        .permissions
        .iter()
        .map(Permission::as_str)
        .collect();
    assert_eq!(permissions, vec!["write"]);
    assert!(listed[0].last_used_at.is_some());
}

/// The hot reads check the token in the statement that reads the payments: every
/// answer must still judge the token first, as the other routes do.
#[tokio::test]
async fn the_hot_reads_judge_the_token_before_the_payment() {
    let app = TestApp::spawn().await;
    let stored = app.post_callback("payins", r#"{"idEntity":"P-1"}"#).await;
    assert_eq!(stored.status(), 200);
    let replaced = app.token("billing", &[]).await;
    let valid = app.token("billing", &[]).await;
    let revoked = app.token("audit", &[]).await;
    tokens::revoke_tokens(&app.pool, "audit")
        .await
        .expect("revoked");

    let cases = [
        ("/v1/payins/P-1", Some(&valid), 200),
        ("/v1/payins/P-1", Some(&replaced), 401),
        ("/v1/payins/P-1", Some(&revoked), 401),
        ("/v1/payins/P-1", None, 401),
        ("/v1/payins/P-2", Some(&valid), 404),
        ("/v1/payins/P-2", Some(&revoked), 401),
        ("/v1/payins/P%2F1", Some(&valid), 400),
        ("/v1/payins/P%2F1", Some(&revoked), 401),
        ("/v1/payins", Some(&valid), 200),
        ("/v1/payins", Some(&replaced), 401),
        ("/v1/payins", Some(&revoked), 401),
        ("/v1/payins?limit=0", Some(&valid), 400),
        ("/v1/payins?limit=0", Some(&revoked), 401),
        ("/v1/payouts", Some(&revoked), 401),
    ];
    for (path, token, status) in cases {
        let answer = app.get(path, token.map(String::as_str)).await;
        assert_eq!(answer.status(), status, "{path} with {token:?}");
        if status != 200 {
            assert_error(answer, status).await;
        }
    }
}

/// A permission name this release does not know (a newer release's, or one written by
/// hand) grants nothing: neither a 500 nor more access, and `tokens list` still shows it.
#[tokio::test]
async fn a_permission_name_this_release_does_not_know_grants_nothing() {
    let app = TestApp::spawn().await;
    let reader = app.token("reader", &[]).await;
    let stranger = app.token("stranger", &[]).await;
    for (account, names) in [
        ("reader", vec!["admin", "read"]),
        ("stranger", vec!["admin"]),
    ] {
        sqlx::query("update api_tokens set permissions = $2 where account = $1 and active")
            .bind(account)
            .bind(names)
            .execute(&app.pool)
            .await
            .expect("updated by hand");
    }

    assert_eq!(app.get("/v1/payins", Some(&reader)).await.status(), 200);
    assert_error(app.post("/v1/payins/A-1/refresh", Some(&reader)).await, 403).await;
    assert_error(app.get("/v1/payins", Some(&stranger)).await, 403).await;
    assert_error(app.get("/v1/changes", Some(&stranger)).await, 403).await;
    let listed = tokens::list_tokens(&app.pool).await.expect("listed");
    let reader_names: Vec<&str> = listed
        .iter()
        .filter(|t| t.account == "reader")
        .flat_map(|t| t.permissions.iter().map(Permission::as_str))
        .collect();
    assert_eq!(reader_names, ["admin", "read"]);
}
