//! Property tests of [`parse_callback`]: arbitrary bytes never panic it, and whatever it
//! accepts names a well-formed id and stores without NUL or a number `numeric` refuses.

use proptest::prelude::*;
use regex::Regex;
use serde_json::{Map, Value};

use super::parse_callback;
use crate::domain::PaymentKind;
use crate::storable::numeric::fits_numeric;

/// Checks what every accepted body must satisfy, whatever it was made from.
fn assert_storable(body: &[u8]) {
    let id_pattern = Regex::new("^[A-Za-z0-9_-]{1,250}$").expect("valid regex");
    let Ok(entry) = parse_callback("M1".into(), PaymentKind::Payin, body) else {
        return;
    };
    if let Some(id) = &entry.id {
        assert!(id_pattern.is_match(id.as_str()), "accepted id {id:?}");
    }
    let stored = serde_json::to_string(&entry.body).expect("a Value serialises");
    assert!(
        !stored.contains('\0') && !stored.contains("\\u0000"),
        "{stored}"
    );
    assert!(numbers_fit(&entry.body), "{stored}");
}

fn numbers_fit(value: &Value) -> bool {
    match value {
        Value::Number(n) => fits_numeric(n.as_str()),
        Value::Array(items) => items.iter().all(numbers_fit),
        Value::Object(map) => map.values().all(numbers_fit),
        _ => true,
    }
}

/// JSON numbers, mostly near or past `numeric`'s limits.
fn number_text() -> impl Strategy<Value = String> {
    (
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?",
        prop_oneof![
            Just(String::new()),
            (
                "[eE][+-]?",
                prop_oneof![0i64..40, 16_370i64..16_400, 131_060i64..131_080]
            )
                .prop_map(|(e, n)| format!("{e}{n}")),
            "[eE][+-]?[0-9]{1,25}",
        ],
    )
        .prop_map(|(mantissa, exponent)| format!("{mantissa}{exponent}"))
}

/// Strings that may hold NUL, escapes, surrogate halves and id-like text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,260}",
        "(\\\\u0000|\\\\ud800|\\\\udc00|\\\\ufffd|\\\\n|\\\\\"|[a-z%./é]){0,8}",
    ]
}

/// JSON text built from the pieces above, written by hand so that it can also be
/// what serde_json would refuse or never write (duplicate keys, NUL escapes).
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        number_text(),
        text().prop_map(|t| format!("\"{t}\"")),
        Just("null".to_owned()),
        Just("true".to_owned()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(
                (prop_oneof![text(), Just("idEntity".to_owned())], inner),
                0..6
            )
            .prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// JSON values without anything to make safe: no NUL, numbers that fit.
fn plain_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "-?(0|[1-9][0-9]{0,29})\\.[0-9]{1,30}(e-?[0-9]{1,3})?"
            .prop_map(|n| { serde_json::from_str(&n).expect("a JSON number") }),
        "[^\\x00]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[^\\x00]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_storable(&bytes);
    }

    #[test]
    fn json_like_text_is_refused_or_stored_safely(body in json_text()) {
        assert_storable(body.as_bytes());
        let wrapped = format!(r#"{{"idEntity":"TST-1","data":{body}}}"#);
        assert_storable(wrapped.as_bytes());
    }

    #[test]
    fn a_body_with_nothing_to_make_safe_is_stored_as_is(data in plain_value()) {
        let body = serde_json::json!({"idEntity": "TST-1", "data": data});
        let text = serde_json::to_vec(&body).expect("serialises");
        let entry = parse_callback("M1".into(), PaymentKind::Payout, &text).expect("accepted");
        prop_assert_eq!(entry.body, body);
    }
}
