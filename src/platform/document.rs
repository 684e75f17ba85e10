use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{PaymentId, PaymentKind, PaymentStatus};

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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    status: String,
    failure_reasons: Option<FailureReason>,
    created_at: Option<String>,
    processed_at: Option<String>,
    is_test: Option<bool>,
}

/// The per-method object: a `oneOf` on `paymentMethodCode` whose list grows; only
/// the fields every method shares are read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MethodResponse {
    payment_method_code: Option<String>,
    id_payin: Option<String>,
    id_payout: Option<String>,
    expire_at: Option<String>,
}

/// Why a 200 answer is not taken.
#[derive(Debug, thiserror::Error)]
pub enum InvalidAnswer {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("the answer is about another payment than the one asked for")]
    AnotherPayment,
}

impl PlatformPayment {
    /// Parses the 200 answer to `GET /{kind}s/{id}`; fails if it is not JSON, lacks
    /// `process.status`, or its `paymentMethodResponse` names another payment.
    /// Amounts are read from the JSON text itself, never through `f64`; unknown
    /// fields and statuses are kept.
    pub fn parse(body: &[u8], kind: PaymentKind, id: &PaymentId) -> Result<Self, InvalidAnswer> {
        let wire: Wire = serde_json::from_slice(body)?;
        let method = wire.payment_method_response;
        let named = method.as_ref().and_then(|m| match kind {
            PaymentKind::Payin => m.id_payin.as_deref(),
            PaymentKind::Payout => m.id_payout.as_deref(),
        });
        if named.is_some_and(|named| named != id.as_str()) {
            return Err(InvalidAnswer::AnotherPayment);
        }
        let raw: Value = serde_json::from_slice(body)?;
        let (payment_method_code, expire_at) = method
            .map(|m| (m.payment_method_code, m.expire_at))
            .unwrap_or_default();
        let snapshot = PaymentSnapshot {
            status: PaymentStatus::parse(&wire.process.status),
            amount: wire.payment_requested.and_then(|r| r.money),
            fee: wire.fee,
            failure: wire.process.failure_reasons,
            payment_method_code,
            is_test: wire.process.is_test,
            created_at: wire.process.created_at,
            processed_at: wire.process.processed_at,
            expire_at,
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
        "paymentMethodResponse": {"paymentMethodCode": "UPIQR", "idPayin": "TST-1", "idPayment": "p-9",
                                  "expireAt": "2026-11-21T10:15:00Z"}
    }"#;

    fn id(raw: &str) -> PaymentId {
        PaymentId::parse(raw).expect("valid id")
    }

    fn parse(body: &str) -> Result<PlatformPayment, InvalidAnswer> {
        PlatformPayment::parse(body.as_bytes(), PaymentKind::Payin, &id("TST-1"))
    }

    #[test]
    fn extracts_exact_amounts_and_keeps_everything() {
        let payment = parse(BODY).expect("parses");
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
        assert_eq!(s.expire_at.as_deref(), Some("2026-11-21T10:15:00Z"));
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
        let payment = parse(body).expect("parses");
        let amount = payment.snapshot.amount.map(|m| m.amount.to_string());
        assert_eq!(amount.as_deref(), Some("12345678901234567.89"));
        assert_eq!(
            payment.snapshot.status,
            PaymentStatus::Other("SETTLING".into())
        );
    }

    #[test]
    fn a_body_without_status_is_rejected() {
        assert!(parse(r#"{"process": {}}"#).is_err());
        assert!(parse("<html>").is_err());
    }

    #[test]
    fn an_answer_about_another_payment_is_refused() {
        let other = BODY.replace(r#""idPayin": "TST-1""#, r#""idPayin": "TST-2""#);
        assert!(matches!(parse(&other), Err(InvalidAnswer::AnotherPayment)));
        // A payout id in a payin answer says nothing about the payin.
        let payout = PlatformPayment::parse(BODY.as_bytes(), PaymentKind::Payout, &id("X-1"));
        assert!(payout.is_ok());
        let wrong_payout = BODY.replace(r#""idPayin": "TST-1""#, r#""idPayout": "X-2""#);
        let refused =
            PlatformPayment::parse(wrong_payout.as_bytes(), PaymentKind::Payout, &id("X-1"));
        assert!(matches!(refused, Err(InvalidAnswer::AnotherPayment)));
    }
}
