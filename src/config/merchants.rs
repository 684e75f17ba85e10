//! Several merchant codes in one deployment (SPEC §4): the default merchant from the
//! `platform` keys, and each `[[merchants]]` entry of the configuration files.

use std::collections::{HashMap, HashSet};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Settings;

/// A `[[merchants]]` entry as written in a configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantEntry {
    pub code: String,
    /// The name of the environment variable that holds the merchant's secret.
    pub secret_env: String,
    #[serde(default = "default_max_rps")]
    pub max_rps: u32,
    /// The platform's address for this merchant (default: `platform.base_url`).
    #[serde(default)]
    pub base_url: Option<String>,
}

fn default_max_rps() -> u32 {
    10
}

/// A merchant code this deployment serves, with what it needs to call the platform.
/// `Debug` shows the secret as `[REDACTED]` (secrecy's own).
#[derive(Debug, Clone)]
pub struct MerchantSettings {
    pub code: String,
    pub secret: SecretString,
    pub max_rps: u32,
    pub base_url: String,
}

/// Whether a merchant code can be served: it names a URL path segment
/// (`/callbacks/{merchant}/payins`), a query value and a metrics label.
pub fn is_valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the secret each entry names from `var` (the environment), by variable name.
pub(super) fn read_secrets(
    entries: &[MerchantEntry],
    var: impl Fn(&str) -> Option<String>,
) -> HashMap<String, SecretString> {
    entries
        .iter()
        .filter_map(|e| {
            let value = var(&e.secret_env)?;
            Some((e.secret_env.clone(), SecretString::from(value)))
        })
        .collect()
}

impl Settings {
    /// Every merchant this deployment serves, the default (the `platform` keys) first.
    /// Returns an error naming the entry when one is invalid or repeats a code.
    pub fn merchants(&self) -> anyhow::Result<Vec<MerchantSettings>> {
        let p = &self.platform;
        let mut merchants = vec![MerchantSettings {
            code: p.merchant_code.clone(),
            secret: p.secret.clone(),
            max_rps: p.max_rps,
            base_url: p.base_url.clone(),
        }];
        let mut seen: HashSet<&str> = HashSet::from([p.merchant_code.as_str()]);
        for (i, entry) in self.merchants.iter().enumerate() {
            let name = format!("merchants[{i}] (code {:?})", entry.code);
            let invalid =
                |problem: &str| anyhow::anyhow!("invalid configuration entry {name}: {problem}");
            if !is_valid_code(&entry.code) {
                return Err(invalid(
                    "code must be 1-64 ASCII letters, digits, '-' or '_'",
                ));
            }
            if !seen.insert(entry.code.as_str()) {
                return Err(invalid(
                    "this merchant code is configured twice (the default merchant is platform.merchant_code)",
                ));
            }
            if entry.secret_env.trim().is_empty() {
                return Err(invalid("secret_env is empty"));
            }
            let secret = self
                .merchant_secrets
                .get(&entry.secret_env)
                .filter(|s| !s.expose_secret().is_empty())
                .ok_or_else(|| {
                    invalid(&format!(
                        "the environment variable {} (secret_env) is not set",
                        entry.secret_env
                    ))
                })?;
            if entry.max_rps == 0 {
                return Err(invalid("max_rps must be at least 1"));
            }
            let base_url = entry.base_url.clone().unwrap_or_else(|| p.base_url.clone());
            if reqwest::Url::parse(&base_url).is_err() {
                return Err(invalid("base_url is not a valid URL"));
            }
            merchants.push(MerchantSettings {
                code: entry.code.clone(),
                secret: secret.clone(),
                max_rps: entry.max_rps,
                base_url,
            });
        }
        Ok(merchants)
    }
}
