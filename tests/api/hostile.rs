//! Hostile requests against the real app. Each is refused with a 4xx in the pinned
//! error body or a closed connection, never a 5xx, and an honest callback is still
//! answered 200 after it. Bodies with NUL or numbers `numeric` cannot hold are stored
//! in their safe form. Slow clients are in `slow`.

mod deadlines;
mod raw;
mod slow;

use paymirror::tokens::Permission;
use raw::{exchange, request, Answer};

use crate::helpers::TestApp;

/// What a hostile request must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This status, in the pinned error body.
    Status(u16),
    /// hyper's own answer to headers over the limit, before any routing: a 431
    /// (empty body: it cannot carry the pinned one) or a closed connection.
    HeadersRefused,
}

fn callback(body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        "/callbacks/payins",
        &[("content-type", "application/json")],
        body,
    )
}

fn nested(depth: usize) -> Vec<u8> {
    format!(
        r#"{{"idEntity":"TST-1","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

/// Every hostile request: a name, the raw bytes, what must come back.
fn cases(token: &str) -> Vec<(&'static str, Vec<u8>, Expect)> {
    let auth = format!("Bearer {token}");
    let get = |path: &str| request("GET", path, &[("authorization", &auth)], b"");
    let long_id = "x".repeat(251);
    let big_header = "h".repeat(20 * 1024);
    let many_headers: Vec<(String, &str)> = (0..200).map(|i| (format!("x-h{i}"), "1")).collect();
    let many_headers: Vec<(&str, &str)> =
        many_headers.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    vec![
        (
            "encoded slash in id",
            get("/v1/payins/a%2Fb"),
            Expect::Status(400),
        ),
        (
            "encoded traversal in id",
            get("/v1/payins/%2e%2e%2f%2e%2e%2fetc"),
            Expect::Status(400),
        ),
        (
            "raw traversal in path",
            get("/v1/payins/../../etc/passwd"),
            Expect::Status(404),
        ),
        (
            "traversal to a sibling route",
            get("/v1/payins/../payouts/X"),
            Expect::Status(404),
        ),
        (
            "encoded NUL in id",
            get("/v1/payins/TST%00"),
            Expect::Status(400),
        ),
        (
            "invalid UTF-8 in id",
            get("/v1/payins/%FF%FE"),
            Expect::Status(400),
        ),
        (
            "encoded space in id",
            get("/v1/payins/TST%201"),
            Expect::Status(400),
        ),
        (
            "251-character id",
            get(&format!("/v1/payins/{long_id}")),
            Expect::Status(400),
        ),
        (
            "traversal id in callback",
            callback(br#"{"idEntity":"../../etc"}"#),
            Expect::Status(400),
        ),
        (
            "encoded id in callback",
            callback(br#"{"idEntity":"a%2Fb"}"#),
            Expect::Status(400),
        ),
        (
            "251-character id in callback",
            callback(format!(r#"{{"idEntity":"{long_id}"}}"#).as_bytes()),
            Expect::Status(400),
        ),
        (
            "NUL escape in callback id",
            callback(br#"{"idEntity":"TST\u0000"}"#),
            Expect::Status(400),
        ),
        (
            "invalid UTF-8 body",
            callback(b"{\"idEntity\":\"TST-1\",\"x\":\"\xff\xfe\"}"),
            Expect::Status(400),
        ),
        (
            "lone surrogate",
            callback(br#"{"idEntity":"TST-1","x":"\ud800"}"#),
            Expect::Status(400),
        ),
        (
            "lone surrogate in id",
            callback(br#"{"idEntity":"\udc00"}"#),
            Expect::Status(400),
        ),
        (
            "raw NUL in a string",
            callback(b"{\"idEntity\":\"TST-1\",\"x\":\"a\x00b\"}"),
            Expect::Status(400),
        ),
        (
            "raw NUL after the body",
            callback(b"{\"idEntity\":\"TST-1\"}\x00"),
            Expect::Status(400),
        ),
        (
            "deep nesting within 64 KiB",
            callback(&nested(30_000)),
            Expect::Status(400),
        ),
        (
            "100,000-deep nesting",
            callback(&nested(100_000)),
            Expect::Status(413),
        ),
        (
            "duplicate idEntity",
            callback(br#"{"idEntity":"TST-1","idEntity":"TST-2"}"#),
            Expect::Status(400),
        ),
        (
            "nested duplicate keys",
            callback(br#"{"idEntity":"TST-1","a":{"b":1,"b":2}}"#),
            Expect::Status(400),
        ),
        (
            "reserved number key",
            callback(br#"{"idEntity":"TST-1","$serde_json::private::Number":"1"}"#),
            Expect::Status(400),
        ),
        (
            "body over 64 KiB",
            callback(&vec![b' '; 64 * 1024 + 1]),
            Expect::Status(413),
        ),
        (
            "GET on a callback route",
            request("GET", "/callbacks/payins", &[], b""),
            Expect::Status(405),
        ),
        (
            "header over the limit",
            request("GET", "/healthz", &[("x-big", &big_header)], b""),
            Expect::HeadersRefused,
        ),
        (
            "200 headers",
            request("GET", "/healthz", &many_headers, b""),
            Expect::HeadersRefused,
        ),
    ]
}

fn assert_expected(name: &str, answer: &Answer, expect: Expect) {
    match expect {
        Expect::Status(status) => {
            assert_eq!(answer.status(), Some(status), "{name}: {answer:?}");
            answer.assert_pinned_error();
        }
        Expect::HeadersRefused => assert!(
            matches!(answer.status(), None | Some(431)),
            "{name}: {answer:?}"
        ),
    }
}

async fn assert_honest_callback_answered(app: &TestApp, after: &str) {
    let response = app
        .post_callback("payins", r#"{"idEntity": "HONEST-1"}"#)
        .await;
    assert_eq!(response.status(), 200, "honest callback after {after}");
}

#[tokio::test]
async fn hostile_requests_are_refused_and_the_app_keeps_answering() {
    let app = TestApp::spawn().await;
    let token = app.token("ops", &[Permission::Read]).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    for (name, bytes, expect) in cases(&token) {
        let answer = exchange(&address, &bytes).await;
        assert_expected(name, &answer, expect);
        assert_honest_callback_answered(&app, name).await;
    }

    let stored: Vec<String> = sqlx::query_scalar(
        "select distinct payment_id from callbacks_on_record where payment_id is not null",
    )
    .fetch_all(&app.pool)
    .await
    .expect("stored callbacks");
    assert_eq!(stored, ["HONEST-1"], "no hostile callback was stored");
}

#[tokio::test]
async fn a_nul_escape_in_a_valid_callback_is_stored_in_safe_form() {
    let app = TestApp::spawn().await;

    let response = app
        .post_callback(
            "payins",
            r#"{"idEntity": "TST-NUL", "note": "a\u0000b", "k\u0000": ["\u0000"]}"#,
        )
        .await;

    assert_eq!(response.status(), 200);
    let (note, key_item, outcome): (String, String, String) = sqlx::query_as(
        "select body->>'note', body->'k\u{FFFD}'->>0, outcome from callbacks_on_record where payment_id = 'TST-NUL'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("callback stored");
    assert_eq!(note, "a\u{FFFD}b");
    assert_eq!(key_item, "\u{FFFD}");
    assert_eq!(outcome, "accepted");
}

/// Each number is posted in a callback (always 200) and must be stored as a number
/// exactly when Postgres accepts it as `jsonb` on its own, else as its written text.
#[tokio::test]
async fn numbers_are_stored_as_numbers_exactly_when_postgres_can_hold_them() {
    let app = TestApp::spawn().await;
    let long_integer = format!("{}e71072", "9".repeat(60_000));
    let numbers = [
        "42.05",
        "1E+5",
        "1e131071",
        "9.9e131071",
        "1e131072",
        "1e200000",
        "1e-16383",
        "1e-16384",
        "1.00e-16382",
        "0e-16384",
        "0e1073741822",
        "0e1073741823",
        "-1E131072",
        "1e99999999999999999999",
        &long_integer,
    ];

    for (i, number) in numbers.iter().enumerate() {
        let id = format!("NUM-{i}");
        let body = format!(r#"{{"idEntity": "{id}", "n": {number}}}"#);
        let response = app.post_callback("payins", body).await;
        assert_eq!(response.status(), 200, "{number:.40}");

        let postgres_holds_it = sqlx::query(&format!("select '{number}'::jsonb"))
            .execute(&app.pool)
            .await
            .is_ok();
        let (kind, text): (String, String) = sqlx::query_as(
            "select jsonb_typeof(body->'n'), body->>'n' from callbacks_on_record where payment_id = $1",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .expect("callback stored");
        if postgres_holds_it {
            assert_eq!(kind, "number", "{number:.40}");
        } else {
            assert_eq!((kind.as_str(), text.as_str()), ("string", *number));
        }
    }
}
