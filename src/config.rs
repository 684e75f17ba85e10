//! Layered, typed configuration: the defaults compiled in from `config/default.toml`,
//! then `config/default.toml` and `config/$PAYMIRROR_ENV.toml` if present, then
//! `PAYMIRROR__SECTION__KEY` environment variables; `DATABASE_URL` wins for the database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use config::FileFormat;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// `config/default.toml`, compiled in: every key has a default wherever the binary runs.
pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub platform: PlatformSettings,
    pub sync: SyncSettings,
    pub reconcile: ReconcileSettings,
    pub inbox: InboxSettings,
    pub log: LogSettings,
    pub console: ConsoleSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub request_timeout_ms: u64,
    pub shutdown_grace_ms: u64,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    pub body_deadline_ms: u64,
    pub max_header_bytes: usize,
    pub callback_concurrency: usize,
    pub callback_queue_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub ping_after_idle_ms: u64,
    pub migration_lock_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlatformSettings {
    pub base_url: String,
    pub merchant_code: String,
    pub secret: SecretString,
    pub max_rps: u32,
    pub shared_budget: bool,
    pub token_validity_secs: u32,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub outage_after_failures: u32,
    pub probe_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    pub enabled: bool,
    pub concurrency: usize,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub not_found_max_age_ms: u64,
    pub max_retry_age_ms: u64,
    pub config_error_pause_ms: u64,
    pub lease_ms: u64,
    pub poll_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    pub schedule_secs: Vec<u64>,
    pub interval_secs: u64,
    pub max_age_hours: u64,
    pub expiry_grace_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboxSettings {
    pub writers: usize,
    pub batch_size: usize,
    pub commit_timeout_ms: u64,
    pub retention_days: u64,
    pub prune_interval_secs: u64,
    pub merge_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleSettings {
    pub session_hours: u64,
    pub secure_cookie: SecureCookie,
    pub stats_flush_secs: u64,
    pub stats_retention_days: u64,
    pub page_size: u32,
}

/// When the console's session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    /// When the request came over TLS (`X-Forwarded-Proto: https`).
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

impl Settings {
    /// Loads the layered configuration: the defaults compiled into the binary, then
    /// `config_dir/default.toml` and `config_dir/$PAYMIRROR_ENV.toml` where they
    /// exist, then the environment.
    ///
    /// Returns an error naming the offending key when a value is missing or invalid.
    pub fn load_from(config_dir: &std::path::Path) -> anyhow::Result<Settings> {
        Self::load_with(config_dir, None)
    }

    /// Like [`load_from`](Self::load_from), with `env` standing in for the process
    /// environment when given (for tests).
    ///
    /// Environment values are kept as the text they are: a secret `0123456` or a
    /// merchant code `0042` reaches the platform unchanged (numbers and booleans are
    /// parsed only where a key is numeric or boolean). Lists are set in files only.
    pub fn load_with(
        config_dir: &std::path::Path,
        env: Option<HashMap<String, String>>,
    ) -> anyhow::Result<Settings> {
        let var = |name: &str| match &env {
            Some(env) => env.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULT_CONFIG, FileFormat::Toml))
            .add_source(config::File::from(config_dir.join("default.toml")).required(false));
        if let Some(profile) = var("PAYMIRROR_ENV") {
            builder = builder.add_source(
                config::File::from(config_dir.join(format!("{profile}.toml"))).required(false),
            );
        }
        builder = builder.add_source(
            config::Environment::with_prefix("PAYMIRROR")
                .prefix_separator("__")
                .separator("__")
                .source(env.clone()),
        );
        if let Some(url) = var("DATABASE_URL") {
            builder = builder.set_override("database.url", url)?;
        }
        let settings: Settings = builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate_common()?;
        Ok(settings)
    }

    /// Loads from `./config` (or `$PAYMIRROR_CONFIG_DIR`); from any other directory
    /// the compiled-in defaults and the environment are enough.
    pub fn load() -> anyhow::Result<Settings> {
        let dir = std::env::var("PAYMIRROR_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        Self::load_from(std::path::Path::new(&dir))
    }

    fn validate_common(&self) -> anyhow::Result<()> {
        self.server.validate()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            anyhow::bail!("invalid configuration key log.format (PAYMIRROR__LOG__FORMAT): expected \"text\" or \"json\"");
        }
        require(
            self.console.session_hours >= 1 && self.console.page_size >= 1,
            "console.session_hours / console.page_size",
            "PAYMIRROR__CONSOLE__SESSION_HOURS / PAYMIRROR__CONSOLE__PAGE_SIZE",
            "must be at least 1",
        )?;
        // Postgres reads a lock_timeout of 0 as "wait forever".
        require(
            self.database.migration_lock_wait_secs >= 1,
            "database.migration_lock_wait_secs",
            "PAYMIRROR__DATABASE__MIGRATION_LOCK_WAIT_SECS",
            "must be at least 1",
        )?;
        if self.inbox.writers == 0 || self.inbox.batch_size == 0 {
            anyhow::bail!(
                "invalid configuration key inbox.writers / inbox.batch_size: must be at least 1"
            );
        }
        Ok(())
    }

    /// Returns these settings pointed at a local database and simulator, listening on
    /// an ephemeral port of 127.0.0.1: what the demo, the benchmark and the tests run.
    pub fn pointed_at(
        mut self,
        database_url: &str,
        platform_url: &str,
        merchant_code: &str,
        secret: &str,
    ) -> Settings {
        self.server.listen = "127.0.0.1:0".into();
        self.database.url = database_url.to_owned().into();
        self.platform.base_url = platform_url.into();
        self.platform.merchant_code = merchant_code.into();
        self.platform.secret = secret.to_owned().into();
        self
    }

    /// Checks what `serve` needs beyond the common keys: platform credentials and limits.
    pub fn validate_for_serve(&self) -> anyhow::Result<()> {
        let p = &self.platform;
        require(
            !p.merchant_code.trim().is_empty(),
            "platform.merchant_code",
            "PAYMIRROR__PLATFORM__MERCHANT_CODE",
            "is not set",
        )?;
        require(
            !p.secret.expose_secret().is_empty(),
            "platform.secret",
            "PAYMIRROR__PLATFORM__SECRET",
            "is not set",
        )?;
        require(
            reqwest::Url::parse(&p.base_url).is_ok(),
            "platform.base_url",
            "PAYMIRROR__PLATFORM__BASE_URL",
            "is not a valid URL",
        )?;
        require(
            p.max_rps >= 1,
            "platform.max_rps",
            "PAYMIRROR__PLATFORM__MAX_RPS",
            "must be at least 1",
        )?;
        require(
            (60..=3600).contains(&p.token_validity_secs),
            "platform.token_validity_secs",
            "PAYMIRROR__PLATFORM__TOKEN_VALIDITY_SECS",
            "must be 60-3600",
        )?;
        require(
            self.sync.concurrency >= 1,
            "sync.concurrency",
            "PAYMIRROR__SYNC__CONCURRENCY",
            "must be at least 1",
        )?;
        require(
            self.sync.lease_ms >= 300,
            "sync.lease_ms",
            "PAYMIRROR__SYNC__LEASE_MS",
            "must be at least 300",
        )?;
        Ok(())
    }
}

fn require(ok: bool, key: &str, env: &str, problem: &str) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        anyhow::bail!("invalid configuration key {key} ({env}): {problem}")
    }
}

