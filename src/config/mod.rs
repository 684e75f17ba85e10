//! Layered, typed configuration: the defaults compiled in from `config/default.toml`,
//! then `config/default.toml` and `config/$PAYMIRROR_ENV.toml` if present, then
//! `PAYMIRROR__SECTION__KEY` environment variables; `DATABASE_URL` wins for the database.

use std::collections::HashMap;

use anyhow::Context;
use config::FileFormat;
use secrecy::ExposeSecret;

mod database;
mod merchants;
mod sections;
mod units;

pub use merchants::{is_valid_code, MerchantEntry, MerchantSettings};
pub use sections::{
    ConsoleSettings, DatabaseSettings, InboxSettings, LogSettings, PlatformSettings,
    ReconcileSettings, SecureCookie, ServerSettings, Settings, SyncSettings,
};

/// `config/default.toml`, compiled in: every key has a default wherever the binary runs.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

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
        let mut settings: Settings = builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.merchant_secrets = merchants::read_secrets(&settings.merchants, var);
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
            !self.console.session_length.is_zero() && self.console.page_size >= 1,
            "console.session_hours / console.page_size",
            "PAYMIRROR__CONSOLE__SESSION_HOURS / PAYMIRROR__CONSOLE__PAGE_SIZE",
            "must be at least 1",
        )?;
        // Postgres reads a lock_timeout of 0 as "wait forever".
        require(
            !self.database.migration_lock_wait.is_zero(),
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
            (60..=3600).contains(&p.token_validity.as_secs()),
            "platform.token_validity_secs",
            "PAYMIRROR__PLATFORM__TOKEN_VALIDITY_SECS",
            "must be 60-3600",
        )?;
        require(
            self.database.read_lanes < self.database.max_connections,
            "database.read_lanes",
            "PAYMIRROR__DATABASE__READ_LANES",
            "must be less than database.max_connections",
        )?;
        require(
            self.sync.concurrency >= 1,
            "sync.concurrency",
            "PAYMIRROR__SYNC__CONCURRENCY",
            "must be at least 1",
        )?;
        require(
            self.sync.lease >= std::time::Duration::from_millis(300),
            "sync.lease_ms",
            "PAYMIRROR__SYNC__LEASE_MS",
            "must be at least 300",
        )?;
        self.merchants()?;
        Ok(())
    }
}

