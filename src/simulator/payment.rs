//! One simulated payment and the document `GET /payins/{id}` answers with.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use uuid::Uuid;

use super::method::method_response;
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};

/// The fee the simulator charges: 1 % of the amount.
const FEE_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The smallest fee charged: 0.01.
const MIN_FEE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// A payment as the simulated platform holds it.
#[derive(Debug, Clone)]
pub struct Payment {
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

    /// Returns the platform's JSON document for this payment, amounts as exact
    /// JSON numbers (serde_json's `arbitrary_precision` keeps their text).
    pub fn document(&self) -> Value {
        let id_field = id_field(self.kind);
        let mut process = json!({
            "status": self.status,
            "createdAt": rfc3339(self.created_at),
            "isTest": self.is_test,
            "processorStatus": processor_status(&self.status),
        });
        if let Some(at) = self.processed_at {
            process["processedAt"] = json!(rfc3339(at));
        }
        if let Some(reasons) = self.failure_reasons() {
            process["failureReasons"] = reasons;
        }
        json!({
            "paymentRequested": {
                "money": money(self.amount, &self.currency),
                id_field: self.id.as_str(),
            },
            "process": process,
            "fee": money(fee_for(self.amount), &self.currency),
            "paymentMethodResponse": method_response(self),
        })
    }

    /// Returns `failureReasons` for FAILED and REFUSED payments, else `None`, with
    /// codes from the published `FailureReasonCode` list.
    fn failure_reasons(&self) -> Option<Value> {
        let (code, message) = match self.status.as_str() {
            "FAILED" if self.expired => (
                "ENTITY_EXPIRED",
                "No money arrived before the payment expired",
            ),
            "FAILED" => (
                "PAYMENT_PROCESS_ERROR",
                "The payment could not be processed",
            ),
            "REFUSED" => (
                "PAYMENT_CHANNEL_AMOUNT_LIMITS",
                "No payment channel accepts this amount",
            ),
            _ => return None,
        };
        let failed_at = self.processed_at.unwrap_or(self.created_at);
        Some(json!({
            "failedAt": rfc3339(failed_at),
            "failureReasonCode": code,
            "message": message,
        }))
    }
}

/// Returns the document field that names a payment of `kind`: `idPayin` or `idPayout`.
pub fn id_field(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::Payin => "idPayin",
        PaymentKind::Payout => "idPayout",
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

/// Returns `{"amount": <exact number>, "currencyCode"}`.
pub fn money(amount: Decimal, currency: &str) -> Value {
    json!({"amount": decimal_number(amount), "currencyCode": currency})
}

/// Returns `amount` as a JSON number carrying its exact decimal text.
pub fn decimal_number(amount: Decimal) -> Value {
    amount
        .to_string()
        .parse::<serde_json::Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(amount.to_string()))
}

/// Returns `processorStatus`: `ACCEPTED` while the processor works on the payment,
/// `PROCESSED` once it is final (the published `ProcessorStatus` values).
fn processor_status(status: &str) -> &'static str {
    if PaymentStatus::parse(status).is_final() {
        "PROCESSED"
    } else {
        "ACCEPTED"
    }
}

/// Returns `at` as RFC 3339 with millisecond precision and a `Z` suffix.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn payment(amount: &str) -> Payment {
        Payment {
            kind: PaymentKind::Payout,
            id: PaymentId::parse("TST-1").unwrap(),
            id_payment: Uuid::new_v4(),
            amount: Decimal::from_str(amount).unwrap(),
            currency: "INR".into(),
            payment_method_code: "BANK_TRANSFER".into(),
            status: "PROCESSING".into(),
            created_at: Utc::now(),
            created_instant: Instant::now(),
            processed_at: None,
            expire_at: None,
            expired: false,
            is_test: true,
            callback_url: None,
        }
    }

    #[test]
    fn document_carries_exact_amounts_and_the_kind_specific_id() {
        let text = serde_json::to_string(&payment("42.05").document()).unwrap();
        assert!(text.contains(r#""amount":42.05,"#), "{text}");
        assert!(text.contains(r#""amount":0.42,"#), "{text}");
        assert!(text.contains(r#""idPayout":"TST-1""#), "{text}");
        assert!(!text.contains("processedAt") && !text.contains("failureReasons"));
    }

    #[test]
    fn method_response_names_the_payment_and_the_platform_id() {
        let mut p = payment("1");
        let doc = p.document();
        let method = &doc["paymentMethodResponse"];
        assert_eq!(method["idPayout"], "TST-1");
        assert_eq!(method["idPayment"], p.id_payment.to_string());
        assert!(method.get("expireAt").is_none() && method.get("idPayin").is_none());
        p.kind = PaymentKind::Payin;
        p.expire_at = Some("2030-01-02T03:04:05.678Z".parse().unwrap());
        let doc = p.document();
        let method = &doc["paymentMethodResponse"];
        assert_eq!(method["idPayin"], "TST-1");
        assert_eq!(method["expireAt"], "2030-01-02T03:04:05.678Z");
        assert_eq!(doc["paymentRequested"]["idPayin"], "TST-1");
    }

    #[test]
    fn an_expired_payment_fails_with_its_own_reason_until_it_moves_again() {
        let mut p = payment("1");
        p.expire(Utc::now());
        let reasons = &p.document()["process"]["failureReasons"];
        assert_eq!(reasons["failureReasonCode"], "ENTITY_EXPIRED");
        p.apply_status("FAILED", Utc::now());
        let reasons = &p.document()["process"]["failureReasons"];
        assert_eq!(reasons["failureReasonCode"], "PAYMENT_PROCESS_ERROR");
    }

    #[test]
    fn final_statuses_fill_processed_at_and_failures_fill_reasons() {
        let mut p = payment("10");
        p.apply_status("FAILED", Utc::now());
        let doc = p.document();
        assert!(doc["process"]["processedAt"].is_string());
        assert_eq!(
            doc["process"]["failureReasons"]["failureReasonCode"],
            "PAYMENT_PROCESS_ERROR"
        );
        p.apply_status("ON_HOLD", Utc::now());
        assert!(p.document()["process"].get("processedAt").is_none());
    }

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
