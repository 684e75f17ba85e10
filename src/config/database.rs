//! Connecting to Postgres as the configuration says: the options of every session and
//! the pool of the service's connections.

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::DatabaseSettings;

impl DatabaseSettings {
    pub fn connect_options(&self) -> anyhow::Result<PgConnectOptions> {
        self.url.expose_secret().parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid configuration key database.url (DATABASE_URL): not a Postgres URL"
            )
        })
    }

    /// Connections of the pool: `max_connections` less the read lanes, at least one.
    pub fn pool_size(&self) -> u32 {
        self.max_connections.saturating_sub(self.read_lanes).max(1)
    }

    /// Returns a lazily connecting pool: start-up does not fail if Postgres is briefly away.
    ///
    /// Every session gets a `statement_timeout`, an idle-in-transaction timeout and
    /// server-side TCP keepalives, so neither side waits forever on the other across a
    /// failover. Prepared statements always run their generic plan: every hot statement
    /// is written to be index-driven whatever its parameters (the `explain` tests check
    /// those plans at a million rows), and Postgres would otherwise plan the list page
    /// anew on every request (about a sixth of its time serving it). (sqlx 0.8 offers no client-side TCP keepalive: the callback writers
    /// and the sync heartbeat put deadlines on their own database calls instead.)
    pub fn pool(&self) -> anyhow::Result<PgPool> {
        let statement_timeout = format!("{}ms", self.statement_timeout.as_millis());
        let idle_timeout = format!("{}ms", self.statement_timeout.as_millis().saturating_mul(3));
        let options = self.connect_options()?.options([
            ("statement_timeout", statement_timeout.as_str()),
            ("idle_in_transaction_session_timeout", idle_timeout.as_str()),
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            ("plan_cache_mode", "force_generic_plan"),
        ]);
        let ping_after_idle = self.ping_after_idle;
        Ok(PgPoolOptions::new()
            // sqlx pings every connection it hands out: a round trip before each
            // request's one statement. Only a connection that sat idle, or was given
            // back before a connection failure, is pinged (`db::needs_ping`).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    crate::db::ping_if_due(conn, meta.idle_for, ping_after_idle).await?;
                    Ok(true)
                })
            })
            // The read lanes hold the rest of `max_connections` (`db::Lanes`).
            .max_connections(self.pool_size())
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options))
    }
}
