//! The faults that bend a payment fetch's answer: a redirect instead of the
//! answer and a 200 body that does not parse (hostile: the published document
//! forbids both), and a document naming the wrong payment, carrying a chosen
//! failure message or padded to a chosen size (answers the document allows).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::answer::describe;
use super::document::id_field;
use super::faults::{chance, Faults, MAX_BODY_PADDING_BYTES};
use crate::domain::PaymentKind;

/// What `wrong_id_rate` appends to the requested id to name another payment.
pub const WRONG_ID_SUFFIX: &str = "-OTHER";
/// The longest id the published document allows (`IdPayin`, `IdPayout`).
const MAX_ID_CHARS: usize = 250;

/// Returns `302 Found` to `location`, or a 500 if `location` cannot be a
/// header value (possible only for faults set without [`Faults::validate`]).
pub fn redirect(location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return describe(
            StatusCode::INTERNAL_SERVER_ERROR,
            "redirectTo is not a valid Location (injected)",
        );
    };
    let mut response = describe(StatusCode::FOUND, "moved (injected)");
    response.headers_mut().insert(header::LOCATION, value);
    response
}

/// Returns a 200 `application/json` answer whose body does not parse as the
/// payment document: at random, an unrelated object or the document cut in half.
pub fn malformed(document: &Value) -> Response {
    let body = if rand::random() {
        r#"{"unexpected": true}"#.to_owned()
    } else {
        let text = document.to_string();
        text.chars().take(text.chars().count() / 2).collect()
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Bends the document of a payment of `kind` as `faults` ask: with
/// `wrong_id_rate` it names another payment (in `paymentMethodResponse` and
/// `paymentRequested` alike), `failure_message` replaces the failure
/// message, and `body_padding_bytes` adds `"padding"` (capped at
/// [`MAX_BODY_PADDING_BYTES`]).
pub fn distort(document: &mut Value, kind: PaymentKind, faults: &Faults) {
    if chance(faults.wrong_id_rate) {
        let field = id_field(kind);
        for part in ["paymentMethodResponse", "paymentRequested"] {
            if let Some(id) = document[part][field].as_str() {
                // Still within the published id's 250 characters.
                let kept = id.get(..MAX_ID_CHARS - WRONG_ID_SUFFIX.len()).unwrap_or(id);
                let other = format!("{kept}{WRONG_ID_SUFFIX}");
                document[part][field] = json!(other);
            }
        }
    }
    if let Some(message) = &faults.failure_message {
        if let Some(reasons) = document["process"].get_mut("failureReasons") {
            reasons["message"] = json!(message);
        }
    }
    if faults.body_padding_bytes > 0 {
        let bytes = faults.body_padding_bytes.min(MAX_BODY_PADDING_BYTES);
        let padding = "x".repeat(usize::try_from(bytes).unwrap_or(0));
        document["padding"] = json!(padding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        json!({
            "paymentRequested": {"idPayout": "P-1"},
            "process": {"status": "FAILED", "failureReasons": {"message": "no funds"}},
            "paymentMethodResponse": {"paymentMethodCode": "IMPS", "idPayout": "P-1"},
        })
    }

    #[test]
    fn no_fault_changes_nothing() {
        let mut doc = document();
        distort(&mut doc, PaymentKind::Payout, &Faults::default());
        assert_eq!(doc, document());
    }

    #[test]
    fn each_fault_bends_its_own_field() {
        let mut doc = document();
        let faults = Faults {
            wrong_id_rate: 1.0,
            failure_message: Some("bad\u{0}byte".into()),
            body_padding_bytes: 5,
            ..Faults::default()
        };
        distort(&mut doc, PaymentKind::Payout, &faults);
        assert_eq!(doc["paymentMethodResponse"]["idPayout"], "P-1-OTHER");
        assert_eq!(doc["paymentRequested"]["idPayout"], "P-1-OTHER");
        assert_eq!(doc["process"]["failureReasons"]["message"], "bad\u{0}byte");
        assert_eq!(doc["padding"], "xxxxx");
    }

    #[test]
    fn another_payments_id_is_still_a_published_id() {
        let long = "L".repeat(250);
        let mut doc = json!({"paymentMethodResponse": {"idPayin": long}});
        let faults = Faults {
            wrong_id_rate: 1.0,
            ..Faults::default()
        };
        distort(&mut doc, PaymentKind::Payin, &faults);
        let other = doc["paymentMethodResponse"]["idPayin"].as_str().unwrap();
        assert_eq!(other.len(), 250);
        assert!(other.ends_with(WRONG_ID_SUFFIX) && other != long);
    }

    #[test]
    fn a_failure_message_adds_no_failure_to_a_payment_without_one() {
        let mut doc = json!({"process": {"status": "SUCCESS"}});
        let faults = Faults {
            failure_message: Some("text".into()),
            ..Faults::default()
        };
        distort(&mut doc, PaymentKind::Payin, &faults);
        assert!(doc["process"].get("failureReasons").is_none());
    }
}
