//! Reads one field of a platform answer by its path (`process.failureReasons.message`),
//! so that a field that is not what the published document says is refused by name,
//! with the reason, instead of failing the whole answer at a line and column; and the
//! refusal itself ([`InvalidAnswer`]).

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::business::printable;

/// An amount, exact, in major units.
#[derive(Debug, Clone, PartialEq)]
pub struct Money {
    pub amount: Decimal,
    pub currency_code: String,
}

/// Why a 200 answer is not taken.
#[derive(Debug, thiserror::Error)]
pub enum InvalidAnswer {
    /// Not JSON, or JSON no database could take as one document (a key twice).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// No `process.status`: whatever this is, it is no payment's state.
    #[error("process.status: missing")]
    NoStatus,
    /// One field is not what the published document says.
    #[error("{path}: {reason}")]
    Field { path: String, reason: String },
    /// `paymentMethodResponse` names another payment than the one asked for.
    #[error("{path} is {named}")]
    AnotherPayment { path: &'static str, named: String },
}

impl InvalidAnswer {
    /// Returns the refusal of the field at `path` for `reason`.
    pub(super) fn field(path: &str, reason: String) -> Self {
        InvalidAnswer::Field {
            path: path.to_owned(),
            reason,
        }
    }
}

/// Returns the value at `path` (keys separated by dots), or `None` when a key along
/// it is absent, the value on the way is no object, or the value is `null`.
pub(super) fn at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |value, key| value.get(key))
        .filter(|value| !value.is_null())
}

/// Returns the string at `path`, `None` when absent, or why it is no string.
pub(super) fn text(root: &Value, path: &str) -> Result<Option<String>, InvalidAnswer> {
    match at(root, path) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type(path, "a string", other)),
    }
}

/// Returns the boolean at `path`, `None` when absent, or why it is no boolean.
pub(super) fn flag(root: &Value, path: &str) -> Result<Option<bool>, InvalidAnswer> {
    match at(root, path) {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(wrong_type(path, "true or false", other)),
    }
}

/// Returns the `{"amount", "currencyCode"}` at `path`, `None` when absent, or why
/// its amount is no exact decimal or it has no currency.
pub(super) fn money(root: &Value, path: &str) -> Result<Option<Money>, InvalidAnswer> {
    if at(root, path).is_none() {
        return Ok(None);
    }
    let amount_path = format!("{path}.amount");
    let amount = match at(root, &amount_path) {
        Some(Value::Number(number)) => exact_decimal(&number.to_string())
            .map_err(|reason| InvalidAnswer::field(&amount_path, reason))?,
        // A number Postgres `numeric` cannot hold arrives here as its text.
        Some(Value::String(text)) if looks_numeric(text) => {
            return Err(InvalidAnswer::field(&amount_path, out_of_range(text)))
        }
        Some(other) => return Err(wrong_type(&amount_path, "a number", other)),
        None => return Err(InvalidAnswer::field(&amount_path, "missing".into())),
    };
    let currency_path = format!("{path}.currencyCode");
    let currency_code = text(root, &currency_path)?
        .ok_or_else(|| InvalidAnswer::field(&currency_path, "missing".into()))?;
    Ok(Some(Money {
        amount,
        currency_code,
    }))
}

/// Returns the decimal a JSON number's text says exactly, or why there is none: more
/// than 28 digits after the point (once trailing zeros are dropped) or a magnitude
/// beyond 79,228,162,514,264,337,593,543,950,335 is never rounded to fit.
pub(super) fn exact_decimal(text: &str) -> Result<Decimal, String> {
    let plain = if text.contains(['e', 'E']) {
        plain(text).ok_or_else(|| out_of_range(text))?
    } else {
        text.to_owned()
    };
    Decimal::from_str_exact(without_trailing_zeros(&plain)).map_err(|_| out_of_range(text))
}

/// Rewrites a number in scientific notation as plain digits (`-1.5e3` → `-1500`),
/// or `None` when its exponent puts it beyond any decimal.
fn plain(text: &str) -> Option<String> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent = i64::from_str(exponent).ok()?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(unsigned) => ("-", unsigned),
        None => ("", mantissa),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{integer}{fraction}");
    if digits.bytes().all(|b| b == b'0') {
        return Some("0".into());
    }
    // Any digit 100 places from the point is beyond a decimal's 29 digits and 28 places.
    if exponent.abs() > 100 {
        return None;
    }
    let point = i64::try_from(integer.len()).ok()? + exponent;
    let len = i64::try_from(digits.len()).ok()?;
    let zeros = |n: i64| "0".repeat(usize::try_from(n).unwrap_or(0));
    Some(if point <= 0 {
        format!("{sign}0.{}{digits}", zeros(-point))
    } else if point >= len {
        format!("{sign}{digits}{}", zeros(point - len))
    } else {
        let (whole, part) = digits.split_at(usize::try_from(point).ok()?);
        format!("{sign}{whole}.{part}")
    })
}

