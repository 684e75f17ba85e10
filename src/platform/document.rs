//! A platform answer to `GET /payins|payouts/{id}`: read as callbacks are into what
//! Postgres stores (NUL and lone surrogates become U+FFFD, a number `numeric` cannot
//! hold is kept as its text), then the fields paymirror indexes, each refused by its path and reason when
//! it is not what the published document says. Unknown fields and values are kept.

use serde_json::Value;

use super::fields::{at, flag, money, shown, text, InvalidAnswer, Money};
use super::surrogates::mend_lone_surrogates;
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::storable::parse_storable;

/// A payment as the platform answered it: the document verbatim plus what we extract.
#[derive(Debug, Clone)]
pub struct PlatformPayment {
    /// The answer as stored: verbatim but for NUL and numbers `numeric` cannot hold.
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
    /// The platform's times (these, `failed_at`, `expire_at`) stay the text it wrote:
    /// they are stored and served verbatim, never reformatted.
    pub created_at: Option<String>,
    pub processed_at: Option<String>,
    /// When the platform stops waiting for the payer, if it says.
    pub expire_at: Option<String>,
}

/// `process.failureReasons`; the published document requires the code and the time,
/// but each is read only if present.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureReason {
    pub failure_reason_code: Option<String>,
    pub message: Option<String>,
    pub failed_at: Option<String>,
}

impl PlatformPayment {
    /// Parses the 200 answer to `GET /{kind}s/{id}`; fails if it is not JSON, lacks
    /// `process.status`, has a field we index in a form the published document does
    /// not allow (an amount no exact decimal holds among them), or names another
    /// payment in `paymentMethodResponse`. Amounts are read from the JSON text itself,
    /// never through `f64`; unknown fields, statuses, codes and methods are kept.
    pub fn parse(body: &[u8], kind: PaymentKind, id: &PaymentId) -> Result<Self, InvalidAnswer> {
        let raw = parse_storable(&mend_lone_surrogates(body))?;
        let id_path = match kind {
            PaymentKind::Payin => "paymentMethodResponse.idPayin",
            PaymentKind::Payout => "paymentMethodResponse.idPayout",
        };
        if let Some(named) = text(&raw, id_path)? {
            if named != id.as_str() {
                return Err(InvalidAnswer::AnotherPayment {
                    path: id_path,
                    named: shown(&named),
                });
            }
        }
        let status = text(&raw, "process.status")?.ok_or(InvalidAnswer::NoStatus)?;
        let snapshot = PaymentSnapshot {
            status: PaymentStatus::parse(&status),
            amount: money(&raw, "paymentRequested.money")?,
            fee: money(&raw, "fee")?,
            failure: failure_reason(&raw)?,
            payment_method_code: text(&raw, "paymentMethodResponse.paymentMethodCode")?,
            is_test: flag(&raw, "process.isTest")?,
            created_at: text(&raw, "process.createdAt")?,
            processed_at: text(&raw, "process.processedAt")?,
            expire_at: text(&raw, "paymentMethodResponse.expireAt")?,
        };
        Ok(PlatformPayment { raw, snapshot })
    }
}

