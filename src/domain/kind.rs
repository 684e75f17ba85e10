use std::fmt;
use std::str::FromStr;

/// Whether a payment is money coming in (payin) or going out (payout).
///
/// The platform's callbacks do not say which; the callback URL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentKind {
    Payin,
    Payout,
}

impl PaymentKind {
    /// The singular name stored in the database and served in documents (`payin`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Payin => "payin",
            PaymentKind::Payout => "payout",
        }
    }

    /// The plural path segment used by the platform and our routes (`payins`).
    pub fn plural(self) -> &'static str {
        match self {
            PaymentKind::Payin => "payins",
            PaymentKind::Payout => "payouts",
        }
    }
}

impl fmt::Display for PaymentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl utoipa::PartialSchema for PaymentKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_enum(&["payin", "payout"])
    }
}

impl utoipa::ToSchema for PaymentKind {}

impl serde::Serialize for PaymentKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl FromStr for PaymentKind {
    type Err = String;

    /// Accepts the singular or plural form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "payin" | "payins" => Ok(PaymentKind::Payin),
            "payout" | "payouts" => Ok(PaymentKind::Payout),
            other => Err(format!("unknown payment kind `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_round_trips() {
        for kind in [PaymentKind::Payin, PaymentKind::Payout] {
            assert_eq!(kind.as_str().parse::<PaymentKind>(), Ok(kind));
            assert_eq!(kind.plural().parse::<PaymentKind>(), Ok(kind));
        }
        assert!("refund".parse::<PaymentKind>().is_err());
    }
}
