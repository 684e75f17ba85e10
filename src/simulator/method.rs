//! The `paymentMethodResponse` of a simulated payment, in the shape the published
//! document gives its method: a UPI QR code for payins (`UpiQRMethodResponse`) and a
//! bank transfer for payouts (`BankTransferMethodResponse`). Any other method code is
//! answered with the fields every method shares, as for a method published after v2.47.

use serde_json::{json, Value};

use super::payment::{id_field, money, rfc3339, Payment};

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
