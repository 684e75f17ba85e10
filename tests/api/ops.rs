//! Observability against the real app: request ids, `/metrics` with HELP text and
//! real histograms, every metric the code records catalogued, and the alert rules
//! and dashboard in `deploy/` referring only to metrics the service exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use paymirror::domain::PaymentKind;
use paymirror::ops::metrics::{series, SeriesType, SERIES};
use paymirror::simulator::SimulatorConfig;
use regex::Regex;
use serde_json::Value;

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
    // Each inbox batch is timed once: as many commits timed as batch sizes recorded.
    let count = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_count ")))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name}_count in\n{text}"))
    };
    assert!(count("paymirror_inbox_batch_size") >= 1);
    assert_eq!(
        count("paymirror_inbox_commit_seconds"),
        count("paymirror_inbox_batch_size")
    );

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
    assert!(text.contains(
        r#"paymirror_platform_request_duration_seconds_bucket{merchant="M1",route="payins""#
    ));
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

/// The exported metric a name in a query refers to (`_bucket`, `_sum` and `_count`
/// of a histogram are its own series).
fn exported_metric(name: &str) -> Option<&'static str> {
    if let Some(s) = series(name) {
        return Some(s.name);
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = series(name.strip_suffix(suffix)?)?;
        matches!(base.series_type, SeriesType::Histogram(_)).then_some(base.name)
    })
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let name = Regex::new(r"\bpaymirror_[a-z0-9_]+").expect("regex");
    name.find_iter(text)
        .map(|m| m.as_str().to_owned())
        .collect()
}

fn deploy_file(name: &str) -> (PathBuf, String) {
    let path = manifest_dir().join("deploy").join(name);
    let text = std::fs::read_to_string(&path).expect("deploy file readable");
    (path, text)
}

/// The `expr:` values of a rules file, each on one line (a folded or block `expr`
/// would hide the rest of the query from this check, so it fails the test).
fn alert_exprs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|e| {
            let e = e.trim();
            assert!(
                !e.is_empty() && !e.starts_with(['|', '>']),
                "multi-line expr: {e}"
            );
            e.to_owned()
        })
        .collect()
}

#[test]
fn alert_rules_use_only_exported_metrics() {
    let (path, yaml) = deploy_file("alerts.yml");
    let exprs = alert_exprs(&yaml);
    let alerts = yaml
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(alerts >= 8, "only {alerts} alerts");
    assert_eq!(alerts, exprs.len(), "every alert has one expr");
    assert!(!yaml.contains('\t'), "YAML indents with spaces");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} uses no paymirror metric");
        used.extend(names);
    }
    // Names in summaries and descriptions must be real too.
    for name in used.iter().chain(&metric_names(&yaml)) {
        assert!(exported_metric(name).is_some(), "{name} is not exported");
    }
    for needed in [
        "paymirror_sync_jobs",
        "paymirror_oldest_due_sync_seconds",
        "paymirror_platform_requests_total",
        "paymirror_platform_config_errors_total",
        "paymirror_callbacks_total",
        "paymirror_http_shed_total",
        "paymirror_platform_outage",
    ] {
        assert!(used.contains(needed), "no alert on {needed}");
    }
    assert!(
        !exprs.iter().any(
            |e| e.contains("sum(paymirror_sync_jobs") || e.contains("sum(paymirror_oldest_due")
        ),
        "cluster-wide gauges are aggregated with max"
    );
    promtool(&["check", "rules", &path.to_string_lossy()]);
}

/// Scenarios for `promtool test rules`: which alerts fire at minute 15 given these series
/// (two replicas, `a` and `b`). Cluster-wide gauges are the same on both replicas.
const ALERT_SCENARIOS: &str = r#"
rule_files:
  - ALERTS_FILE
