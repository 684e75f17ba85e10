//! The process's memory, measured from outside: `paymirror serve` as its own process,
//! its peak resident set (VmHWM) read from /proc while clients read large answers.

use futures_util::future::join_all;
use reqwest::Url;
use serde_json::Value;

use crate::helpers::{free_port, next_page, serve_command, wait_ready, TestDatabase};

/// Callbacks on record for the payment, and the size of each one's padding.
const CALLBACKS: usize = 600;
const PAD_BYTES: usize = 60 * 1024;
const READERS: usize = 8;
/// Callbacks sent at once while filling (several share a batch, as under load).
const POSTS_AT_ONCE: usize = 8;
const CEILING_KIB: u64 = 256 * 1024;

/// Returns the peak resident set size of process `pid` in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// Reads every page of the payment's callbacks; returns each callback's `n`, in order,
/// and how many pages held them.
async fn read_every_page(http: &reqwest::Client, first: Url, token: &str) -> (Vec<u64>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut page = Some(first);
    while let Some(url) = page {
        pages += 1;
        let answer = http
            .get(url.clone())
            .bearer_auth(token)
            .send()
            .await
            .expect("a page");
        if answer.status() != 200 {
            let status = answer.status();
            panic!(
                "{url}: {status} {}",
                answer.text().await.unwrap_or_default()
            );
        }
        page = next_page(&url, &answer);
        let items: Vec<Value> = answer.json().await.expect("a JSON array");
        seen.extend(items.iter().filter_map(|c| c["body"]["n"].as_u64()));
        assert!(seen.len() <= CALLBACKS, "more callbacks than there are");
    }
    (seen, pages)
}

/// A padding of `len` characters that Postgres cannot compress to nothing.
fn padding(len: usize) -> String {
    std::iter::repeat_with(|| uuid::Uuid::new_v4().simple().to_string())
        .flat_map(|s| s.into_bytes())
        .take(len)
        .map(char::from)
        .collect()
}

#[tokio::test]
async fn eight_clients_reading_600_callbacks_of_60_kib_keep_the_process_under_256_mib() {
    let db = TestDatabase::create().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let serve = serve_command(&db, port, "http://127.0.0.1:9")
        .env("PAYMIRROR__SYNC__ENABLED", "false")
        .spawn()
        .expect("paymirror serve starts");
    let pid = serve.id().expect("a running process");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await;
    let pad = padding(PAD_BYTES);
    for chunk in (0..CALLBACKS).collect::<Vec<_>>().chunks(POSTS_AT_ONCE) {
        let posts = chunk.iter().map(|n| {
            http.post(format!("{base}/callbacks/payins"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"idEntity": "MEM-1", "n": {n}, "pad": "{pad}"}}"#
                ))
                .send()
        });
        for answer in join_all(posts).await {
            assert_eq!(answer.expect("callback answered").status(), 200);
        }
    }
    let pool = sqlx::PgPool::connect(db.url.as_str()).await.expect("pool");
    let token = paymirror::tokens::create_token(&pool, "memory", &[], &[])
        .await
        .expect("token");
    let after_ingest = peak_rss_kib(pid);

    // Half the clients take the default page, half the largest one a client may ask for.
    let queries = ["", "?limit=1000"];
    let readers = (0..READERS).map(|n| {
        let first = format!("{base}/v1/payins/MEM-1/callbacks{}", queries[n % 2]);
        read_every_page(&http, Url::parse(&first).expect("URL"), &token)
    });
    let read = join_all(readers).await;

    let peak = peak_rss_kib(pid);
    println!(
        "paymirror peak RSS (VmHWM): {} MiB after ingest, {} MiB after {READERS} readers \
         (half with limit=1000) of {CALLBACKS} callbacks of {} KiB",
        after_ingest / 1024,
        peak / 1024,
        PAD_BYTES / 1024
    );
    for (n, (seen, pages)) in read.into_iter().enumerate() {
        // 600 of 60 KiB are some 36 MiB: pages of 1000 end early, past 8 MiB of bodies.
        let least = if n % 2 == 0 { 6 } else { 5 };
        assert!(pages >= least, "{pages} pages for reader {n}");
        let mut each = seen.clone();
        each.sort_unstable();
        assert_eq!(each, (0..CALLBACKS as u64).collect::<Vec<_>>(), "each once");
        // Each group of callbacks was stored before the next was sent.
        let groups: Vec<u64> = seen.iter().map(|n| n / POSTS_AT_ONCE as u64).collect();
        assert!(groups.is_sorted(), "oldest first: {seen:?}");
    }
    assert!(
        peak < CEILING_KIB,
        "peak RSS {} MiB, over {} MiB",
        peak / 1024,
        CEILING_KIB / 1024
    );
}
