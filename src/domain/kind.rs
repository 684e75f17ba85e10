//! [`PaymentKind`]: payin or payout, and its names in paths and rows.

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
    pub const ALL: [PaymentKind; 2] = [PaymentKind::Payin, PaymentKind::Payout];

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

    /// Returns the kind a plural path segment names (`payins`, `payouts`: the inverse
    /// of [`plural`](Self::plural)), or `None` for any other segment. The one parser
    /// of the plural form: each edge decides what a segment it does not know answers.
    pub fn from_plural(segment: &str) -> Option<PaymentKind> {
        Self::ALL.into_iter().find(|kind| kind.plural() == segment)
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

    /// Accepts the singular name (as stored) or the plural form ([`PaymentKind::from_plural`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .or_else(|| Self::from_plural(s))
            .ok_or_else(|| format!("unknown payment kind `{s}`"))
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

    #[test]
    fn the_plural_segment_names_a_kind_and_nothing_else_does() {
        for kind in PaymentKind::ALL {
            assert_eq!(PaymentKind::from_plural(kind.plural()), Some(kind));
            assert_eq!(PaymentKind::from_plural(kind.as_str()), None);
        }
        for other in ["", "Payins", "payins/", "refunds"] {
            assert_eq!(PaymentKind::from_plural(other), None, "{other:?}");
        }
    }
}
