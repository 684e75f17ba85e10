//! [`PaymentId`]: the platform's id pattern, checked once, where ids enter.

use std::fmt;

/// A payment id as the platform defines it: the merchant's own order id,
/// `^[A-Za-z0-9_-]+$`, 1–250 characters.
///
/// The only way to get one is [`PaymentId::parse`], so every id that reaches a
/// platform URL or the database has been checked; the character set also makes
/// it safe to put in a URL path without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(String);

/// Why a string is not a payment id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentIdError {
    #[error("the id is empty")]
    Empty,
    #[error("the id is longer than {max} characters", max = PaymentId::MAX_LEN)]
    TooLong,
    #[error("the id may contain only letters, digits, `_` and `-`")]
    InvalidCharacter,
}

impl PaymentId {
    pub const MAX_LEN: usize = 250;

    /// Returns the id if `raw` matches `^[A-Za-z0-9_-]{1,250}$`.
    pub fn parse(raw: &str) -> Result<Self, PaymentIdError> {
        if raw.is_empty() {
            return Err(PaymentIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(PaymentIdError::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PaymentIdError::InvalidCharacter);
        }
        Ok(PaymentId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PaymentId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PaymentId {
    type Err = PaymentIdError;

    /// [`PaymentId::parse`], for reading ids back from the database (`text_column!`).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        PaymentId::parse(raw)
    }
}

/// Served as the plain string it is.
impl serde::Serialize for PaymentId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// An id already stored was parsed on its way in; one that no longer parses (written
// by hand, or by a release with another pattern) fails its read with a decode error
// (see `text_column!`) rather than being served past the pattern or skipped.
crate::domain::text_column!(PaymentId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_platform_alphabet() {
        for ok in ["a", "TST-1", "order_2024-06-01", &"x".repeat(250)] {
            assert_eq!(
                PaymentId::parse(ok).map(|id| id.to_string()),
                Ok(ok.to_owned())
            );
        }
    }

    #[test]
    fn rejects_empty_and_too_long() {
        assert_eq!(PaymentId::parse(""), Err(PaymentIdError::Empty));
        assert_eq!(
            PaymentId::parse(&"x".repeat(251)),
            Err(PaymentIdError::TooLong)
        );
    }

    #[test]
    fn rejects_anything_that_could_change_a_url() {
        for bad in ["a/b", "../x", "a b", "a?b", "a%2F", "é", "a.b", "a\nb", "ä"] {
            assert_eq!(
                PaymentId::parse(bad),
                Err(PaymentIdError::InvalidCharacter),
                "{bad:?}"
            );
        }
    }

    mod properties {
        use proptest::prelude::*;
        use regex::Regex;

        use super::*;

        fn id_pattern() -> Regex {
            Regex::new("^[A-Za-z0-9_-]{1,250}$").expect("valid regex")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn only_the_pattern_is_accepted(raw in prop_oneof![
                any::<String>(),
                "[A-Za-z0-9_-]{0,260}",
                "[A-Za-z0-9_./%-]{1,8}",
                "[A-Za-z0-9_-]{0,4}[^A-Za-z0-9_-][A-Za-z0-9_-]{0,4}",
            ]) {
                match PaymentId::parse(&raw) {
                    Ok(id) => {
                        prop_assert!(id_pattern().is_match(id.as_str()), "{:?}", raw);
                        prop_assert_eq!(id.as_str(), raw.as_str());
                    }
                    Err(_) => prop_assert!(!id_pattern().is_match(&raw), "{:?}", raw),
                }
            }

            #[test]
            fn every_id_of_the_pattern_is_accepted(raw in "[A-Za-z0-9_-]{1,250}") {
                prop_assert_eq!(PaymentId::parse(&raw).map(|id| id.to_string()), Ok(raw));
            }
        }
    }
}
