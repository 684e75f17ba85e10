use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::PaymentStatus;

/// A payment as the platform answered it: the document verbatim plus what we extract.
#[derive(Debug, Clone)]
pub struct PlatformPayment {
    pub raw: Value,
    pub snapshot: PaymentSnapshot,
}

/// The fields paymirror indexes and serves; everything else stays in the raw document.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSnapshot {
    pub status: PaymentStatus,
    pub amount: Option<Money>,
    pub fee: Option<Money>,
    pub failure: Option<FailureReason>,
    pub payment_method_code: Option<String>,
    pub is_test: Option<bool>,
    pub created_at: Option<String>,
    pub processed_at: Option<String>,
    /// When the platform stops waiting for the payer, if it says.
    pub expire_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub amount: Decimal,
    pub currency_code: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReason {
    pub failure_reason_code: Option<String>,
    pub message: Option<String>,
    pub failed_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    payment_requested: Option<Requested>,
    process: Process,
    fee: Option<Money>,
    payment_method_response: Option<MethodResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Requested {
    money: Option<Money>,
    expire_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    status: String,
    failure_reasons: Option<FailureReason>,
    created_at: Option<String>,
    processed_at: Option<String>,
    is_test: Option<bool>,
    expire_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MethodResponse {
    payment_method_code: Option<String>,
}

impl PlatformPayment {
    /// Parses a 200 body; fails only if it is not JSON or lacks `process.status`.
    /// Amounts are read from the JSON text itself, never through `f64`; unknown
    /// fields and statuses are kept.
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        let wire: Wire = serde_json::from_slice(body)?;
        let raw: Value = serde_json::from_slice(body)?;
        let (money, requested_expiry) = wire
            .payment_requested
            .map(|r| (r.money, r.expire_at))
            .unwrap_or_default();
        let snapshot = PaymentSnapshot {
            status: PaymentStatus::parse(&wire.process.status),
            amount: money,
            fee: wire.fee,
            failure: wire.process.failure_reasons,
            payment_method_code: wire
                .payment_method_response
                .and_then(|m| m.payment_method_code),
            is_test: wire.process.is_test,
            created_at: wire.process.created_at,
            processed_at: wire.process.processed_at,
            expire_at: requested_expiry.or(wire.process.expire_at),
        };
        Ok(PlatformPayment { raw, snapshot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
        "paymentRequested": {"money": {"amount": 42.05, "currencyCode": "INR"}, "idPayin": "TST-1"},
        "process": {"status": "FAILED", "createdAt": "2026-11-21T10:00:00Z", "isTest": true,
                    "failureReasons": {"failedAt": "2026-11-21T10:01:00Z", "failureReasonCode": "EXPIRED"},
                    "somethingNew": [1, 2]},
        "fee": {"amount": 0.50, "currencyCode": "INR"},
        "paymentMethodResponse": {"paymentMethodCode": "UPIQR"}
    }"#;

    #[test]
    fn extracts_exact_amounts_and_keeps_everything() {
        let payment = PlatformPayment::parse(BODY.as_bytes()).expect("parses");
        let s = &payment.snapshot;
        assert_eq!(s.status, PaymentStatus::Failed);
        assert_eq!(
            s.amount.as_ref().map(|m| m.amount.to_string()),
            Some("42.05".into())
        );
        assert_eq!(
            s.fee.as_ref().map(|m| m.amount.to_string()),
            Some("0.50".into())
        );
        assert_eq!(
            s.failure
                .as_ref()
                .and_then(|f| f.failure_reason_code.clone()),
            Some("EXPIRED".into())
        );
        assert_eq!(s.payment_method_code.as_deref(), Some("UPIQR"));
        assert_eq!(payment.raw["process"]["somethingNew"][1], 2);
        assert_eq!(
            payment.raw["paymentRequested"]["money"]["amount"].to_string(),
            "42.05"
        );
    }

    #[test]
    fn amounts_beyond_f64_precision_survive() {
        let body = r#"{"paymentRequested": {"money": {"amount": 12345678901234567.89, "currencyCode": "IDR"}},
                       "process": {"status": "SETTLING"}}"#;
        let payment = PlatformPayment::parse(body.as_bytes()).expect("parses");
        let amount = payment.snapshot.amount.map(|m| m.amount.to_string());
        assert_eq!(amount.as_deref(), Some("12345678901234567.89"));
        assert_eq!(
            payment.snapshot.status,
            PaymentStatus::Other("SETTLING".into())
        );
    }

    #[test]
    fn a_body_without_status_is_rejected() {
        assert!(PlatformPayment::parse(br#"{"process": {}}"#).is_err());
        assert!(PlatformPayment::parse(b"<html>").is_err());
    }
}
