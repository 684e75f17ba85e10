//! The numbers of a JSON text as they were written, in document order.
//!
//! serde_json (`arbitrary_precision`) hands visitors a number's text rewritten: `1E5`
//! becomes `1e+5`. A number kept as a string because `numeric` cannot hold it should
//! read as the platform wrote it, so the written forms are collected here first.

/// Returns every number token of `json`, in order; strings are skipped whole.
///
/// Meant for text that is then parsed as JSON: on anything else the result is
/// meaningless but harmless, since the parse refuses it.
pub fn number_tokens(json: &[u8]) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => at = after_string(json, at + 1),
            b'-' | b'0'..=b'9' => {
                let end = json[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(json.len(), |len| at + len);
                // The token is ASCII, so this never fails.
                if let Ok(token) = std::str::from_utf8(&json[at..end]) {
                    tokens.push(token);
                }
                at = end;
            }
            _ => at += 1,
        }
    }
    tokens
}

/// The index just past the quote closing the string whose content starts at `at`.
fn after_string(json: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = json.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    json.len()
}

/// Whether `written` is the number serde_json read as `read` (`E` lowered, `+` added).
pub fn same_number(written: &str, read: &str) -> bool {
    let mut expected = String::with_capacity(written.len() + 1);
    let mut chars = written.chars().peekable();
    while let Some(c) = chars.next() {
        if c == 'e' || c == 'E' {
            expected.push('e');
            if !matches!(chars.peek(), Some('+' | '-')) {
                expected.push('+');
            }
        } else {
            expected.push(c);
        }
    }
    expected == read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers_outside_strings_in_order() {
        let json = br#"{"a1": [1E5, -0.5e-3, "2 \" 3e9", true], "b": 7, "c\\": 4}"#;
        assert_eq!(number_tokens(json), ["1E5", "-0.5e-3", "7", "4"]);
        assert!(number_tokens(br#""unterminated 5"#).is_empty());
    }

    #[test]
    fn recognises_serde_jsons_rewriting() {
        assert!(same_number("1E5", "1e+5"));
        assert!(same_number("1e-5", "1e-5"));
        assert!(same_number("42.05", "42.05"));
        assert!(!same_number("42.05", "42.5"));
        assert!(!same_number("1", "1e+0"));
    }
}
