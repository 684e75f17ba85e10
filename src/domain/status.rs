//! [`PaymentStatus`]: the platform's status of a payment, the ones it will add included.

use std::fmt;

/// A payment's processing status as the platform reports it.
///
/// The platform adds statuses over time; an unknown one is kept verbatim in
/// [`PaymentStatus::Other`] and treated as not final, so it is re-checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Processing,
    Success,
    Failed,
    Refused,
    Other(String),
}

impl PaymentStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "PROCESSING" => PaymentStatus::Processing,
            "SUCCESS" => PaymentStatus::Success,
            "FAILED" => PaymentStatus::Failed,
            "REFUSED" => PaymentStatus::Refused,
            other => PaymentStatus::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            PaymentStatus::Processing => "PROCESSING",
            PaymentStatus::Success => "SUCCESS",
            PaymentStatus::Failed => "FAILED",
            PaymentStatus::Refused => "REFUSED",
            PaymentStatus::Other(s) => s,
        }
    }

    /// Final statuses never change again; only these stop reconciliation.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Success | PaymentStatus::Failed | PaymentStatus::Refused
        )
    }
}

impl std::str::FromStr for PaymentStatus {
    type Err = std::convert::Infallible;

    /// Every text is a status: unknown ones are kept as [`PaymentStatus::Other`].
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(PaymentStatus::parse(raw))
    }
}

/// Served as the platform's own text (`"SUCCESS"`, or a newer status verbatim).
impl serde::Serialize for PaymentStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_statuses_round_trip_and_only_three_are_final() {
        for (raw, is_final) in [
            ("PROCESSING", false),
            ("SUCCESS", true),
            ("FAILED", true),
            ("REFUSED", true),
        ] {
            let status = PaymentStatus::parse(raw);
            assert_eq!(status.as_str(), raw);
            assert_eq!(status.is_final(), is_final);
        }
    }

    #[test]
    fn unknown_status_is_kept_and_not_final() {
        let status = PaymentStatus::parse("ON_HOLD");
        assert_eq!(status, PaymentStatus::Other("ON_HOLD".into()));
        assert_eq!(status.as_str(), "ON_HOLD");
        assert!(!status.is_final());
    }
}
