//! The document `GET /payins|payouts/{id}` answers with for a simulated payment, in
//! the published document's shapes. Its `paymentMethodResponse` is a UPI QR code for
//! payins (`UpiQRMethodResponse`) and a bank transfer for payouts
//! (`BankTransferMethodResponse`); any other method code is answered with the fields
//! every method shares, as for a method published after v2.47.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::payment::{fee_for, Payment};
use crate::domain::{PaymentKind, PaymentStatus};

/// The merchant name the simulated platform shows payers.
const MERCHANT_NAME: &str = "Simulated Merchant";

/// Returns `paymentMethodResponse` for `payment`: the method code, the payment's id
/// under `idPayin` / `idPayout`, the platform's `idPayment`, `expireAt` when the
/// payment expires, and whatever else the document requires of its method.
pub fn method_response(payment: &Payment) -> Value {
    let mut response = json!({
        "paymentMethodCode": payment.payment_method_code,
        id_field(payment.kind): payment.id.as_str(),
        "idPayment": payment.id_payment.to_string(),
    });
    if let Some(at) = payment.expire_at {
        response["expireAt"] = json!(rfc3339(at));
    }
    let reference = reference(payment);
    match payment.payment_method_code.as_str() {
        "UPIQR" => {
            let qr = format!("https://sim.echelonpay.invalid/qr/{}", payment.id_payment);
            response["money"] = money(payment.amount, &payment.currency);
            response["merchantName"] = json!(MERCHANT_NAME);
            response["reference"] = json!(reference);
            response["qrName"] = json!("UPI QR");
            response["qrCode"] = json!(qr);
            response["returnUrl"] = json!("https://merchant.invalid/return");
            response["acceptedAt"] = json!(rfc3339(payment.created_at));
        }
        "BANK_TRANSFER" => response["reference"] = json!(reference),
        _ => {}
    }
    response
}

/// Returns the transaction reference the platform gives a payment: stable, short,
/// derived from its `idPayment`.
fn reference(payment: &Payment) -> String {
    let simple = payment.id_payment.simple().to_string();
    format!("SIM{}", simple.get(..12).unwrap_or(&simple).to_uppercase())
}

impl Payment {
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
    use std::time::Instant;

    use crate::domain::PaymentId;
    use uuid::Uuid;

    fn payment(amount: &str) -> Payment {
        Payment {
            merchant: "M1".into(),
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
}
