//! Reads a callback body, in one pass, into a `Value` that Postgres `jsonb` stores:
//! duplicate object keys are refused at any depth, NUL (U+0000) in strings and keys
//! becomes U+FFFD, and a number `numeric` cannot hold becomes a string of its text as
//! written. Anything else is kept as parsed. serde_json's recursion limit (128) still
//! applies, so deep nesting is an error, never a stack overflow.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

use super::numeric::fits_numeric;
use super::written::{number_tokens, same_number};

/// With `arbitrary_precision`, serde_json hands a number to a visitor as a map with
/// this one key whose value is the number's text. An object written with that key
/// looks the same (told apart because no number was written there) and would read back
/// from `jsonb` as a broken number, so the key is refused wherever it appears.
const NUMBER_KEY: &str = "$serde_json::private::Number";

/// Postgres text cannot hold NUL; this is what it becomes.
const NUL_STAND_IN: &str = "\u{FFFD}";

/// Returns the JSON value of `bytes`, ready for `jsonb`, or why it is refused.
pub fn parse_storable(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let numbers = Numbers {
        written: number_tokens(bytes),
        seen: Cell::new(0),
    };
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let value = Storable(&numbers).deserialize(&mut json)?;
    json.end()?;
    Ok(value)
}

/// The body's numbers as written, and how many the parse has reached.
struct Numbers<'a> {
    written: Vec<&'a str>,
    seen: Cell<usize>,
}

impl Numbers<'_> {
    /// The next number as written; serde_json visits numbers in document order. None
    /// when a number was visited where none was written: an object with [`NUMBER_KEY`].
    fn next_written(&self) -> Option<&str> {
        let index = self.seen.get();
        self.seen.set(index + 1);
        self.written.get(index).copied()
    }

    /// An integer serde_json read as a machine integer (always within `numeric`).
    fn integer<E: de::Error>(&self, read: i128, number: Number) -> Result<Value, E> {
        match self.next_written() {
            Some(written) if written.parse::<i128>().ok() == Some(read) => {
                Ok(Value::Number(number))
            }
            _ => Err(reserved_key()),
        }
    }

    /// A number serde_json read as text: as parsed, or its written text as a string
    /// when `numeric` cannot hold it.
    fn text<E: de::Error>(&self, read: String) -> Result<Value, E> {
        let written = match self.next_written() {
            Some(written) if same_number(written, &read) => written,
            _ => return Err(reserved_key()),
        };
        let number = Number::from_str(&read).map_err(E::custom)?;
        if fits_numeric(written) {
            Ok(Value::Number(number))
        } else {
            Ok(Value::String(written.to_owned()))
        }
    }
}

fn reserved_key<E: de::Error>() -> E {
    E::custom(format_args!("the object key `{NUMBER_KEY}` is reserved"))
}

/// Replaces NUL, the one character a `jsonb` string or key cannot hold.
fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', NUL_STAND_IN)
    } else {
        text
    }
}

/// Shows at most the start of a key in an error message.
fn shown(key: &str) -> String {
    const SHOWN: usize = 40;
    match key.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", &key[..end]),
        None => key.to_owned(),
    }
}

#[derive(Clone, Copy)]
struct Storable<'n, 'a>(&'n Numbers<'a>);

impl<'de> DeserializeSeed<'de> for Storable<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Storable<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.integer(v.into(), v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.integer(v.into(), v.into())
    }

    // Unused with `arbitrary_precision`, which reads non-integers as text; counted all the same.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.next_written();
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(without_nul(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(without_nul(v)))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut next = map.next_key::<String>()?;
        if next.as_deref() == Some(NUMBER_KEY) {
            return self.0.text(map.next_value::<String>()?);
        }
        let mut object = Map::new();
        while let Some(key) = next {
            let value = map.next_value_seed(self)?;
            // Keys are compared as stored: "a\u0000" and "a\ufffd" would become one.
            if key == NUMBER_KEY {
                return Err(reserved_key());
            }
            match object.entry(without_nul(key)) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format_args!(
                        "the object key `{}` appears twice",
                        shown(taken.key())
                    )));
                }
            }
            next = map.next_key()?;
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(body: &str) -> Value {
        parse_storable(body.as_bytes()).expect("accepted")
    }

    #[test]
    fn a_body_without_problems_is_what_serde_json_reads() {
        let body = r#"{"idEntity":"TST-1","amount":42.050,"big":123456789012345678901234567890,
            "neg":-0.0,"exp":1E+5,"list":[null,true,false,"é\n",{"a":{}}],"empty":[]}"#;
        let plain: Value = serde_json::from_str(body).expect("valid JSON");
        assert_eq!(stored(body), plain);
        assert_eq!(stored(body)["amount"].to_string(), "42.050");
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for body in [
            r#"{"a":1,"a":1}"#,
            r#"{"idEntity":"X","idEntity":"Y"}"#,
            r#"{"a":[{"b":{"c":1,"d":2,"c":3}}]}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"k\u0000":1,"k\ufffd":2}"#,
        ] {
            let error = parse_storable(body.as_bytes()).expect_err(body);
            assert!(error.to_string().contains("appears twice"), "{error}");
        }
        assert_eq!(stored(r#"{"a":{"a":{"a":1}}}"#)["a"]["a"]["a"], 1);
    }

    #[test]
    fn nul_becomes_the_replacement_character_in_strings_and_keys() {
        let value = stored(r#"{"idEntity":"TST-1","n\u0000k":["a\u0000b",{"\u0000":"\u0000"}]}"#);
        assert_eq!(
            value,
            json!({"idEntity": "TST-1", "n\u{FFFD}k": ["a\u{FFFD}b", {"\u{FFFD}": "\u{FFFD}"}]})
        );
        assert!(!serde_json::to_string(&value)
            .expect("serialises")
            .contains("\\u0000"));
    }

    #[test]
    fn numbers_numeric_cannot_hold_become_their_text() {
        let value = stored(r#"{"huge":1e200000,"tiny":-1e-16384,"ok":9.9e131071,"in":[1E131072]}"#);
        assert_eq!(value["huge"], "1e200000");
        assert_eq!(value["tiny"], "-1e-16384");
        assert_eq!(value["in"][0], "1E131072");
        // A number that fits stays a number (serde_json spells its exponent `e+`; jsonb
        // keeps the value, not the spelling, either way).
        assert_eq!(value["ok"].to_string(), "9.9e+131071");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let depth = 100_000;
        for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
            let body = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let error = parse_storable(body.as_bytes()).expect_err("too deep");
            assert!(error.to_string().contains("recursion limit"), "{error}");
        }
        let nested_ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_storable(nested_ok.as_bytes()).is_ok());
    }

    #[test]
    fn invalid_text_is_refused() {
        for body in [
            &b"\"\xff\""[..],
            br#""\ud800""#,
            br#""\udc00x""#,
            b"\"a\x00b\"",
            b"{} {}",
            b"",
            br#"{"$serde_json::private::Number":"abc"}"#,
            br#"{"$serde_json::private::Number":"1"}"#,
            br#"[{"$serde_json::private::Number":"5"}, 5]"#,
            br#"{"a":1,"$serde_json::private::Number":"5"}"#,
        ] {
            assert!(
                parse_storable(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