/// Returns `process.failureReasons` if the answer has one.
fn failure_reason(raw: &Value) -> Result<Option<FailureReason>, InvalidAnswer> {
    const AT: &str = "process.failureReasons";
    if at(raw, AT).is_none() {
        return Ok(None);
    }
    Ok(Some(FailureReason {
        failure_reason_code: text(raw, &format!("{AT}.failureReasonCode"))?,
        message: text(raw, &format!("{AT}.message"))?,
        failed_at: text(raw, &format!("{AT}.failedAt"))?,
    }))
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
        let refused = parse(&other).expect_err("another payment");
        assert!(matches!(refused, InvalidAnswer::AnotherPayment { .. }));
        assert_eq!(
            refused.to_string(),
            "paymentMethodResponse.idPayin is TST-2"
        );
        // A payout id in a payin answer says nothing about the payin.
        let payout = PlatformPayment::parse(BODY.as_bytes(), PaymentKind::Payout, &id("X-1"));
        assert!(payout.is_ok());
        let wrong_payout = BODY.replace(r#""idPayin": "TST-1""#, r#""idPayout": "X-2""#);
        let refused =
            PlatformPayment::parse(wrong_payout.as_bytes(), PaymentKind::Payout, &id("X-1"));
        assert!(matches!(refused, Err(InvalidAnswer::AnotherPayment { .. })));
    }

    #[test]
    fn nul_in_any_text_is_stored_as_the_replacement_character() {
        let body = BODY.replace(
            r#""failureReasonCode": "EXPIRED""#,
            r#""failureReasonCode": "EXPIRED", "message": "card\u0000declined""#,
        );
        let body = body.replace(
            r#""idPayment": "p-9""#,
            r#""idPayment": "p-9", "note\u0000": "\u0000""#,
        );
        let payment = parse(&body).expect("parses");
        let message = payment.snapshot.failure.and_then(|f| f.message);
        assert_eq!(message.as_deref(), Some("card\u{FFFD}declined"));
        let raw = payment.raw.to_string();
        assert!(!raw.contains("\\u0000"), "{raw}");
        assert_eq!(
            payment.raw["process"]["failureReasons"]["message"],
            "card\u{FFFD}declined"
        );
        assert_eq!(
            payment.raw["paymentMethodResponse"]["note\u{FFFD}"],
            "\u{FFFD}"
        );
    }

    #[test]
    fn numbers_numeric_cannot_hold_outside_amounts_are_kept_as_their_text() {
        let body = BODY.replace(
            r#""somethingNew": [1, 2]"#,
            r#""somethingNew": [1e200000, 2]"#,
        );
        let payment = parse(&body).expect("parses");
        assert_eq!(payment.raw["process"]["somethingNew"][0], "1e200000");
        assert_eq!(payment.snapshot.status, PaymentStatus::Failed);
    }

    #[test]
    fn an_amount_no_decimal_holds_is_refused_by_its_field() {
        let body = BODY.replace("42.05", "1234567890123456789012345678901");
        let refused = parse(&body).expect_err("beyond a decimal");
        assert!(matches!(refused, InvalidAnswer::Field { .. }));
        let reason = refused.to_string();
        assert!(
            reason.starts_with(
                "paymentRequested.money.amount: 1234567890123456789012345678901 is beyond what an exact decimal holds"
            ),
            "{reason}"
        );
        let fee = BODY.replace("0.50", "1e200000");
        let reason = parse(&fee).expect_err("beyond numeric").to_string();
        assert!(
            reason.starts_with("fee.amount: 1e200000 is beyond"),
            "{reason}"
        );
    }

    #[test]
    fn every_answer_the_published_document_allows_is_taken() {
        // failureReasons without message, a method code not known today, no expireAt,
        // a status, failure code and fields that may come later.
        let body = r#"{
            "paymentRequested": {"money": {"amount": 5, "currencyCode": "IDR"}, "segmentCode": "S"},
            "process": {"status": "REFUSED", "createdAt": "2026-11-21T10:00:00+07:00", "isTest": false,
                        "processorStatus": "PROCESSED",
                        "failureReasons": {"failedAt": "2026-11-21T10:01:00Z", "failureReasonCode": "IP_DENIED"}},
            "fee": {"amount": 0.05, "currencyCode": "IDR"},
            "paymentMethodResponse": {"paymentMethodCode": "TELEPORT_PAY", "idPayin": "TST-1", "idPayment": "p-1"}
        }"#;
        let s = parse(body).expect("parses").snapshot;
        assert_eq!(s.status, PaymentStatus::Refused);
        let failure = s.failure.expect("a failure");
        assert_eq!(failure.failure_reason_code.as_deref(), Some("IP_DENIED"));
        assert_eq!(failure.message, None);
        assert_eq!(s.payment_method_code.as_deref(), Some("TELEPORT_PAY"));
        assert_eq!(s.expire_at, None);
        assert_eq!(s.amount.map(|m| m.amount.to_string()).as_deref(), Some("5"));
    }
}
