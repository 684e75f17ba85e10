//! The merchants the simulated platform serves: the primary one (the
//! single-merchant fields of [`SimulatorConfig`]) and any others, each with its
//! own secret, throttle, payments and, optionally, faults.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::SimulatorConfig;

/// A merchant the simulator serves besides the primary one.
#[derive(Clone, PartialEq, Eq)]
pub struct SimMerchant {
    /// The `merchantCode` of `POST /auth-tokens` and the `sub` of its tokens.
    pub code: String,
    /// The secret `POST /auth-tokens` accepts for this merchant.
    pub secret: String,
    /// This merchant's requests allowed in any sliding 1000 ms window.
    pub max_rps: u32,
}

impl fmt::Debug for SimMerchant {
    /// Shows the code and rate, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimMerchant")
            .field("code", &self.code)
            .field("secret", &"***")
            .field("max_rps", &self.max_rps)
            .finish()
    }
}

impl SimulatorConfig {
    /// Returns `Ok` if every extra merchant has a code, a secret and a `max_rps`
    /// above 0, and no code appears twice or repeats the primary merchant's;
    /// else what is wrong, naming the merchant by its code (never its secret).
    pub fn validate_merchants(&self) -> Result<(), String> {
        let mut seen = BTreeSet::from([self.merchant_code.as_str()]);
        for (index, merchant) in self.merchants.iter().enumerate() {
            let code = &merchant.code;
            if code.is_empty() {
                return Err(format!("merchant #{} has an empty code", index + 1));
            }
            if merchant.secret.is_empty() {
                return Err(format!("merchant {code} has an empty secret"));
            }
            if merchant.max_rps == 0 {
                return Err(format!("merchant {code} has max_rps 0"));
            }
            if code == &self.merchant_code {
                return Err(format!(
                    "merchant {code} repeats the primary merchant's code"
                ));
            }
            if !seen.insert(code) {
                return Err(format!("merchant {code} is listed twice"));
            }
        }
        Ok(())
    }

    /// Returns every merchant by code, the primary one included.
    pub(super) fn merchants_by_code(&self) -> BTreeMap<String, SimMerchant> {
        let primary = SimMerchant {
            code: self.merchant_code.clone(),
            secret: self.secret.clone(),
            max_rps: self.max_rps,
        };
        // The primary goes last: it wins over an extra merchant with its code,
        // which `validate_merchants` refuses anyway.
        self.merchants
            .iter()
            .chain([&primary])
            .map(|m| (m.code.clone(), m.clone()))
            .collect()
    }
}

/// Returns `segment` percent-encoded for one URL path segment: every byte but
/// ASCII letters, digits, `-`, `.`, `_` and `~` becomes `%XX`.
pub fn path_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(code: &str, secret: &str, max_rps: u32) -> SimMerchant {
        SimMerchant {
            code: code.into(),
            secret: secret.into(),
            max_rps,
        }
    }

    fn with(merchants: Vec<SimMerchant>) -> SimulatorConfig {
        SimulatorConfig {
            merchants,
            ..SimulatorConfig::default()
        }
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let config = SimulatorConfig {
            secret: "primary-secret".into(),
            merchants: vec![merchant("M2", "second-secret", 5)],
            ..SimulatorConfig::default()
        };
        let shown = format!("{config:?} {:#?}", config.merchants[0]);
        assert!(shown.contains("M2") && shown.contains("***"), "{shown}");
        assert!(
            !shown.contains("primary-secret") && !shown.contains("second-secret"),
            "{shown}"
        );
    }

    #[test]
    fn merchants_are_validated_by_code() {
        assert!(with(vec![]).validate_merchants().is_ok());
        assert!(with(vec![merchant("M2", "s", 1), merchant("M3", "s", 10)])
            .validate_merchants()
            .is_ok());
        let cases = [
            (vec![merchant("", "s", 1)], "merchant #1 has an empty code"),
            (
                vec![merchant("M2", "", 1)],
                "merchant M2 has an empty secret",
            ),
            (vec![merchant("M2", "s", 0)], "merchant M2 has max_rps 0"),
            (
                vec![merchant("M1", "s", 1)],
                "merchant M1 repeats the primary merchant's code",
            ),
            (
                vec![merchant("M2", "s", 1), merchant("M2", "t", 2)],
                "merchant M2 is listed twice",
            ),
        ];
        for (merchants, expected) in cases {
            assert_eq!(with(merchants).validate_merchants().unwrap_err(), expected);
        }
    }

    #[test]
    fn every_merchant_is_found_by_code() {
        let config = with(vec![merchant("M2", "s2", 3)]);
        let all = config.merchants_by_code();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["M1", "M2"]);
        assert_eq!(
            (all["M1"].secret.as_str(), all["M1"].max_rps),
            ("sim-secret", 10)
        );
        assert_eq!(all["M2"], merchant("M2", "s2", 3));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("M-2_x.y~"), "M-2_x.y~");
        assert_eq!(path_segment("a/b c?é"), "a%2Fb%20c%3F%C3%A9");
    }
}