evaluation_interval: 1m
tests:
  - name: a healthy cluster raises nothing
    interval: 1m
    input_series:
      - {series: 'paymirror_http_requests_total{instance="a",method="GET",route="/metrics",status="200"}', values: '0+1x20'}
      - {series: 'paymirror_http_requests_total{instance="b",method="POST",route="/callbacks/payins",status="200"}', values: '0+50x20'}
      - {series: 'paymirror_callbacks_total{instance="b",kind="payin",outcome="accepted",result="stored"}', values: '0+50x20'}
      - {series: 'paymirror_platform_requests_total{instance="a",route="payins",status="200"}', values: '0+300x20'}
      - {series: 'paymirror_platform_outage{instance="a"}', values: '0x20'}
      - {series: 'paymirror_sync_jobs{instance="a",state="dead"}', values: '0x20'}
      - {series: 'paymirror_sync_jobs{instance="b",state="dead"}', values: '0x20'}
      - {series: 'paymirror_oldest_due_sync_seconds{instance="a"}', values: '2x20'}
      - {series: 'paymirror_oldest_due_sync_seconds{instance="b"}', values: '2x20'}
    promql_expr_test:
      - {expr: 'count by (alertname) (ALERTS{alertstate="firing"})', eval_time: 15m, exp_samples: []}
  - name: every trouble raises its alert
    interval: 1m
    input_series:
      - {series: 'paymirror_http_requests_total{instance="a",method="GET",route="/metrics",status="200"}', values: '0+1x20'}
      - {series: 'paymirror_platform_outage{instance="a"}', values: '0 1x20'}
      - {series: 'paymirror_platform_outage{instance="b"}', values: '0x20'}
      - {series: 'paymirror_sync_jobs{instance="a",state="dead"}', values: '2x20'}
      - {series: 'paymirror_sync_jobs{instance="b",state="dead"}', values: '2x20'}
      - {series: 'paymirror_oldest_due_sync_seconds{instance="a"}', values: '600x20'}
      - {series: 'paymirror_oldest_due_sync_seconds{instance="b"}', values: '600x20'}
      - {series: 'paymirror_platform_config_errors_total{instance="a",status="403"}', values: '0+1x20'}
      - {series: 'paymirror_platform_requests_total{instance="b",route="payins",status="429"}', values: '0+2x20'}
      - {series: 'paymirror_callbacks_total{instance="b",kind="payin",outcome="accepted",result="failed"}', values: '0+3x20'}
      - {series: 'paymirror_callbacks_total{instance="b",kind="payin",outcome="accepted",result="refused"}', values: '0 1x20'}
      - {series: 'paymirror_http_shed_total{instance="b"}', values: '0+5x20'}
    promql_expr_test:
      - expr: 'count by (alertname) (ALERTS{alertstate="firing"})'
        eval_time: 15m
        exp_samples:
          - {labels: '{alertname="PaymirrorCallbacksNotStored"}', value: 1}
          - {labels: '{alertname="PaymirrorCallbacksRefused"}', value: 1}
          - {labels: '{alertname="PaymirrorCallbacksShed"}', value: 1}
          - {labels: '{alertname="PaymirrorDeadSyncs"}', value: 1}
          - {labels: '{alertname="PaymirrorPlatformConfigError"}', value: 1}
          - {labels: '{alertname="PaymirrorPlatformOutage"}', value: 1}
          - {labels: '{alertname="PaymirrorPlatformThrottling"}', value: 1}
          - {labels: '{alertname="PaymirrorSyncBacklog"}', value: 1}
  - name: replicas that are not scraped raise the absence alert
    interval: 1m
    input_series:
      - {series: 'up{job="other"}', values: '1x20'}
    promql_expr_test:
      - expr: 'count by (alertname) (ALERTS{alertstate="firing"})'
        eval_time: 15m
        exp_samples:
          - {labels: '{alertname="PaymirrorMetricsAbsent"}', value: 1}
"#;

#[test]
fn the_alerts_fire_on_their_troubles_and_stay_quiet_otherwise() {
    let (alerts, _) = deploy_file("alerts.yml");
    let scenarios = ALERT_SCENARIOS.replace("ALERTS_FILE", &alerts.to_string_lossy());
    let path = std::env::temp_dir().join(format!(
        "paymirror-alert-tests-{}.yml",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&path, scenarios).expect("temporary test file");
    promtool(&["test", "rules", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(path);
}

/// Every `expr` string anywhere in the dashboard.
fn dashboard_exprs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("expr", Value::String(expr)) => found.push(expr.clone()),
                    _ => dashboard_exprs(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| dashboard_exprs(i, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let (_, text) = deploy_file("grafana.json");
    let dashboard: Value = serde_json::from_str(&text).expect("grafana.json is JSON");
    assert_eq!(dashboard["uid"], "paymirror");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"].as_array();
        assert!(
            targets.is_some_and(|t| !t.is_empty()),
            "{} has no query",
            panel["title"]
        );
    }
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} uses no paymirror metric");
        for name in &names {
            assert!(
                exported_metric(name).is_some(),
                "{name} in {expr} is not exported"
            );
        }
        if expr.contains("histogram_quantile") {
            assert!(
                expr.contains("_bucket") && expr.contains("by (le"),
                "{expr}"
            );
        }
        used.extend(names);
    }
    for needed in [
        "paymirror_callbacks_total",
        "paymirror_platform_requests_total",
        "paymirror_platform_request_duration_seconds_bucket",
        "paymirror_http_request_duration_seconds_bucket",
        "paymirror_sync_jobs",
        "paymirror_platform_outage",
    ] {
        assert!(used.contains(needed), "no panel on {needed}");
    }
    check_dashboard_promql(&exprs);
}

/// Checks the dashboard's PromQL with promtool, as recording rules (Grafana's
/// `$__rate_interval` becomes `5m`).
fn check_dashboard_promql(exprs: &[String]) {
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        let expr = expr.replace("$__rate_interval", "5m");
        let quoted = serde_json::to_string(&expr).expect("a JSON string is a YAML string");
        rules.push_str(&format!(
            "      - record: dashboard:expr{n}\n        expr: {quoted}\n"
        ));
    }
    let path =
        std::env::temp_dir().join(format!("paymirror-dashboard-{}.yml", uuid::Uuid::new_v4()));
    std::fs::write(&path, rules).expect("temporary rules file");
    promtool(&["check", "rules", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(path);
}

/// Runs promtool when it is installed (Debian: `apt-get install prometheus`); the
/// other assertions hold without it.
fn promtool(args: &[&str]) {
    let Ok(output) = Command::new("promtool").args(args).output() else {
        eprintln!(
            "promtool not installed: skipped `promtool {}`",
            args.join(" ")
        );
        return;
    };
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
