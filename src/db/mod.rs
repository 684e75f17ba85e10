//! What a database error means: for the row that caused it, and for the connections;
//! when a connection is pinged; and the read lanes (connections held outside the pool).

mod lanes;
pub mod notices;

pub use lanes::{LaneConnection, Lanes};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// When a connection last failed, in microseconds after [`START`]; 0: never.
static SUSPECT_SINCE_US: AtomicU64 = AtomicU64::new(0);
static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Whether `e` says the connection failed (lost, closed by the server, shut down),
/// rather than the statement.
pub fn connection_failed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // 08: connection exception; 57P: the server shutting down or terminating us.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Marks the connections suspect if `e` says a connection failed; returns whether it did.
pub fn note_failure(e: &sqlx::Error) -> bool {
    let failed = connection_failed(e);
    if failed {
        suspect_connections();
    }
    failed
}

/// Pings `conn` if [`needs_ping`] says so for a connection idle for `idle_for`; a ping
/// that fails marks every connection suspect.
pub async fn ping_if_due(
    conn: &mut sqlx::PgConnection,
    idle_for: Duration,
    ping_after_idle: Duration,
) -> sqlx::Result<()> {
    if !needs_ping(idle_for, ping_after_idle) {
        return Ok(());
    }
    let pinged = sqlx::Connection::ping(conn).await;
    if pinged.is_err() {
        suspect_connections();
    }
    pinged
}

/// Records that a connection to Postgres failed: every pooled connection given back
/// before now is pinged before its next use, however recently it was used.
pub fn suspect_connections() {
    let since = u64::try_from(START.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    SUSPECT_SINCE_US.fetch_max(since, Ordering::Relaxed);
}

/// Whether a pooled connection idle for `idle_for` must be pinged before it is handed
/// out: when idle for `ping_after_idle` or more (it may have been cut off meanwhile),
/// or when given back before the last connection failure (the server may have gone
/// away since). A connection in steady use otherwise goes without the round trip.
pub fn needs_ping(idle_for: Duration, ping_after_idle: Duration) -> bool {
    let given_back = START.elapsed().saturating_sub(idle_for);
    let suspect_since = SUSPECT_SINCE_US.load(Ordering::Relaxed);
    ping_due(idle_for, ping_after_idle, given_back, suspect_since)
}

/// [`needs_ping`] on explicit times (after [`START`]; `suspect_since_us` 0: never).
fn ping_due(
    idle_for: Duration,
    ping_after_idle: Duration,
    given_back: Duration,
    suspect_since_us: u64,
) -> bool {
    idle_for >= ping_after_idle
        || (suspect_since_us != 0 && given_back <= Duration::from_micros(suspect_since_us))
}

/// Opens a connection with `pool`'s options, outside it. Failing to, the server may
/// have gone away: the pool's connections become suspect (see [`needs_ping`]).
pub async fn connect_outside_pool(pool: &sqlx::PgPool) -> sqlx::Result<sqlx::PgConnection> {
    let connected =
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&pool.connect_options()).await;
    if connected.is_err() {
        suspect_connections();
    }
    connected
}

/// Returns the SQLSTATE when Postgres refused the *data* of a statement (a data
/// exception, an integrity or a program-limit violation): the same rows would be
/// refused again, while other rows would not. `None` for everything else
/// (connection lost, timeouts, the server shutting down), which may pass on retry.
pub fn refused_data(e: &sqlx::Error) -> Option<String> {
    let code = e.as_database_error()?.code()?;
    matches!(&code[..2], "22" | "23" | "54").then(|| code.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_database_answers_about_data_count() {
        assert_eq!(refused_data(&sqlx::Error::PoolTimedOut), None);
        assert_eq!(refused_data(&sqlx::Error::RowNotFound), None);
    }

    #[test]
    fn a_connection_is_pinged_after_an_idle_spell_or_when_given_back_before_a_failure() {
        let window = Duration::from_millis(500);
        let (hot, at) = (Duration::from_millis(1), Duration::from_secs);
        assert!(ping_due(Duration::from_secs(1), window, at(10), 0));
        assert!(!ping_due(hot, window, at(10), 0), "no failure seen");
        assert!(
            ping_due(hot, window, at(10), 11_000_000),
            "given back before"
        );
        assert!(
            !ping_due(hot, window, at(12), 11_000_000),
            "given back after"
        );
        assert!(connection_failed(&sqlx::Error::Io(std::io::Error::other(
            "reset"
        ))));
        assert!(!connection_failed(&sqlx::Error::PoolTimedOut));
        assert!(!connection_failed(&sqlx::Error::RowNotFound));
    }
}
