//! Logging set-up: `tracing` to stderr as text or JSON, filtered by `RUST_LOG` or `log.level`.
//! Text has ANSI colours only on a terminal, and never with `NO_COLOR` set. It is
//! written by [`plain`]: tracing's default text format, without its styling calls
//! when there are no colours.
//!
//! Lines are written by a thread of their own, never on a request's path: a request
//! formats its line into a bounded buffer ([`LOG_BUFFER_BYTES`]) and goes on; the
//! writer thread writes the buffer to stderr every few milliseconds ([`writer`]).
//! When stderr cannot keep up (a stalled log collector) and the buffer is full, new
//! lines are **dropped, not waited for**: requests are never slowed by logging.
//! Dropped lines are counted in `paymirror_log_lines_dropped_total`.

mod plain;
mod writer;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Bytes of log lines buffered for the writer thread at most; past it, new lines are
/// dropped and counted. At about 200 bytes a line, 80,000 lines: four seconds of
/// access log at full callback load, for a log collector that stalls.
pub const LOG_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// The installed writer (its count of dropped lines), and its thread's guard
/// (dropping it writes what is buffered: [`finish`]).
static WRITER: OnceLock<writer::LineWriter> = OnceLock::new();
static GUARD: Mutex<Option<writer::Guard>> = Mutex::new(None);

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},sqlx=warn,hyper=info,reqwest=info",
            settings.level
        ))
    });
    let ansi = wants_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(Clock)
        .with_ansi(ansi);
    let json = settings.format == "json";
    match writer::spawn(std::io::stderr(), LOG_BUFFER_BYTES) {
        Ok((writer, guard)) => {
            if install(builder.with_writer(writer.clone()), json) {
                let _ = WRITER.set(writer);
                if let Ok(mut kept) = GUARD.lock() {
                    *kept = Some(guard);
                }
            }
        }
        Err(e) => {
            // No thread to spare: lines are written on the caller's path instead.
            if install(builder.with_writer(std::io::stderr), json) {
                tracing::warn!(error = %e, "no log writer thread; logging on the callers' path");
            }
        }
    }
}

/// Installs `builder` as the global subscriber, as JSON lines or text ([`plain`]);
/// returns whether it was installed (not if one already was).
fn install<W>(
    builder: tracing_subscriber::fmt::SubscriberBuilder<
        tracing_subscriber::fmt::format::DefaultFields,
        tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, Clock>,
        EnvFilter,
        W,
    >,
    json: bool,
) -> bool
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let installed = if json {
        builder.json().try_init()
    } else {
        builder
            .fmt_fields(plain::PlainFields)
            .event_format(plain::PlainLine::new(Clock))
            .try_init()
    };
    installed.is_ok()
}

/// The lines' timestamps, as tracing's default writes them (`2026-12-07T04:11:04.740455Z`,
/// UTC, microseconds), with the part before the fraction formatted once a second per
/// thread rather than on every line (a visible part of each access-log line's cost in
/// a profile, BENCHMARKS.md stop 27).
#[derive(Clone, Copy)]
struct Clock;

thread_local! {
    /// The second last formatted on this thread, and its text up to the fraction.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

impl tracing_subscriber::fmt::time::FormatTime for Clock {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        SECOND.with_borrow_mut(|(second, text)| {
            if *second != now.as_secs() {
                text.clear();
                let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
                if let Some(at) = chrono::DateTime::from_timestamp(secs, 0) {
                    use std::fmt::Write as _;
                    write!(text, "{}", at.format("%Y-%m-%dT%H:%M:%S"))?;
                }
                *second = now.as_secs();
            }
            write!(w, "{text}.{:06}Z", now.subsec_micros())
        })
    }
}

/// Log lines dropped since start because the writer's buffer was full.
pub fn dropped_log_lines() -> u64 {
    WRITER.get().map_or(0, writer::LineWriter::dropped)
}

/// Writes every buffered log line and stops the writer thread. Called once, as the
/// process ends: lines logged after it are dropped.
pub fn finish() {
    let guard = GUARD.lock().ok().and_then(|mut kept| kept.take());
    drop(guard);
}

/// Returns whether log text gets ANSI colours: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string (no-color.org). On a pipe or
/// in a file (a container's log driver) escapes would be noise for grep and parsers.
fn wants_colour(stderr_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutdown signal received; draining");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds_as_before() {
        use tracing_subscriber::fmt::time::FormatTime;
        let format = |timer: &dyn FormatTime| {
            let mut text = String::new();
            timer
                .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut text))
                .expect("formatted");
            text
        };
        for _ in 0..3 {
            let (before, ours, after) = (
                format(&tracing_subscriber::fmt::time::SystemTime),
                format(&Clock),
                format(&tracing_subscriber::fmt::time::SystemTime),
            );
            assert_eq!(ours.len(), "2026-12-07T04:11:04.740455Z".len(), "{ours}");
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(wants_colour(true, None));
        assert!(wants_colour(true, Some(OsString::new())));
        assert!(!wants_colour(true, Some("1".into())));
        assert!(!wants_colour(false, None));
        assert!(!wants_colour(false, Some("1".into())));
    }
}
