//! Observability against the real app: request ids, `/metrics` with HELP text and
//! real histograms, and every metric the code records catalogued.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paymirror::domain::PaymentKind;
use paymirror::ops::metrics::{series, SeriesType, SERIES};
use paymirror::simulator::SimulatorConfig;
use regex::Regex;

use crate::helpers::{payment, spawn_with_simulator, TestApp};

fn request_id(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn assert_uuid(id: Option<String>) -> String {
    let id = id.expect("an x-request-id header");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id} is not a UUID");
    id
}

#[tokio::test]
async fn a_request_id_is_echoed_or_made() {
    let app = TestApp::spawn().await;
    let with_id = |id: &'static str| {
        app.http
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", id)
            .send()
    };

    let echoed = with_id("trace-42.a:b").await.expect("request");
    assert_eq!(request_id(&echoed).as_deref(), Some("trace-42.a:b"));

    let first = assert_uuid(request_id(&app.get("/healthz", None).await));
    let second = assert_uuid(request_id(&app.get("/healthz", None).await));
    assert_ne!(first, second);

    // Error answers carry one too: the auth rejection and the fallback.
    let unauthorised = app.get("/v1/payins/RID-1", None).await;
    assert_eq!(unauthorised.status(), 401);
    assert_uuid(request_id(&unauthorised));
    let unknown = app.get("/no/such/route", None).await;
    assert_eq!(unknown.status(), 404);
    assert_uuid(request_id(&unknown));

    // An id that is not a plain token is replaced rather than logged and echoed.
    let odd = with_id("a b\"c").await.expect("request");
    assert_uuid(request_id(&odd));
}

/// The `# HELP` and `# TYPE` lines of a Prometheus text exposition.
struct Exposition {
    helps: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut helps = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.splitn(4, ' ');
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("#"), Some("HELP"), Some(name), Some(help)) => {
                    helps.insert(name.to_owned(), help.to_owned());
                }
                (Some("#"), Some("TYPE"), Some(name), Some(kind)) => {
                    types.insert(name.to_owned(), kind.to_owned());
                }
                _ => {}
            }
        }
        Exposition { helps, types }
    }
}

fn type_name(series_type: SeriesType) -> &'static str {
    match series_type {
        SeriesType::Counter => "counter",
        SeriesType::Gauge => "gauge",
        SeriesType::Histogram(_) => "histogram",
    }
}

#[tokio::test]
async fn metrics_have_help_text_real_histograms_and_route_templates() {
    let (app, sim) = spawn_with_simulator(|_| {}, SimulatorConfig::default(), false).await;
    sim.create_payment(payment(PaymentKind::Payin, "OPS-1", "1.00"))
        .await;
    let callback = app
        .post_callback("payins", r#"{"idEntity": "OPS-1"}"#)
        .await;
    assert_eq!(callback.status(), 200);
    app.worker.run_until_idle().await.expect("worker");
    let token = app.token("ops", &[]).await;
    assert_eq!(
        app.get("/v1/payins/OPS-1", Some(&token)).await.status(),
        200
    );
    assert_eq!(app.get("/no/such/OPS-1", None).await.status(), 404);

    let text = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let exposition = Exposition::parse(&text);

    for (name, kind) in &exposition.types {
        let help = exposition.helps.get(name);
        assert!(help.is_some_and(|h| !h.is_empty()), "no HELP for {name}");
        let catalogued = series(name).unwrap_or_else(|| panic!("{name} is not catalogued"));
        assert_eq!(type_name(catalogued.series_type), kind, "{name}");
    }
    for s in SERIES {
        if let SeriesType::Histogram(buckets) = s.series_type {
            let name = s.name;
            assert_eq!(
                exposition.types.get(name).map(String::as_str),
                Some("histogram"),
                "{name} was not recorded, or not as a histogram"
            );
            let bucket_lines = text
                .lines()
                .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
                .count();
            assert!(bucket_lines > buckets.len(), "{name} lacks buckets");
            assert!(text.contains(&format!("{name}_count")), "{name}");
        }
    }
    assert!(!text.contains("quantile="), "a summary slipped in:\n{text}");

    let requests_line = |method: &str, route: &str, status: &str| {
        text.lines().any(|l| {
            l.starts_with("paymirror_http_requests_total{")
                && l.contains(&format!(r#"method="{method}""#))
                && l.contains(&format!(r#"route="{route}""#))
                && l.contains(&format!(r#"status="{status}""#))
        })
    };
    assert!(requests_line("GET", "/v1/{kinds}/{id}", "200"), "{text}");
    assert!(requests_line("GET", "unmatched", "404"), "{text}");
    assert!(requests_line("POST", "/callbacks/payins", "200"), "{text}");
    assert!(!text.contains("OPS-1"), "a raw path reached a label");
    assert!(text.contains(r#"paymirror_platform_request_duration_seconds_bucket{route="payins""#));
    for cluster_wide in ["paymirror_sync_jobs", "paymirror_oldest_due_sync_seconds"] {
        let help = exposition
            .helps
            .get(cluster_wide)
            .expect("queue gauge exported");
        assert!(help.contains("max, not sum"), "{cluster_wide}: {help}");
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("readable source directory");
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every `counter!`, `gauge!` and `histogram!` name in `src/`, with its macro's type.
fn recorded_in_source() -> BTreeMap<String, &'static str> {
    let call = Regex::new(r#"\b(counter|gauge|histogram)!\(\s*"([A-Za-z0-9_:]+)""#).expect("regex");
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    let mut recorded = BTreeMap::new();
    for file in files {
        let code = std::fs::read_to_string(&file).expect("readable source");
        for c in call.captures_iter(&code) {
            recorded.insert(c[2].to_owned(), type_name_of_macro(&c[1]));
        }
    }
    recorded
}

fn type_name_of_macro(name: &str) -> &'static str {
    match name {
        "counter" => "counter",
        "gauge" => "gauge",
        _ => "histogram",
    }
}

#[test]
fn every_metric_the_code_records_is_catalogued_and_every_catalogued_one_is_recorded() {
    let recorded = recorded_in_source();
    assert!(
        recorded.len() >= 15,
        "the grep found too little: {recorded:?}"
    );
    for (name, kind) in &recorded {
        let catalogued = series(name).unwrap_or_else(|| panic!("{name} has no HELP text"));
        assert_eq!(type_name(catalogued.series_type), *kind, "{name}");
    }
    for s in SERIES {
        assert!(
            recorded.contains_key(s.name),
            "{} is never recorded",
            s.name
        );
    }
}
