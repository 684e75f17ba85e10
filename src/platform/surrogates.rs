//! Lone UTF-16 surrogate escapes (`"\ud800"`): JSON's grammar admits them in any string,
//! but neither Rust nor Postgres text can hold them. The platform may put any JSON
//! string in its free-text fields, so each lone one becomes `\ufffd` (six bytes for
//! six) before its answer is parsed; a valid pair is left as it is.

use std::borrow::Cow;

/// What a lone surrogate escape is replaced by: U+FFFD, escaped.
const STAND_IN: &[u8; 6] = b"\\ufffd";

/// Returns `json` with every lone surrogate escape inside a string replaced by
/// `\ufffd`, borrowing it unchanged when it has none. Text that is not JSON comes back
/// as it was or mended, for the parser to refuse.
pub(super) fn mend_lone_surrogates(json: &[u8]) -> Cow<'_, [u8]> {
    let mut mended: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => {
                in_string = !in_string;
                at += 1;
            }
            b'\\' if in_string => match escaped_unit(json, at) {
                Some(0xD800..=0xDBFF) => {
                    let low = escaped_unit(json, at + 6);
                    if matches!(low, Some(0xDC00..=0xDFFF)) {
                        at += 12;
                    } else {
                        replace(&mut mended, json, at);
                        at += 6;
                    }
                }
                Some(0xDC00..=0xDFFF) => {
                    replace(&mut mended, json, at);
                    at += 6;
                }
                Some(_) => at += 6,
                None => at += 2,
            },
            _ => at += 1,
        }
    }
    match mended {
        Some(bytes) => Cow::Owned(bytes),
        None => Cow::Borrowed(json),
    }
}

/// The code unit of the `\uXXXX` escape starting at `at`, if one starts there.
fn escaped_unit(json: &[u8], at: usize) -> Option<u16> {
    let escape = json.get(at..at + 6)?;
    if &escape[..2] != b"\\u" {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    u16::from_str_radix(hex, 16).ok()
}

/// Writes [`STAND_IN`] over the six bytes at `at` of the mended copy.
fn replace(mended: &mut Option<Vec<u8>>, json: &[u8], at: usize) {
    let copy = mended.get_or_insert_with(|| json.to_vec());
    if let Some(escape) = copy.get_mut(at..at + 6) {
        escape.copy_from_slice(STAND_IN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mend(json: &str) -> String {
        String::from_utf8_lossy(&mend_lone_surrogates(json.as_bytes())).into_owned()
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        assert_eq!(mend(r#"{"m": "a\ud800b"}"#), r#"{"m": "a\ufffdb"}"#);
        assert_eq!(
            mend(r#"["\udc00", "\uDBFF\u0041"]"#),
            r#"["\ufffd", "\ufffd\u0041"]"#
        );
        assert_eq!(mend(r#"{"\ud800": 1}"#), r#"{"\ufffd": 1}"#);
        assert_eq!(mend(r#""\ud800\ud800\udc00""#), r#""\ufffd\ud800\udc00""#);
        assert_eq!(mend(r#""end\ud800"#), r#""end\ufffd"#);
    }

    #[test]
    fn everything_else_is_left_as_it_is() {
        for json in [
            r#"{"m": "a\ud83d\ude00b \u00e9 \\ud800 \" \ud800"}"#,
            r#"{"n": 1, "t": "\\\\"}"#,
            "\\ud800",
            r#""\u12"#,
        ] {
            let mended = mend_lone_surrogates(json.as_bytes());
            let expected = json.replace(r#" \" \ud800"#, r#" \" \ufffd"#);
            assert_eq!(String::from_utf8_lossy(&mended), expected, "{json}");
        }
        assert!(matches!(
            mend_lone_surrogates(br#"{"ok": "\ud83d\ude00"}"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn mended_text_parses_with_the_stand_in() {
        let mended = mend_lone_surrogates(br#"{"m": "card\ud800declined"}"#);
        let value: serde_json::Value = serde_json::from_slice(&mended).expect("parses");
        assert_eq!(value["m"], "card\u{FFFD}declined");
    }
}
