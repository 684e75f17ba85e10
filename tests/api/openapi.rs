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
    let parameters = document["paths"]["/v1/{kinds}/{id}"]["get"]["parameters"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["name"].as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        parameters,
        ["kinds", "id"],
        "each parameter documented once"
    );
    for route in [
        "/callbacks/payins",
        "/callbacks/payouts",
        "/v1/{kinds}",
        "/v1/{kinds}/{id}",
        "/v1/{kinds}/{id}/history",
        "/v1/{kinds}/{id}/callbacks",
        "/v1/{kinds}/{id}/refresh",
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
            "/v1/{kinds}/{id}",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins/NOPE-1",
            "/v1/{kinds}/{id}",
            Some(&reader),
            404,
        ),
        (
            "get",
            "/v1/payins/a%2Fb",
            "/v1/{kinds}/{id}",
            Some(&reader),
            400,
        ),
        ("get", "/v1/payins/DOC-1", "/v1/{kinds}/{id}", None, 401),
        (
            "get",
            "/v1/payins?limit=10",
            "/v1/{kinds}",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins?cursor=nonsense",
            "/v1/{kinds}",
            Some(&reader),
            400,
        ),
        (
            "get",
            "/v1/payins/DOC-1/history",
            "/v1/{kinds}/{id}/history",
            Some(&reader),
            200,
        ),
        (
            "get",
            "/v1/payins/DOC-1/callbacks",
            "/v1/{kinds}/{id}/callbacks",
            Some(&reader),
            200,
        ),
        (
            "post",
            "/v1/payins/DOC-1/refresh",
            "/v1/{kinds}/{id}/refresh",
            Some(&writer),
            202,
        ),
        (
            "post",
            "/v1/payins/DOC-1/refresh",
            "/v1/{kinds}/{id}/refresh",
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
            "/v1/{kinds}/{id}",
            "get",
            200,
            &json!({"kind": "payin"}),
        )
    });
    assert!(schema_check.is_err(), "an incomplete payment conformed");
}