impl ServerSettings {
    /// Checks the listen address and that every limit can let a request through.
    fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        for (ok, key, env, problem) in [
            (
                self.header_read_timeout_ms >= 1,
                "server.header_read_timeout_ms",
                "PAYMIRROR__SERVER__HEADER_READ_TIMEOUT_MS",
                "must be at least 1",
            ),
            (
                self.body_read_timeout_ms >= 1,
                "server.body_read_timeout_ms",
                "PAYMIRROR__SERVER__BODY_READ_TIMEOUT_MS",
                "must be at least 1",
            ),
            (
                self.body_deadline_ms >= 1,
                "server.body_deadline_ms",
                "PAYMIRROR__SERVER__BODY_DEADLINE_MS",
                "must be at least 1",
            ),
            (
                self.max_header_bytes >= 1024,
                "server.max_header_bytes",
                "PAYMIRROR__SERVER__MAX_HEADER_BYTES",
                "must be at least 1024",
            ),
            (
                self.callback_concurrency >= 1,
                "server.callback_concurrency",
                "PAYMIRROR__SERVER__CALLBACK_CONCURRENCY",
                "must be at least 1",
            ),
        ] {
            require(ok, key, env, problem)?;
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn body_deadline(&self) -> Duration {
        Duration::from_millis(self.body_deadline_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid configuration key server.listen (PAYMIRROR__SERVER__LISTEN): `{}` is not an address like 0.0.0.0:8080",
                self.listen
            )
        })
    }
}

