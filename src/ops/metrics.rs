//! The catalogue of every metric the service exports (name, type, HELP text, buckets)
//! and the Prometheus recorder built from it.
//!
//! Every histogram is a Prometheus histogram with explicit buckets, never a summary:
//! bucket counts add up across replicas, quantiles do not.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// What a series is, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeriesType {
    Counter,
    Gauge,
    /// A histogram with these upper bounds (`le`), ascending.
    Histogram(&'static [f64]),
}

/// One metric the service exports.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub name: &'static str,
    pub series_type: SeriesType,
    pub help: &'static str,
}

/// Upper bounds for request and sync latencies, in seconds: from a fast local answer
/// to a long-poll's 30 s and beyond.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Upper bounds for callbacks per inbox commit (`inbox.batch_size` is 512 by default).
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Upper bounds for the time to store one inbox batch, in seconds: from a commit on a
/// quiet local disk (a fraction of a millisecond) to `inbox.commit_timeout_ms` (5 s).
pub const COMMIT_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

const fn counter(name: &'static str, help: &'static str) -> Series {
    Series {
        name,
        series_type: SeriesType::Counter,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Series {
    Series {
        name,
        series_type: SeriesType::Gauge,
        help,
    }
}

const fn histogram(name: &'static str, buckets: &'static [f64], help: &'static str) -> Series {
    Series {
        name,
        series_type: SeriesType::Histogram(buckets),
        help,
    }
}

/// Every series of the service. A metric recorded anywhere in `src/` must be listed
/// here (a test greps the code for them), so each has HELP text and, if a histogram,
/// buckets.
pub const SERIES: &[Series] = &[
    counter("paymirror_http_requests_total", "HTTP requests answered, by method, matched route template and status."),
    histogram("paymirror_http_request_duration_seconds", LATENCY_BUCKETS, "Time to answer an HTTP request (until the response headers), by method and matched route template."),
    counter("paymirror_http_connection_errors_total", "Client connections closed with an error (header read timeout, malformed request, other)."),
    counter("paymirror_http_shed_total", "Callbacks answered 503 because server.callback_concurrency were in flight for server.callback_queue_ms (the platform retries them)."),
    counter("paymirror_callbacks_total", "Callbacks received, by kind, outcome (accepted or ignored) and result (stored; refused: the database refused this callback's data; failed: answered 503, the platform retries)."),
    histogram("paymirror_inbox_batch_size", BATCH_BUCKETS, "Callbacks committed per inbox transaction."),
    histogram("paymirror_inbox_commit_seconds", COMMIT_BUCKETS, "Time to store one inbox batch: its statement and commit, as the writer waits for them (every callback of the batch waits as long), splits and retries included."),
    counter("paymirror_inbox_writer_restarts_total", "Callback writers restarted after a panic."),
    counter("paymirror_platform_requests_total", "Requests sent to the platform, by route and answer status (\"error\": no answer)."),
    histogram("paymirror_platform_request_duration_seconds", LATENCY_BUCKETS, "Time from sending a platform request to its answer's headers, by route."),
    counter("paymirror_platform_config_errors_total", "Platform answers 403 or 406: our credentials or merchant are refused, a configuration problem."),
    gauge("paymirror_platform_outage", "1 while this replica sees the platform failing every request (probing until it answers), else 0. Per replica: aggregate with max."),
    counter("paymirror_platform_outages_total", "Platform outages this replica has entered."),
    counter("paymirror_syncs_total", "Sync jobs processed, by outcome (synced, retrying, dead, paused, leaselost)."),
    histogram("paymirror_sync_seconds", LATENCY_BUCKETS, "Time to process one sync job: fetch, store and record."),
    counter("paymirror_stale_reads_total", "Platform answers older than the stored final status: logged and counted, never stored."),
    counter("paymirror_dead_syncs_total", "Syncs that gave up (see `paymirror syncs dead`)."),
    gauge("paymirror_sync_jobs", "Sync jobs of this merchant by state (pending, running, dead), read from Postgres at scrape time. Cluster-wide: every replica reports the same value, aggregate with max, not sum."),
    counter("paymirror_log_lines_dropped_total", "Log lines dropped because the log writer's buffer (16 MiB) was full: stderr did not keep up. Requests never wait for logging."),
    gauge("paymirror_oldest_due_sync_seconds", "How late the oldest due pending sync is, read from Postgres at scrape time. Cluster-wide: every replica reports the same value, aggregate with max, not sum."),
];

/// Returns the catalogue entry of `name`, if the service exports it.
pub fn series(name: &str) -> Option<&'static Series> {
    SERIES.iter().find(|s| s.name == name)
}

/// Drains the recorder's histogram samples into their buckets every `interval` until
/// `cancel` fires. Without it the samples pile up between scrapes, and forever on a
/// replica nobody scrapes.
pub async fn keep_up(
    handle: PrometheusHandle,
    interval: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    crate::background::every(interval, &cancel, || async { handle.run_upkeep() }).await;
}

/// The process-wide Prometheus recorder, installed on first use (tests build many apps),
/// with explicit buckets for every histogram and HELP text for every series.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = builder().unwrap_or_else(|e| {
                tracing::error!(error = %e, "histogram buckets refused; histograms become summaries");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program); then ours stays empty.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            handle
        })
        .clone()
}

/// A builder with every catalogued histogram's buckets; a histogram missing from the
/// catalogue still gets [`LATENCY_BUCKETS`] rather than becoming a summary.
/// Fails only on an empty bucket list (a unit test checks there is none).
fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS)?;
    for s in SERIES {
        if let SeriesType::Histogram(buckets) = s.series_type {
            builder = builder.set_buckets_for_metric(Matcher::Full(s.name.to_owned()), buckets)?;
        }
    }
    Ok(builder)
}

/// Gives every catalogued series its HELP text in the installed recorder.
fn describe_metrics() {
    for s in SERIES {
        match s.series_type {
            SeriesType::Counter => metrics::describe_counter!(s.name, s.help),
            SeriesType::Gauge => metrics::describe_gauge!(s.name, s.help),
            SeriesType::Histogram(_) => metrics::describe_histogram!(s.name, s.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_buckets_ascend() {
        for (i, s) in SERIES.iter().enumerate() {
            assert!(s.name.starts_with("paymirror_"), "{}", s.name);
            assert!(!s.help.is_empty(), "{}", s.name);
            assert!(
                SERIES[i + 1..].iter().all(|o| o.name != s.name),
                "{} twice",
                s.name
            );
            if let SeriesType::Histogram(buckets) = s.series_type {
                assert!(!buckets.is_empty(), "{}", s.name);
                assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{}", s.name);
            }
        }
        assert!(builder().is_ok());
    }

    #[test]
    fn counters_end_in_total_and_nothing_else_does() {
        for s in SERIES {
            let is_counter = s.series_type == SeriesType::Counter;
            assert_eq!(is_counter, s.name.ends_with("_total"), "{}", s.name);
        }
    }
}