/// Drops zeros at the end of a fraction longer than a decimal's 28 places
/// (`1.5000…0` → `1.5000…` at 28 places): they change no value. Zeros within 28
/// places stay, since they are the amount's written scale (`0.50`).
fn without_trailing_zeros(text: &str) -> &str {
    const MAX_PLACES: usize = 28;
    let Some(point) = text.find('.') else {
        return text;
    };
    let mut end = text.len();
    while end - point - 1 > MAX_PLACES && text.as_bytes().get(end - 1) == Some(&b'0') {
        end -= 1;
    }
    &text[..end]
}

/// Whether `text` starts like a JSON number (what `numeric` refused turns into).
fn looks_numeric(text: &str) -> bool {
    text.bytes()
        .next()
        .is_some_and(|b| b == b'-' || b.is_ascii_digit())
}

/// The reason an amount cannot be held exactly, showing the start of its text.
fn out_of_range(text: &str) -> String {
    format!(
        "{} is beyond what an exact decimal holds (at most 28 digits after the point \
         and a magnitude below 7.9e28)",
        shown(text)
    )
}

/// Why the value at `path` is refused: it is not `expected`.
fn wrong_type(path: &str, expected: &str, found: &Value) -> InvalidAnswer {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    InvalidAnswer::field(path, format!("expected {expected}, found {found}"))
}

/// The start of a platform's text for a message: at most 40 characters, printable.
pub(super) fn shown(text: &str) -> String {
    const SHOWN: usize = 40;
    let count = text.chars().count();
    if count <= SHOWN {
        printable(text, SHOWN)
    } else {
        format!("{}… ({count} characters)", printable(text, SHOWN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(text: &str) -> Option<String> {
        exact_decimal(text).ok().map(|d| d.to_string())
    }

    #[test]
    fn amounts_are_exact_or_refused_never_rounded() {
        assert_eq!(exact("42.05").as_deref(), Some("42.05"));
        assert_eq!(exact("0.50").as_deref(), Some("0.50"));
        assert_eq!(
            exact("12345678901234567.89").as_deref(),
            Some("12345678901234567.89")
        );
        assert_eq!(
            exact("79228162514264337593543950335").as_deref(),
            Some("79228162514264337593543950335")
        );
        assert_eq!(exact("1.5e3").as_deref(), Some("1500"));
        assert_eq!(exact("-25E-2").as_deref(), Some("-0.25"));
        assert_eq!(exact("0e999999").as_deref(), Some("0"));
        let zeros = format!("1.{}", "0".repeat(40));
        assert_eq!(exact(&zeros), Some(format!("1.{}", "0".repeat(28))));
        for beyond in [
            "1234567890123456789012345678901",
            "79228162514264337593543950336",
            "0.12345678901234567890123456789",
            "1e29",
            "1e-29",
            "1e200000",
        ] {
            let reason = exact_decimal(beyond).expect_err(beyond);
            assert!(
                reason.contains("beyond what an exact decimal holds"),
                "{reason}"
            );
        }
    }

    #[test]
    fn fields_are_refused_by_their_path_and_reason() {
        let doc = serde_json::json!({
            "process": {"status": 5, "isTest": "yes"},
            "fee": {"amount": "1e200000", "currencyCode": "INR"},
            "paymentRequested": {"money": {"amount": 1}},
        });
        let error = |e: InvalidAnswer| e.to_string();
        assert_eq!(
            text(&doc, "process.status").map_err(error).unwrap_err(),
            "process.status: expected a string, found a number"
        );
        assert_eq!(
            flag(&doc, "process.isTest").map_err(error).unwrap_err(),
            "process.isTest: expected true or false, found a string"
        );
        let fee = money(&doc, "fee").map_err(error).unwrap_err();
        assert!(fee.starts_with("fee.amount: 1e200000 is beyond"), "{fee}");
        assert_eq!(
            money(&doc, "paymentRequested.money")
                .map_err(error)
                .unwrap_err(),
            "paymentRequested.money.currencyCode: missing"
        );
        assert_eq!(text(&doc, "process.message").ok(), Some(None));
        assert_eq!(text(&doc, "fee.amount.deeper").ok(), Some(None));
    }

    #[test]
    fn long_texts_are_shown_by_their_start() {
        let digits = "9".repeat(31);
        assert_eq!(shown(&digits), digits);
        let long = "7".repeat(50);
        assert_eq!(shown(&long), format!("{}… (50 characters)", &long[..40]));
        assert_eq!(shown("a\u{0}b"), "a\u{FFFD}b");
    }
}