impl DatabaseSettings {
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        self.url.expose_secret().parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid configuration key database.url (DATABASE_URL): not a Postgres URL"
            )
        })
    }

    /// Returns a lazily connecting pool: start-up does not fail if Postgres is briefly away.
    ///
    /// Every session gets a `statement_timeout`, an idle-in-transaction timeout and
    /// server-side TCP keepalives, so neither side waits forever on the other across a
    /// failover. Prepared statements always run their generic plan: every hot statement
    /// is written to be index-driven whatever its parameters (the `explain` tests check
    /// those plans at a million rows), and Postgres would otherwise plan the list page
    /// anew on every request (about a sixth of its time serving it). (sqlx 0.8 offers no client-side TCP keepalive: the callback writers
    /// and the sync heartbeat put deadlines on their own database calls instead.)
    pub fn pool(&self) -> anyhow::Result<PgPool> {
        let statement_timeout = format!("{}ms", self.statement_timeout_ms);
        let idle_timeout = format!("{}ms", self.statement_timeout_ms.saturating_mul(3));
        let options = self.connect_options()?.options([
            ("statement_timeout", statement_timeout.as_str()),
            ("idle_in_transaction_session_timeout", idle_timeout.as_str()),
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            ("plan_cache_mode", "force_generic_plan"),
        ]);
        let ping_after_idle = Duration::from_millis(self.ping_after_idle_ms);
        Ok(PgPoolOptions::new()
            // sqlx pings every connection it hands out: a round trip before each
            // request's one statement. Only a connection that sat idle, or was given
            // back before a connection failure, is pinged (`db::needs_ping`).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    crate::db::ping_if_due(conn, meta.idle_for, ping_after_idle).await?;
                    Ok(true)
                })
            })
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_millis(self.acquire_timeout_ms))
            .connect_lazy_with(options))
    }
}

impl ReconcileSettings {
    /// How long after paymirror first saw a payment it stops chasing it.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_hours.saturating_mul(3600))
    }
}

impl SyncSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with(std::path::Path::new("/nonexistent"), Some(env))
    }

    #[test]
    fn environment_values_are_never_retyped() {
        let settings = load(&[
            ("PAYMIRROR__PLATFORM__SECRET", "0123456"),
            ("PAYMIRROR__PLATFORM__MERCHANT_CODE", "0042"),
            ("PAYMIRROR__PLATFORM__MAX_RPS", "5"),
            ("PAYMIRROR__SYNC__ENABLED", "false"),
        ])
        .expect("loads");
        assert_eq!(settings.platform.secret.expose_secret(), "0123456");
        assert_eq!(settings.platform.merchant_code, "0042");
        assert_eq!(settings.platform.max_rps, 5);
        assert!(!settings.sync.enabled);
    }

    #[test]
    fn the_compiled_in_defaults_suffice_without_a_config_directory() {
        let settings = load(&[]).expect("loads");
        assert_eq!(settings.server.listen, "0.0.0.0:8080");
        assert_eq!(settings.database.max_connections, 16);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = load(&[("PAYMIRROR__PLATFORM__MAX_RPS", "ten")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("max_rps"), "{error}");
    }
}
