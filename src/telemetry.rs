//! Logging set-up: `tracing` to stderr as text or JSON, filtered by `RUST_LOG` or `log.level`.
//! Text has ANSI colours only on a terminal, and never with `NO_COLOR` set.
//!
//! Lines are written by a thread of their own, never on a request's path: a request
//! formats its line into a bounded queue ([`LOG_BUFFER_LINES`]) and goes on; the writer
//! thread drains the queue into a buffer and writes it to stderr in as few writes as
//! the queue allows. When stderr cannot keep up (a stalled log collector) and the
//! queue is full, new lines are **dropped, not waited for**: requests are never slowed
//! by logging. Dropped lines are counted in `paymirror_log_lines_dropped_total`.

use std::ffi::OsString;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Log lines queued for the writer thread at most; past it, new lines are dropped
/// and counted. At 200 bytes a line, a full queue is about 13 MiB.
pub const LOG_BUFFER_LINES: usize = 65_536;

/// The installed writer's count of dropped lines, and its thread's guard (dropping it
/// writes what is queued: [`finish`]).
static WRITER: OnceLock<ErrorCounter> = OnceLock::new();
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},sqlx=warn,hyper=info,reqwest=info",
            settings.level
        ))
    });
    let (writer, guard) = off_thread(std::io::stderr(), LOG_BUFFER_LINES);
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(wants_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    let installed = if settings.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        let _ = WRITER.set(dropped);
        if let Ok(mut kept) = GUARD.lock() {
            *kept = Some(guard);
        }
    }
}

/// A writer that queues up to `lines` lines for a thread of its own, which writes
/// them to `out` through a buffer flushed whenever the queue is empty; a line that
/// finds the queue full is dropped and counted ([`ErrorCounter`]).
fn off_thread<W: Write + Send + 'static>(out: W, lines: usize) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lines)
        .thread_name("paymirror-log")
        .finish(BufWriter::with_capacity(64 * 1024, out))
}

/// Log lines dropped since start because the writer's queue was full.
pub fn dropped_log_lines() -> u64 {
    WRITER
        .get()
        .map_or(0, |counter| counter.dropped_lines() as u64)
}

/// Writes every queued log line and stops the writer thread (waiting at most a
/// second). Called once, as the process ends: lines logged after it are dropped.
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
    use std::sync::mpsc;
    use std::sync::Arc;
    use tracing_subscriber::fmt::MakeWriter;

    /// Stands for a stderr nobody reads: each write waits until the test lets it go.
    struct Stalled {
        go: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.go.recv();
            if let Ok(mut written) = self.written.lock() {
                written.extend_from_slice(buf);
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_beyond_the_queue_are_dropped_and_counted_without_waiting() {
        let (release, go) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let stalled = Stalled {
            go,
            written: written.clone(),
        };
        // A buffer smaller than a line, so every line reaches the stalled writer.
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(4)
            .finish(BufWriter::with_capacity(1, stalled));
        let dropped = writer.error_counter();
        for n in 0..100 {
            // One write a line, as the formatter makes it; returns at once even
            // though nothing is being written.
            let _ = writer
                .make_writer()
                .write_all(format!("line {n}\n").as_bytes());
        }
        // The writer thread holds a line or two, the queue four: the rest dropped.
        assert!(
            dropped.dropped_lines() >= 90,
            "{} dropped",
            dropped.dropped_lines()
        );
        for _ in 0..200 {
            let _ = release.send(());
        }
        drop(guard);
        let written = written.lock().map(|w| w.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&written);
        assert!(text.starts_with("line 0\n"), "{text:?}");
        assert_eq!(
            text.lines().count() + dropped.dropped_lines(),
            100,
            "every line is either written or counted"
        );
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
