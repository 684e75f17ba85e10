//! One simulated payment as the simulated platform holds it, and how it moves.

use std::time::Instant;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use crate::domain::{PaymentId, PaymentKind, PaymentStatus};

/// The fee the simulator charges: 1 % of the amount.
const FEE_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The smallest fee charged: 0.01.
const MIN_FEE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// A payment as the simulated platform holds it.
#[derive(Debug, Clone)]
pub struct Payment {
    /// The code of the merchant whose payment it is.
    pub merchant: String,
    pub kind: PaymentKind,
    /// The merchant's id, as `idPayin` / `idPayout`.
    pub id: PaymentId,
    /// The platform's own id (`idPayment`), made at creation.
    pub id_payment: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub payment_method_code: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// When the simulator created it, on the monotonic clock (for `invisible_for_ms`).
    pub created_instant: Instant,
    pub processed_at: Option<DateTime<Utc>>,
    /// Payins only: when the payment fails if no money arrived by then.
    pub expire_at: Option<DateTime<Utc>>,
    /// True while the payment is FAILED because it reached `expire_at`.
    pub expired: bool,
    pub is_test: bool,
    pub callback_url: Option<String>,
}

impl Payment {
    /// Moves the payment to `status`; a final status stamps `processedAt`
    /// (once), any other status clears it.
    pub fn apply_status(&mut self, status: &str, now: DateTime<Utc>) {
        self.status = status.to_owned();
        self.expired = false;
        if PaymentStatus::parse(status).is_final() {
            self.processed_at.get_or_insert(now);
        } else {
            self.processed_at = None;
        }
    }

    /// Fails the payment because no money arrived before `expire_at`.
    pub fn expire(&mut self, now: DateTime<Utc>) {
        self.apply_status("FAILED", now);
        self.expired = true;
    }

    /// Returns true once the payment is in a status that never changes again.
    pub fn is_final(&self) -> bool {
        PaymentStatus::parse(&self.status).is_final()
    }
}

/// Returns the payment method a payment of `kind` uses unless told otherwise:
/// a UPI QR code for payins, a bank transfer for payouts.
pub fn default_method_code(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::Payin => "UPIQR",
        PaymentKind::Payout => "BANK_TRANSFER",
    }
}

/// Returns the fee for `amount`: 1 %, rounded half away from zero to 2 decimals, at
/// least 0.01 (the published `MoneyFee` is above zero).
pub fn fee_for(amount: Decimal) -> Decimal {
    amount
        .checked_mul(FEE_RATE)
        .unwrap_or_default()
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        .max(MIN_FEE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn fee_rounds_half_away_from_zero() {
        assert_eq!(
            fee_for(Decimal::from_str("0.50").unwrap()).to_string(),
            "0.01"
        );
        assert_eq!(
            fee_for(Decimal::from_str("1234.56").unwrap()).to_string(),
            "12.35"
        );
    }
}
