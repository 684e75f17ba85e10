//! The configuration's sections, one struct each, as `config/default.toml` lays them
//! out. Every duration is a [`Duration`], read from the key that names its unit
//! (`request_timeout_ms`, `interval_secs`, …) by [`units`].

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{require, units};

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
    /// Merchants beyond the default one (`[[merchants]]`, files only); see
    /// [`Settings::merchants`].
    #[serde(default)]
    pub merchants: Vec<super::MerchantEntry>,
    /// The secrets the entries name, read from the environment at load.
    #[serde(skip)]
    pub merchant_secrets: std::collections::HashMap<String, secrecy::SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    #[serde(rename = "request_timeout_ms", deserialize_with = "units::millis")]
    pub request_timeout: Duration,
    #[serde(rename = "shutdown_grace_ms", deserialize_with = "units::millis")]
    pub shutdown_grace: Duration,
    #[serde(rename = "header_read_timeout_ms", deserialize_with = "units::millis")]
    pub header_read_timeout: Duration,
    #[serde(rename = "body_read_timeout_ms", deserialize_with = "units::millis")]
    pub body_read_timeout: Duration,
    #[serde(rename = "body_deadline_ms", deserialize_with = "units::millis")]
    pub body_deadline: Duration,
    pub max_header_bytes: usize,
    pub callback_concurrency: usize,
    #[serde(rename = "callback_queue_ms", deserialize_with = "units::millis")]
    pub callback_queue: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    /// Of `max_connections`, those held for the hot reads outside the pool (`db::Lanes`).
    pub read_lanes: u32,
    #[serde(rename = "acquire_timeout_ms", deserialize_with = "units::millis")]
    pub acquire_timeout: Duration,
    #[serde(rename = "statement_timeout_ms", deserialize_with = "units::millis")]
    pub statement_timeout: Duration,
    #[serde(rename = "ping_after_idle_ms", deserialize_with = "units::millis")]
    pub ping_after_idle: Duration,
    #[serde(rename = "migration_lock_wait_secs", deserialize_with = "units::secs")]
    pub migration_lock_wait: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlatformSettings {
    pub base_url: String,
    pub merchant_code: String,
    pub secret: SecretString,
    pub max_rps: u32,
    pub shared_budget: bool,
    #[serde(rename = "token_validity_secs", deserialize_with = "units::secs")]
    pub token_validity: Duration,
    #[serde(rename = "connect_timeout_ms", deserialize_with = "units::millis")]
    pub connect_timeout: Duration,
    #[serde(rename = "request_timeout_ms", deserialize_with = "units::millis")]
    pub request_timeout: Duration,
    pub outage_after_failures: u32,
    #[serde(rename = "probe_interval_ms", deserialize_with = "units::millis")]
    pub probe_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SyncSettings {
    pub enabled: bool,
    pub concurrency: usize,
    #[serde(rename = "backoff_base_ms", deserialize_with = "units::millis")]
    pub backoff_base: Duration,
    #[serde(rename = "backoff_cap_ms", deserialize_with = "units::millis")]
    pub backoff_cap: Duration,
    #[serde(rename = "not_found_max_age_ms", deserialize_with = "units::millis")]
    pub not_found_max_age: Duration,
    #[serde(rename = "max_retry_age_ms", deserialize_with = "units::millis")]
    pub max_retry_age: Duration,
    #[serde(rename = "config_error_pause_ms", deserialize_with = "units::millis")]
    pub config_error_pause: Duration,
    #[serde(rename = "lease_ms", deserialize_with = "units::millis")]
    pub lease: Duration,
    #[serde(rename = "poll_interval_ms", deserialize_with = "units::millis")]
    pub poll_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    #[serde(rename = "schedule_secs", deserialize_with = "units::secs_list")]
    pub schedule: Vec<Duration>,
    #[serde(rename = "interval_secs", deserialize_with = "units::secs")]
    pub interval: Duration,
    #[serde(rename = "max_age_hours", deserialize_with = "units::hours")]
    pub max_age: Duration,
    #[serde(rename = "expiry_grace_secs", deserialize_with = "units::secs")]
    pub expiry_grace: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboxSettings {
    pub writers: usize,
    pub batch_size: usize,
    #[serde(rename = "commit_timeout_ms", deserialize_with = "units::millis")]
    pub commit_timeout: Duration,
    #[serde(rename = "retention_days", deserialize_with = "units::days")]
    pub retention: Duration,
    #[serde(rename = "prune_interval_secs", deserialize_with = "units::secs")]
    pub prune_interval: Duration,
    #[serde(rename = "merge_interval_ms", deserialize_with = "units::millis")]
    pub merge_interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleSettings {
    #[serde(rename = "session_hours", deserialize_with = "units::hours")]
    pub session_length: Duration,
    pub secure_cookie: SecureCookie,
    #[serde(rename = "stats_flush_secs", deserialize_with = "units::secs")]
    pub stats_flush: Duration,
    #[serde(rename = "stats_retention_days", deserialize_with = "units::days")]
    pub stats_retention: Duration,
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

impl ServerSettings {
    /// Checks the listen address and that every limit can let a request through.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        for (ok, key, env, problem) in [
            (
                !self.header_read_timeout.is_zero(),
                "server.header_read_timeout_ms",
                "PAYMIRROR__SERVER__HEADER_READ_TIMEOUT_MS",
                "must be at least 1",
            ),
            (
                !self.body_read_timeout.is_zero(),
                "server.body_read_timeout_ms",
                "PAYMIRROR__SERVER__BODY_READ_TIMEOUT_MS",
                "must be at least 1",
            ),
            (
                !self.body_deadline.is_zero(),
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

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid configuration key server.listen (PAYMIRROR__SERVER__LISTEN): `{}` is not an address like 0.0.0.0:8080",
                self.listen
            )
        })
    }
}
