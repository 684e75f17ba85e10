//! Creates the demo's database when the server does not have it yet.

use anyhow::Context;
use reqwest::Url;
use sqlx::{Connection, PgConnection};

/// Postgres' "duplicate_database": another run created it between our check and our create.
const DUPLICATE_DATABASE: &str = "42P04";

/// Makes sure the database named in `url` exists, creating it through the
/// server's `postgres` database if it does not; returns its name.
pub async fn ensure_database(url: &str) -> anyhow::Result<String> {
    let parsed = Url::parse(url).context("--database-url is not a URL")?;
    let name = database_name(&parsed)?;
    let mut admin = parsed.clone();
    admin.set_path("/postgres");
    let mut conn = PgConnection::connect(admin.as_str())
        .await
        .with_context(|| {
            format!(
                "connecting to the `postgres` database on {}",
                server(&parsed)
            )
        })?;
    let exists: Option<i32> = sqlx::query_scalar("select 1 from pg_database where datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .context("looking up the demo database")?;
    if exists.is_none() {
        // `name` is checked to be [A-Za-z0-9_]+, so quoting it cannot be escaped.
        let created = sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut conn)
            .await;
        match created {
            Ok(_) => println!("created database {name}"),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e).with_context(|| format!("creating database {name}")),
        }
    }
    let _ = conn.close().await;
    Ok(name)
}

/// Returns the database name of a Postgres URL if it is made of `[A-Za-z0-9_]`.
fn database_name(url: &Url) -> anyhow::Result<String> {
    let name = url.path().trim_start_matches('/');
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        anyhow::bail!(
            "--database-url must name a database made of letters, digits and `_` (got `{name}`)"
        );
    }
    Ok(name.to_owned())
}

/// Returns `host:port` of the URL, for messages (never the password).
fn server(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port().unwrap_or(5432)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_refuses_anything_that_needs_quoting() {
        let name = |u: &str| database_name(&Url::parse(u).expect("url"));
        assert_eq!(
            name("postgres://postgres@127.0.0.1:5432/paymirror_demo").expect("valid"),
            "paymirror_demo"
        );
        for bad in [
            "postgres://h/",
            "postgres://h/a%22b",
            "postgres://h/a-b",
            "postgres://h/a/b",
        ] {
            assert!(name(bad).is_err(), "{bad}");
        }
    }
}
