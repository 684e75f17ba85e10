//! The platform's 406 answers: business errors, published as an array
//! `[{"code", "description"?, "attrCode"?}]` (an object is read as an array of one).
//! Every word in them is the platform's: shown only in printable, bounded form, and
//! turned into metric labels only from a bounded alphabet.

use std::fmt;

use serde_json::Value;

/// Most business errors shown from one answer; the rest are counted.
const MAX_SHOWN: usize = 5;
/// Longest code shown or used as a label.
const MAX_CODE_CHARS: usize = 64;
/// What a code outside `[A-Z0-9_]{1,64}` is counted as in metrics.
const OTHER_LABEL: &str = "other";

/// One business error of a 406 answer, in printable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessError {
    /// The platform's code, or empty when it gave none.
    pub code: String,
    pub description: Option<String>,
    /// The request attribute the error is about, if the platform names one.
    pub attr_code: Option<String>,
}

/// The business errors of one 406 answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BusinessErrors {
    errors: Vec<BusinessError>,
    /// How many more the answer held beyond [`MAX_SHOWN`].
    more: usize,
}

impl BusinessErrors {
    /// Returns the business errors of a 406 body: each element of an array, or the
    /// object itself. Anything else (not JSON, a string, an element that is no
    /// object) yields what could be read, possibly nothing; it never fails.
    pub fn parse(body: &[u8]) -> Self {
        let items = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(object @ Value::Object(_)) => vec![object],
            _ => Vec::new(),
        };
        let mut errors: Vec<BusinessError> = items.iter().filter_map(business_error).collect();
        let more = errors.len().saturating_sub(MAX_SHOWN);
        errors.truncate(MAX_SHOWN);
        BusinessErrors { errors, more }
    }

    /// Returns the errors shown (at most five).
    pub fn errors(&self) -> &[BusinessError] {
        &self.errors
    }

    /// Returns one metric label per distinct code (`none` for an error without one, or
    /// when the answer held none):
    /// the code itself when it is `[A-Z0-9_]{1,64}`, else `other`, so a platform's
    /// words can never grow the label set without bound or break the exposition.
    pub fn metric_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = self
            .errors
            .iter()
            .map(|e| match e.code.as_str() {
                "" => "none",
                code => code_label(code),
            })
            .collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.is_empty() {
            labels.push("none");
        }
        labels
    }
}

impl fmt::Display for BusinessErrors {
    /// `CODE: description (attrCode); CODE…`, or `no business error given`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            return f.write_str("no business error given");
        }
        for (n, error) in self.errors.iter().enumerate() {
            if n > 0 {
                f.write_str("; ")?;
            }
            let code = if error.code.is_empty() {
                "no code"
            } else {
                &error.code
            };
            f.write_str(code)?;
            if let Some(description) = &error.description {
                write!(f, ": {description}")?;
            }
            if let Some(attr) = &error.attr_code {
                write!(f, " ({attr})")?;
            }
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

/// Reads one element of the array; `None` for an element that is no object.
fn business_error(item: &Value) -> Option<BusinessError> {
    let object = item.as_object()?;
    let text = |key: &str, max: usize| object.get(key)?.as_str().map(|s| printable(s, max));
    Some(BusinessError {
        code: text("code", MAX_CODE_CHARS).unwrap_or_default(),
        description: text("description", 200),
        attr_code: text("attrCode", MAX_CODE_CHARS),
    })
}

/// Returns `code` if it is `[A-Z0-9_]{1,64}`, else `other`.
pub fn code_label(code: &str) -> &str {
    let bounded = (1..=MAX_CODE_CHARS).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if bounded {
        code
    } else {
        OTHER_LABEL
    }
}

/// Returns the platform's own words fit for a log line and a database column: at
/// most `max` characters, control characters (NUL included) replaced by U+FFFD.
pub(super) fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> BusinessErrors {
        BusinessErrors::parse(body.as_bytes())
    }

    #[test]
    fn reads_the_published_array_with_every_code() {
        let errors = parse(
            r#"[{"code": "MERCHANT_INACTIVE", "description": "inactive"},
                {"code": "OPERATION_INVALID", "attrCode": "operations"}]"#,
        );
        assert_eq!(
            errors.to_string(),
            "MERCHANT_INACTIVE: inactive; OPERATION_INVALID (operations)"
        );
        assert_eq!(
            errors.metric_labels(),
            ["MERCHANT_INACTIVE", "OPERATION_INVALID"]
        );
    }

    #[test]
    fn an_object_is_read_as_an_array_of_one() {
        let errors = parse(r#"{"code": "MERCHANT_NOT_FOUND"}"#);
        assert_eq!(errors.to_string(), "MERCHANT_NOT_FOUND");
        assert_eq!(errors.metric_labels(), ["MERCHANT_NOT_FOUND"]);
    }

    #[test]
    fn anything_else_is_read_as_far_as_it_goes_without_failing() {
        for body in [
            "",
            "<html>",
            "[]",
            "\"MERCHANT_INACTIVE\"",
            "[1, null]",
            "{}",
        ] {
            let errors = parse(body);
            assert_eq!(errors.metric_labels(), ["none"], "{body}");
        }
        assert_eq!(parse("[]").to_string(), "no business error given");
        assert_eq!(parse("[{}]").to_string(), "no code");
        assert_eq!(parse(r#"[{"code": 7}]"#).to_string(), "no code");
    }

    #[test]
    fn hostile_codes_are_printable_bounded_and_never_labels() {
        let long = "A".repeat(500);
        let body = serde_json::json!([
            {"code": "bad\u{0}code\nX", "description": "d\u{7}"},
            {"code": long},
            {"code": "lower_case"},
            {"code": "MERCHANT_INACTIVE"},
        ])
        .to_string();
        let errors = parse(&body);
        assert_eq!(errors.errors()[0].code, "bad\u{FFFD}code\u{FFFD}X");
        assert_eq!(errors.errors()[0].description.as_deref(), Some("d\u{FFFD}"));
        assert_eq!(errors.errors()[1].code.len(), MAX_CODE_CHARS);
        let truncated = "A".repeat(MAX_CODE_CHARS);
        assert_eq!(
            errors.metric_labels(),
            [truncated.as_str(), "MERCHANT_INACTIVE", "other"]
        );
    }

    #[test]
    fn many_errors_show_five_and_count_the_rest() {
        let items: Vec<_> = (0..8)
            .map(|n| serde_json::json!({"code": format!("C{n}")}))
            .collect();
        let errors = parse(&Value::Array(items).to_string());
        assert_eq!(errors.errors().len(), 5);
        assert!(errors.to_string().ends_with("C4; and 3 more"), "{errors}");
    }

    #[test]
    fn labels_are_upper_case_digits_and_underscores_up_to_64() {
        assert_eq!(code_label("MERCHANT_INACTIVE"), "MERCHANT_INACTIVE");
        assert_eq!(code_label("E42"), "E42");
        for bad in [
            "",
            "a",
            "MERCHANT-INACTIVE",
            "É",
            "X\"} 1\n",
            &"A".repeat(65),
        ] {
            assert_eq!(code_label(bad), "other", "{bad}");
        }
    }
}
