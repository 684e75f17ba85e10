//! A payment's callbacks and the ignored ones, page by page: keyset cursors across
//! the batches and the older one-row-per-callback table, stable while callbacks
//! arrive, and refusing parameters that mean nothing.

use reqwest::Url;
use serde_json::Value;

use crate::helpers::{assert_error, next_page, TestApp};

/// Stores callbacks as an older binary and this one's writer would have, received at
/// interleaved times (minutes before one `now()`: one transaction): `n` in each body
/// says where it stands among the payment's, `i` among those without `idEntity`.
async fn app_with_callbacks_in_both_tables() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app.token("support", &[]).await;
    let statements = [
        r#"insert into callbacks (merchant_code, kind, payment_id, outcome, body, created_at) values
             ('M1', 'payin', 'MIX-1', 'accepted', '{"n": 1}', now() - interval '5 minutes'),
             ('M1', 'payin', null, 'ignored', '{"i": 1}', now() - interval '5 minutes'),
             ('M1', 'payin', 'MIX-1', 'accepted', '{"n": 4}', now() - interval '3 minutes'),
             ('M1', 'payout', null, 'ignored', '{"i": 4}', now() - interval '3 minutes'),
             ('M1', 'payin', 'MIX-1', 'accepted', '{"n": 5}', now() - interval '3 minutes'),
             ('M2', 'payin', 'MIX-1', 'accepted', '{"n": 0}', now() - interval '3 minutes'),
             ('M2', 'payin', null, 'ignored', '{"i": 0}', now() - interval '3 minutes'),
             ('M1', 'payin', null, 'ignored', '{"i": 6}', now() - interval '2 minutes')"#,
        // Received at the same time as two rows above: a batch comes after them.
        r#"insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies, created_at) values
             ('M1', '{payin, payin, payout, payin, payin, payin}', '{MIX-1, MIX-2, MIX-1, NULL, MIX-1, NULL}',
              '{accepted, accepted, accepted, ignored, accepted, ignored}',
              array['{"n": 2}', '{"n": 0}', '{"n": 0}', '{"i": 2}', '{"n": 3}', '{"i": 3}']::jsonb[],
              now() - interval '4 minutes'),
             ('M1', '{payin, payin}', '{MIX-1, NULL}', '{accepted, ignored}',
              array['{"n": 6}', '{"i": 5}']::jsonb[], now() - interval '3 minutes'),
             ('M2', '{payin}', '{MIX-1}', '{accepted}', array['{"n": 0}']::jsonb[], now())"#,
        "insert into payments (merchant_code, kind, id) values ('M1', 'payin', 'MIX-1')",
    ];
    sqlx::raw_sql(&statements.join(";\n"))
        .execute(&app.pool)
        .await
        .expect("callbacks");
    (app, token)
}

/// Returns the values of `field` in the bodies of a page of callbacks.
fn numbers(callbacks: &[Value], field: &str) -> Vec<i64> {
    callbacks
        .iter()
        .filter_map(|c| c["body"][field].as_i64())
        .collect()
}

/// GETs a page of a payment's callbacks; returns it and the next page's URL.
async fn page(app: &TestApp, url: &Url, token: &str) -> (Vec<Value>, Option<Url>) {
    let answer = app
        .http
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .expect("a page");
    assert_eq!(answer.status(), 200, "{url}");
    let next = next_page(url, &answer);
    (answer.json().await.expect("a JSON array"), next)
}

#[tokio::test]
async fn a_payments_callbacks_come_page_by_page_each_once_oldest_first_while_more_arrive() {
    let (app, token) = app_with_callbacks_in_both_tables().await;
    let first = Url::parse(&format!(
        "{}/v1/payins/MIX-1/callbacks?limit=2&flavour=x",
        app.address
    ))
    .expect("URL");

    let (all, last) = page(&app, &first, &token).await;
    assert_eq!(numbers(&all, "n"), [1, 2], "{all:?}");
    let second = last.expect("a next page");
    assert!(
        second.as_str().contains("limit=2") && second.as_str().contains("flavour=x"),
        "the other parameters are kept: {second}"
    );
    let (two, third) = page(&app, &second, &token).await;
    assert_eq!(numbers(&two, "n"), [3, 4]);
    // Callbacks arriving while a client pages come on a later page.
    for n in [7, 8, 9] {
        let body = format!(r#"{{"idEntity": "MIX-1", "n": {n}}}"#);
        assert_eq!(app.post_callback("payins", body).await.status(), 200);
    }
    let mut seen = [numbers(&all, "n"), numbers(&two, "n")].concat();
    let mut next = third;
    let mut pages = 2;
    while let Some(url) = next {
        let (callbacks, after) = page(&app, &url, &token).await;
        assert!(!callbacks.is_empty() && callbacks.len() <= 2, "{url}");
        seen.extend(numbers(&callbacks, "n"));
        assert!(seen.len() <= 9, "more than there are: {seen:?}");
        next = after;
        pages += 1;
    }

    assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        pages, 5,
        "no Link on the last page, and none to an empty one"
    );
    let whole = app
        .get_json("/v1/payins/MIX-1/callbacks?limit=1000", Some(&token))
        .await;
    let whole = whole.as_array().cloned().unwrap_or_default();
    assert_eq!(
        numbers(&whole, "n"),
        seen,
        "one page or many, the same callbacks"
    );
    assert_eq!(whole[0]["outcome"], "accepted");
    assert!(whole[0]["receivedAt"].is_string());
}