pub(super) fn require(ok: bool, key: &str, env: &str, problem: &str) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        anyhow::bail!("invalid configuration key {key} ({env}): {problem}")
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
    fn durations_are_read_in_the_unit_their_key_names() {
        let settings = load(&[
            ("PAYMIRROR__SYNC__LEASE_MS", "2500"),
            ("PAYMIRROR__RECONCILE__MAX_AGE_HOURS", "2"),
        ])
        .expect("loads");
        assert_eq!(settings.sync.lease, std::time::Duration::from_millis(2500));
        assert_eq!(
            settings.reconcile.max_age,
            std::time::Duration::from_secs(7200)
        );
        assert_eq!(
            settings.reconcile.schedule,
            [60, 300, 900].map(std::time::Duration::from_secs)
        );
        let error = load(&[("PAYMIRROR__SYNC__LEASE_MS", "soon")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("lease_ms"), "{error}");
    }

    /// Loads with `toml` as `config/default.toml` and `env` as the environment.
    fn load_file(toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let dir = std::env::temp_dir().join(format!(
            "paymirror-config-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::write(dir.join("default.toml"), toml).expect("written");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let loaded = Settings::load_with(&dir, Some(env));
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    const TWO_MERCHANTS: &str = r#"
[[merchants]]
code = "M2"
secret_env = "M2_SECRET"
max_rps = 5

[[merchants]]
code = "M3"
secret_env = "M3_SECRET"
base_url = "http://127.0.0.1:9999"
"#;

    const DEFAULT_MERCHANT: [(&str, &str); 3] = [
        ("PAYMIRROR__PLATFORM__MERCHANT_CODE", "M1"),
        ("PAYMIRROR__PLATFORM__SECRET", "s1"),
        ("PAYMIRROR__PLATFORM__BASE_URL", "http://127.0.0.1:8090"),
    ];

    #[test]
    fn merchants_entries_add_to_the_default_merchant() {
        let mut env = DEFAULT_MERCHANT.to_vec();
        env.extend([("M2_SECRET", "s2"), ("M3_SECRET", "s3")]);
        let settings = load_file(TWO_MERCHANTS, &env).expect("loads");
        settings.validate_for_serve().expect("valid");
        let merchants = settings.merchants().expect("merchants");
        let seen: Vec<(&str, &str, u32, &str)> = merchants
            .iter()
            .map(|m| {
                (
                    m.code.as_str(),
                    m.secret.expose_secret(),
                    m.max_rps,
                    m.base_url.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("M1", "s1", 10, "http://127.0.0.1:8090"),
                ("M2", "s2", 5, "http://127.0.0.1:8090"),
                ("M3", "s3", 10, "http://127.0.0.1:9999"),
            ]
        );
        let shown = format!("{settings:?} {merchants:?}");
        for secret in ["s1", "s2", "s3"] {
            assert!(
                !shown.contains(&format!("\"{secret}\"")),
                "{secret} in {shown}"
            );
        }
    }

    #[test]
    fn the_single_merchant_keys_alone_are_one_merchant() {
        let settings = load(&DEFAULT_MERCHANT).expect("loads");
        let codes: Vec<String> = settings
            .merchants()
            .expect("merchants")
            .into_iter()
            .map(|m| m.code)
            .collect();
        assert_eq!(codes, ["M1"]);
    }

    #[test]
    fn an_invalid_or_repeated_entry_stops_start_up_naming_it() {
        let cases = [
            (
                "[[merchants]]\ncode = \"M1\"\nsecret_env = \"M2_SECRET\"\n",
                "merchants[0] (code \"M1\"): this merchant code is configured twice",
            ),
            (
                "[[merchants]]\ncode = \"M2\"\nsecret_env = \"M2_SECRET\"\n[[merchants]]\ncode = \"M2\"\nsecret_env = \"M2_SECRET\"\n",
                "merchants[1] (code \"M2\"): this merchant code is configured twice",
            ),
            (
                "[[merchants]]\ncode = \"M 2\"\nsecret_env = \"M2_SECRET\"\n",
                "merchants[0] (code \"M 2\"): code must be",
            ),
            (
                "[[merchants]]\ncode = \"M2\"\nsecret_env = \"UNSET_SECRET\"\n",
                "merchants[0] (code \"M2\"): the environment variable UNSET_SECRET (secret_env) is not set",
            ),
            (
                "[[merchants]]\ncode = \"M2\"\nsecret_env = \"M2_SECRET\"\nmax_rps = 0\n",
                "merchants[0] (code \"M2\"): max_rps must be at least 1",
            ),
            (
                "[[merchants]]\ncode = \"M2\"\nsecret_env = \"M2_SECRET\"\nbase_url = \"nowhere\"\n",
                "merchants[0] (code \"M2\"): base_url is not a valid URL",
            ),
        ];
        let mut env = DEFAULT_MERCHANT.to_vec();
        env.push(("M2_SECRET", "s2"));
        for (toml, expected) in cases {
            let error = load_file(toml, &env)
                .and_then(|s| s.validate_for_serve())
                .expect_err(toml)
                .to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("s2"), "{error}");
        }
        let error = load_file(
            "[[merchants]]\ncode = \"M2\"\nsecret = \"inline\"\nsecret_env = \"M2_SECRET\"\n",
            &env,
        )
        .expect_err("an unknown key")
        .to_string();
        assert!(error.contains("secret"), "{error}");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = load(&[("PAYMIRROR__PLATFORM__MAX_RPS", "ten")])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("max_rps"), "{error}");
    }
}
