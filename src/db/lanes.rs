//! The read lanes: a few connections held outside sqlx's pool for the hot reads (a
//! payment by id, a page of payments).
//!
//! sqlx pings a pooled connection every time it is given back (so that one left
//! mid-statement by a cancelled future is not reused): a second round trip for every
//! read, measured at about a tenth of the read's cost as deployed (BENCHMARKS.md). A
//! lane knows whether its read finished instead: a [`LaneConnection`] that is dropped
//! before [`LaneConnection::settle`] (the request was cancelled mid-statement) closes
//! its connection rather than keep it, and one whose connection failed is dropped
//! too. Like the pool, a lane idle for `database.ping_after_idle_ms`, or given back
//! before the last connection failure, is pinged before its next read
//! ([`super::needs_ping`]). A read that finds every lane busy waits for one, as it
//! would for a pooled connection, at most `database.acquire_timeout_ms`.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A lane's connection between reads, with when its last read finished.
struct Idle {
    conn: PgConnection,
    used: Instant,
}

/// Connections for the hot reads, held outside the pool; see the module docs.
pub struct Lanes {
    idle: Mutex<Vec<Idle>>,
    free: std::sync::Arc<Semaphore>,
    pool: PgPool,
    ping_after_idle: Duration,
    acquire_timeout: Duration,
}

/// A lane's connection for one read. Call [`LaneConnection::settle`] with the read's
/// result when it is done.
pub struct LaneConnection<'a> {
    lanes: &'a Lanes,
    /// Taken out only by `drop`.
    conn: Option<PgConnection>,
    _permit: OwnedSemaphorePermit,
    /// Settled with a result that leaves the connection fit for another read.
    keep: bool,
}

impl Lanes {
    /// `lanes` connections (at least one, opened on first use) beside `pool`, whose
    /// options they share; a read waits at most `acquire_timeout` for a free lane.
    pub fn new(
        pool: PgPool,
        lanes: u32,
        ping_after_idle: Duration,
        acquire_timeout: Duration,
    ) -> Lanes {
        Lanes {
            idle: Mutex::new(Vec::new()),
            free: std::sync::Arc::new(Semaphore::new(lanes.max(1) as usize)),
            pool,
            ping_after_idle,
            acquire_timeout,
        }
    }

    /// Returns a free lane's connection (opened, or pinged if due, as needed), waiting
    /// for one at most the acquire timeout (then `PoolTimedOut`, as the pool says).
    pub async fn acquire(&self) -> sqlx::Result<LaneConnection<'_>> {
        let permit =
            match tokio::time::timeout(self.acquire_timeout, self.free.clone().acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => return Err(sqlx::Error::PoolTimedOut),
            };
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(Idle { mut conn, used }) => {
                match super::ping_if_due(&mut conn, used.elapsed(), self.ping_after_idle).await {
                    Ok(()) => conn,
                    Err(_) => super::connect_outside_pool(&self.pool).await?,
                }
            }
            None => super::connect_outside_pool(&self.pool).await?,
        };
        Ok(LaneConnection {
            lanes: self,
            conn: Some(conn),
            _permit: permit,
            keep: false,
        })
    }

    /// Lanes holding an open connection between reads.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

impl LaneConnection<'_> {
    /// Records that the read finished with `result`: the lane's connection is kept
    /// for the next read unless the connection failed (then every idle connection
    /// becomes suspect, as for the pool).
    pub fn settle<T>(&mut self, result: &sqlx::Result<T>) {
        self.keep = match result {
            Err(e) => !super::note_failure(e),
            Ok(_) => true,
        };
    }
}

impl Drop for LaneConnection<'_> {
    /// Gives a settled lane's connection back; one not settled (its read was
    /// cancelled mid-statement, or failed the connection) is closed.
    fn drop(&mut self) {
        if !self.keep {
            return;
        }
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.lanes.idle.lock()) {
            idle.push(Idle {
                conn,
                used: Instant::now(),
            });
        }
    }
}

impl Deref for LaneConnection<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().unwrap_or_else(|| unreachable_taken())
    }
}

impl DerefMut for LaneConnection<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().unwrap_or_else(|| unreachable_taken())
    }
}

/// A lane's connection is taken out only by `drop`, after which nothing derefs it.
fn unreachable_taken() -> ! {
    unreachable!("a lane's connection used after it was given back")
}
