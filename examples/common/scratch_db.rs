//! A scratch database for one benchmark run, shared by every example: created on
//! the server of `--database-url`, dropped at the end.

use std::str::FromStr;

use anyhow::Context;
use reqwest::Url;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// `--database-url`: the Postgres server every benchmark creates its database on.
#[derive(clap::Args, Debug)]
pub struct ServerArg {
    /// Postgres server; the run creates and drops a database of its own on it.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub database_url: String,
}

/// A database created for one run; [`BenchDatabase::drop_now`] removes it.
pub struct BenchDatabase {
    pub name: String,
    pub url: Url,
    server: Url,
}

impl BenchDatabase {
    /// Creates `paymirror_bench_<random>` on the server of `server_url`.
    pub async fn create(server_url: &str) -> anyhow::Result<BenchDatabase> {
        let mut server = Url::parse(server_url).context("--database-url is not a URL")?;
        server.set_path("/postgres");
        let name = format!("paymirror_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = connect_admin(&server).await?;
        // `name` is [a-z0-9_]: quoting it cannot be escaped.
        sqlx::query(&format!(r#"create database "{name}""#))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = conn.close().await;
        let mut url = server.clone();
        url.set_path(&format!("/{name}"));
        Ok(BenchDatabase { name, url, server })
    }

    /// Drops the database, disconnecting whoever still holds a connection.
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        let mut conn = connect_admin(&self.server).await?;
        let sql = format!(r#"drop database if exists "{}" with (force)"#, self.name);
        sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .with_context(|| format!("dropping database {}", self.name))?;
        let _ = conn.close().await;
        Ok(())
    }
}

/// Connects to the server's `postgres` database, without sqlx's slow-statement
/// warnings (`drop database … with (force)` takes about a second).
async fn connect_admin(server: &Url) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(server.as_str())
        .context("--database-url is not a Postgres URL")?
        .disable_statement_logging();
    PgConnection::connect_with(&options)
        .await
        .context("connecting to the `postgres` database")
}

/// Runs `measure` against a fresh database on `server_url`, drops the database
/// whatever happened, and returns the first error.
#[allow(dead_code)] // not every example that includes this module uses it
pub async fn with_scratch_database<F, Fut>(server_url: &str, measure: F) -> anyhow::Result<()>
where
    F: FnOnce(Url) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let db = BenchDatabase::create(server_url).await?;
    let measured = measure(db.url.clone()).await;
    let dropped = db.drop_now().await;
    measured?;
    dropped
}
