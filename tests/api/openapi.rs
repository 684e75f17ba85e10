//! `GET /openapi.json` describes every route, and real answers of every `/v1` route
//! (and their errors) validate against it.

use paymirror::domain::PaymentKind;
use paymirror::simulator::SimulatorConfig;
use paymirror::tokens::Permission;
use serde_json::{json, Value};

use crate::helpers::{payment, spawn_with_simulator, TestApp};

/// Checks `body` against the schema the document gives for `path`, `method`, `status`.
fn assert_conforms(document: &Value, path: &str, method: &str, status: u16, body: &Value) {
    let responses = &document["paths"][path][method]["responses"];
    let schema = &responses[status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} documents no JSON schema for {status}: {responses}"
    );
    // Resolve `#/components/...` against the document: the schema, with the components beside it.
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{body}"
    );
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = format!("{}{path}", app.address);
    let mut request = match method {
        "post" => app.http.post(url),
        _ => app.http.get(url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.expect("request");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_document_lists_every_route_and_real_answers_conform_to_it() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    let document: Value = app
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    assert!(document["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let parameters = document["paths"]["/v1/payins/{id}"]["get"]["parameters"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["name"].as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        parameters,
        ["id", "merchant"],
        "each parameter documented once"
    );
    for route in [
        "/callbacks/payins",
        "/callbacks/payouts",
        "/v1/payins",
        "/v1/payouts",
        "/v1/payins/{id}",
        "/v1/payouts/{id}",
        "/v1/payins/{id}/history",
        "/v1/payouts/{id}/history",
        "/v1/payins/{id}/callbacks",
        "/v1/payouts/{id}/callbacks",
        "/v1/payins/{id}/refresh",
        "/v1/payouts/{id}/refresh",
        "/v1/changes",
        "/v1/dead-syncs",
        "/v1/dead-syncs/retry",
        "/v1/callbacks/ignored",
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/console",
    ] {
        assert!(
            document["paths"][route].is_object(),
            "{route} is undocumented"
        );
    }

    sim.create_payment(payment(PaymentKind::Payin, "DOC-1", "42.05"))
        .await;
    app.post_callback(
        "payins",
        r#"{"idEntity": "DOC-1", "event": "payment.statusChange"}"#,
    )
    .await;
    app.post_callback("payins", r#"{"event": "ping"}"#).await;
    app.worker.run_until_idle().await.expect("sync");
    let reader = app.token("reader", &[]).await;
    let writer = app.token("writer", &[Permission::Write]).await;

    let cases = [
        (
            "get",
            "/v1/payins/DOC-1",
            "/v1/payins/{id}",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins/NOPE-1",
            "/v1/payins/{id}",
            Some(&reader),
            404,
        ),
        (
            "get",
            "/v1/payins/a%2Fb",
            "/v1/payins/{id}",
            Some(&reader),
            400,
        ),
        ("get", "/v1/payins/DOC-1", "/v1/payins/{id}", None, 401),
        (
            "get",
            "/v1/payins?limit=10",
            "/v1/payins",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins?cursor=nonsense",
            "/v1/payins",
            Some(&reader),
            400,
        ),
        (
            "get",
            "/v1/payins/DOC-1/history",
            "/v1/payins/{id}/history",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins/DOC-1/callbacks",
            "/v1/payins/{id}/callbacks",
            Some(&reader),
            200,
        ),
        (
            "post",
            "/v1/payins/DOC-1/refresh",
            "/v1/payins/{id}/refresh",
            Some(&writer),
            202,
        ),
        (
            "post",
            "/v1/payins/DOC-1/refresh",
            "/v1/payins/{id}/refresh",
            Some(&reader),
            403,
        ),
        (
            "get",
            "/v1/changes?after=c0",
            "/v1/changes",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins?limit=1001",
            "/v1/payins",
            Some(&reader),
            400,
        ),
        (
            "get",
            "/v1/payouts/NOPE-1",
            "/v1/payouts/{id}",
            Some(&reader),
            404,
        ),
        (
            "get",
            "/v1/changes?wait=99",
            "/v1/changes",
            Some(&reader),
            400,
        ),
        (
            "get",
            "/v1/dead-syncs",
            "/v1/dead-syncs",
            Some(&reader),
            200,
        ),
        (
            "post",
            "/v1/dead-syncs/retry",
            "/v1/dead-syncs/retry",
            Some(&writer),
            202,
        ),
        (
            "get",
            "/v1/callbacks/ignored",
            "/v1/callbacks/ignored",
            Some(&reader),
            200,
        ),
    ];
    for (method, url, route, token, expected) in cases {
        let (status, body) = call(&app, method, url, token.map(String::as_str)).await;
        assert_eq!(status, expected, "{method} {url}: {body}");
        assert_conforms(&document, route, method, status, &body);
    }
    // A sanity check that validation bites: a document missing a required field fails.
    let schema_check = std::panic::catch_unwind(|| {
        assert_conforms(
            &document,
            "/v1/payins/{id}",
            "get",
            200,
            &json!({"kind": "payin"}),
        )
    });
    assert!(schema_check.is_err(), "an incomplete payment conformed");
}

/// Returns the schema the document gives the query parameter `name` of `GET path`.
fn parameter<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{path} documents no parameter {name}"))
}

#[tokio::test]
async fn operations_are_named_once_each_open_routes_say_so_and_parameters_are_typed() {
    let app = TestApp::spawn().await;
    let document = app.get_json("/openapi.json", None).await;

    let mut ids = std::collections::HashMap::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let id = operation["operationId"].as_str().expect("an operationId");
            if let Some(earlier) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("{id} names both {earlier} and {method} {path}");
            }
            let expected = if path.starts_with("/v1/") {
                json!([{"apiToken": []}])
            } else {
                json!([])
            };
            assert_eq!(operation["security"], expected, "{method} {path}");
        }
    }
    for (id, operation) in [
        ("getPayin", "get /v1/payins/{id}"),
        ("getPayout", "get /v1/payouts/{id}"),
        ("listPayouts", "get /v1/payouts"),
        ("followChanges", "get /v1/changes"),
        ("refreshPayin", "post /v1/payins/{id}/refresh"),
    ] {
        assert_eq!(ids.get(id).map(String::as_str), Some(operation));
    }
    assert!(document["servers"][0]["url"].is_string(), "a server");

    let limit = json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000});
    assert_eq!(parameter(&document, "/v1/payins", "limit"), &limit);
    assert_eq!(parameter(&document, "/v1/changes", "limit"), &limit);
    assert_eq!(
        parameter(&document, "/v1/changes", "wait"),
        &json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": 30})
    );
    assert_eq!(
        parameter(&document, "/v1/payins", "updatedAfter"),
        &json!({"type": "string", "format": "date-time"})
    );
    assert_eq!(
        parameter(&document, "/v1/dead-syncs", "since"),
        &json!({"type": "string", "format": "date-time"})
    );
    assert_eq!(
        parameter(&document, "/v1/changes", "after")["pattern"],
        "^c[0-9]{1,18}$"
    );
    assert_eq!(
        parameter(&document, "/v1/payins", "cursor")["pattern"],
        "^p[0-9]{1,18}$"
    );
}
