//! The platform's published document (`tests/platform/echelon-openapi.yaml`) as a
//! checker of answers: its OpenAPI 3.0 schemas are read as JSON Schema (`nullable` adds
//! `null` to the type, a boolean `exclusiveMinimum` becomes a bound, and
//! `#/components/schemas/...` resolves against the document), `date-time` formats checked.

use std::sync::LazyLock;

use reqwest::StatusCode;
use serde_json::{json, Map, Value};

/// The published document, as JSON Schema where it holds schemas.
static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    // Read at test time, not embedded: the image's build stage copies src/, not tests/.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/platform/echelon-openapi.yaml"
    );
    let yaml = std::fs::read_to_string(path).expect("the platform's published document");
    let document: Value = serde_yaml_ng::from_str(&yaml).expect("the document is YAML");
    json_schema(document)
});

/// Rewrites OpenAPI 3.0 schema keywords as JSON Schema 2020-12 understands them.
fn json_schema(value: Value) -> Value {
    let object = match value {
        Value::Object(object) => object,
        Value::Array(items) => return Value::Array(items.into_iter().map(json_schema).collect()),
        other => return other,
    };
    let nullable = object.get("nullable") == Some(&Value::Bool(true));
    let mut object: Map<String, Value> = object
        .into_iter()
        .filter(|(key, value)| !(key == "nullable" && value.is_boolean()))
        .map(|(key, value)| (key, json_schema(value)))
        .collect();
    // OpenAPI 3.0: `exclusiveMinimum: true` qualifies `minimum`; 2020-12 wants the bound.
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(exclusive)) = object.get(flag).cloned() {
            object.remove(flag);
            if let (true, Some(limit)) = (exclusive, object.remove(bound)) {
                object.insert(flag.into(), limit);
            }
        }
    }
    if !nullable {
        return Value::Object(object);
    }
    match object.get("type").cloned() {
        Some(Value::String(kind)) => {
            object.insert("type".into(), json!([kind, "null"]));
            Value::Object(object)
        }
        _ => json!({"anyOf": [Value::Object(object), {"type": "null"}]}),
    }
}

/// Returns how `body` breaks what the document allows `method path` to answer with
/// `status` (nothing when it is allowed).
pub(super) fn violations(
    path: &str,
    method: &str,
    status: StatusCode,
    body: &Value,
) -> Vec<String> {
    let responses = &DOCUMENT["paths"][path][method]["responses"];
    let schema = &responses[status.as_str()]["content"]["application/json"]["schema"];
    if !schema.is_object() {
        return vec![format!("{method} {path} documents no {status}")];
    }
    let mut root = schema.clone();
    root["components"] = DOCUMENT["components"].clone();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .expect("a valid schema");
    validator
        .iter_errors(body)
        .map(|e| format!("{method} {path} {status}: {e} at {}", e.instance_path))
        .collect()
}

/// Asserts that every answer, `(path, method, status, body)`, is one the document allows.
pub(super) fn assert_allowed<'a>(
    answers: impl IntoIterator<Item = (&'a str, &'a str, StatusCode, &'a Value)>,
) {
    let mut broken = Vec::new();
    for (path, method, status, body) in answers {
        let found = violations(path, method, status, body);
        if !found.is_empty() {
            broken.push(format!("{found:#?}\n{body}"));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}

/// Returns the document's path template that `path` (`/payins/X`) falls under.
pub(super) fn template(path: &str) -> &'static str {
    if path.starts_with("/payins/") {
        "/payins/{idPayin}"
    } else {
        "/payouts/{idPayout}"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_nullable_and_boolean_bounds_become_json_schema() {
        let schema = json_schema(json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true},
                "b": {"$ref": "#/x", "nullable": true},
                "c": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                "d": {"type": "number", "exclusiveMinimum": 0},
            }
        }));
        let properties = &schema["properties"];
        assert_eq!(properties["a"], json!({"type": ["string", "null"]}));
        assert_eq!(
            properties["b"],
            json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]})
        );
        assert_eq!(
            properties["c"],
            json!({"type": "number", "exclusiveMinimum": 0})
        );
        assert_eq!(
            properties["d"],
            json!({"type": "number", "exclusiveMinimum": 0})
        );
    }
}
