//! Whether Postgres `numeric` (and so a `jsonb` number) can hold a JSON number, decided
//! from the number's text alone, without converting it.
//!
//! The limits were measured on PostgreSQL 15 with `select '<number>'::jsonb`:
//! `1e131071` and `9.9e131071` are stored, `1e131072` overflows (131,072 integer
//! digits at most); `1e-16383` and `0.00e-16381` are stored, `1e-16384`,
//! `1.00e-16382` and `0e-16384` overflow (display scale 16,383 at most, counted from
//! the written digits, zero included); `0e1073741822` is stored, `0e1073741823`
//! overflows (`numeric_in` refuses an exponent of `INT_MAX / 2` or more, even on zero).

/// Most digits before the decimal point: `numeric`'s weight is at most 32,767 base-10,000 digits.
pub const MAX_INTEGER_DIGITS: i64 = 131_072;
/// Most digits after the decimal point (`NUMERIC_DSCALE_MAX`).
pub const MAX_SCALE: i64 = 16_383;
/// `numeric_in` refuses exponents at or beyond `INT_MAX / 2`, whatever the digits.
const EXPONENT_LIMIT: i64 = 1_073_741_823;

/// Returns whether Postgres `numeric` accepts `text`, a number in JSON's grammar
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
pub fn fits_numeric(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, parse_exponent(exponent)),
        None => (unsigned, Some(0)),
    };
    let Some(exponent) = exponent.filter(|e| e.abs() < EXPONENT_LIMIT) else {
        return false;
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if digit_count(fraction) - exponent > MAX_SCALE {
        return false;
    }
    // Digits before the decimal point once the exponent is applied, counted from the
    // first significant digit; zero has none and always fits.
    let integer_digits = match integer.bytes().position(|b| b != b'0') {
        Some(first) => digit_count(&integer[first..]) + exponent,
        None => match fraction.bytes().position(|b| b != b'0') {
            Some(first) => exponent - digit_count(&fraction[..first]),
            None => return true,
        },
    };
    integer_digits <= MAX_INTEGER_DIGITS
}

/// The exponent's value, or `None` when it is too long for any limit to matter.
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.trim_start_matches('0');
    if digits.len() > 18 {
        return None;
    }
    let value: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// A body is at most 64 KiB, so a digit run always fits an `i64`.
fn digit_count(digits: &str) -> i64 {
    i64::try_from(digits.len()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case was tried against PostgreSQL 15: `select '<text>'::jsonb`.
    #[test]
    fn agrees_with_postgres_at_the_limits() {
        let stored = [
            "0",
            "-0",
            "42.05",
            "1E+5",
            "1e131071",
            "9.9e131071",
            "-9e131071",
            "0.5e131072",
            "0.0001e131075",
            "1e-16383",
            "-5e-16383",
            "1.5e-16382",
            "0.00e-16381",
            "0e-16383",
            "0e999999",
            "0e1073741822",
            "1e0000000000000000000000005",
        ];
        for text in stored {
            assert!(fits_numeric(text), "{text} is stored by Postgres");
        }
        let refused = [
            "1e131072",
            "-1e131072",
            "1e200000",
            "0.5e131073",
            "0.0001e131076",
            "1e-16384",
            "1.5e-16383",
            "10e-16384",
            "1.00e-16382",
            "0.000e-16381",
            "0e-16384",
            "1e-999999",
            "0e1073741823",
            "0e2147483647",
            "1e1073741822",
            "1e99999999999999999999999",
            "0e-99999999999999999999999",
        ];
        for text in refused {
            assert!(!fits_numeric(text), "{text} overflows numeric in Postgres");
        }
    }

    #[test]
    fn long_digit_runs_count_like_exponents() {
        let integer = "9".repeat(60_000);
        assert!(fits_numeric(&format!("{integer}e71072")));
        assert!(!fits_numeric(&format!("{integer}e71073")));
        let fraction = format!("0.{}", "0".repeat(16_383));
        assert!(fits_numeric(&fraction));
        assert!(!fits_numeric(&format!("{fraction}1")));
    }
}