#[tokio::test]
async fn a_page_of_one_steps_through_a_batch_element_by_element() {
    let (app, token) = app_with_callbacks_in_both_tables().await;
    let mut url = Some(
        Url::parse(&format!(
            "{}/v1/payins/MIX-1/callbacks?limit=1",
            app.address
        ))
        .expect("URL"),
    );
    let mut seen = Vec::new();
    while let Some(this) = url {
        let (callbacks, next) = page(&app, &this, &token).await;
        assert_eq!(callbacks.len(), 1, "{this}");
        seen.extend(numbers(&callbacks, "n"));
        assert!(seen.len() <= 6, "more than there are: {seen:?}");
        url = next;
    }

    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn ignored_callbacks_come_page_by_page_with_a_next_cursor() {
    let (app, token) = app_with_callbacks_in_both_tables().await;
    let mut seen = Vec::new();
    let mut path = "/v1/callbacks/ignored?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let answer = app.get_json(&path, Some(&token)).await;
        let items = answer["items"].as_array().cloned().unwrap_or_default();
        assert!(!items.is_empty() && items.len() <= 2, "{answer}");
        seen.extend(numbers(&items, "i"));
        assert!(seen.len() <= 6, "more than there are: {seen:?}");
        pages += 1;
        match answer["nextCursor"].as_str() {
            Some(cursor) => path = format!("/v1/callbacks/ignored?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    assert_eq!(pages, 3);
    // One at a time: a cursor at each, of either table, at a time another shares.
    let (mut one_by_one, mut path) = (Vec::new(), Some("limit=1".to_owned()));
    while let Some(query) = path {
        let answer = app
            .get_json(&format!("/v1/callbacks/ignored?{query}"), Some(&token))
            .await;
        one_by_one.extend(numbers(answer["items"].as_array().expect("items"), "i"));
        assert!(one_by_one.len() <= 6, "more than there are: {one_by_one:?}");
        path = answer["nextCursor"]
            .as_str()
            .map(|c| format!("limit=1&cursor={c}"));
    }
    assert_eq!(one_by_one, [1, 2, 3, 4, 5, 6]);

    let whole = app.get_json("/v1/callbacks/ignored", Some(&token)).await;
    assert_eq!(whole["nextCursor"], Value::Null);
    assert_eq!(whole["items"][3]["kind"], "payout");
    let items = whole["items"].as_array().cloned().unwrap_or_default();
    let since = items[3]["receivedAt"].as_str().expect("a time");
    let later = app
        .get_json(
            &format!("/v1/callbacks/ignored?since={since}"),
            Some(&token),
        )
        .await;
    let later = later["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        numbers(&later, "i"),
        [4, 5, 6],
        "at or after the time given"
    );
    // Both: the page starts at the later of the two.
    let first = app
        .get_json("/v1/callbacks/ignored?limit=1", Some(&token))
        .await;
    let cursor = first["nextCursor"].as_str().expect("a cursor");
    let both = app
        .get_json(
            &format!("/v1/callbacks/ignored?since={since}&cursor={cursor}"),
            Some(&token),
        )
        .await;
    let both = both["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(numbers(&both, "i"), [4, 5, 6]);
}

#[tokio::test]
async fn paging_parameters_that_mean_nothing_are_400s_in_the_error_body() {
    let (app, token) = app_with_callbacks_in_both_tables().await;

    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "limit=1.5",
        "limit=",
        "cursor=nonsense",
        "cursor=",
        "cursor=cb1764000000000000.2.1.1",
        "cursor=cb99999999999999999999.1.1.1",
        "cursor=p12",
    ] {
        let answer = app
            .get(&format!("/v1/payins/MIX-1/callbacks?{query}"), Some(&token))
            .await;
        let message = assert_error(answer, 400).await;
        assert!(
            message.contains("limit") || message.contains("cursor"),
            "{query}: {message}"
        );
    }
    for query in [
        "cursor=nonsense",
        "cursor=cb1.2.0.1",
        "limit=0",
        "limit=1001",
    ] {
        let answer = app
            .get(&format!("/v1/callbacks/ignored?{query}"), Some(&token))
            .await;
        assert_error(answer, 400).await;
    }
    let most = app
        .get("/v1/payins/MIX-1/callbacks?limit=1000", Some(&token))
        .await;
    assert_eq!(most.status(), 200);
    let unknown = app
        .get("/v1/payins/NEVER-1/callbacks?limit=5", Some(&token))
        .await;
    assert_error(unknown, 404).await;
    let anonymous = app.get("/v1/payins/MIX-1/callbacks?limit=0", None).await;
    assert_error(anonymous, 401).await;
}
