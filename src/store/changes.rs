//! The change feed: every status change in commit order, and the signal that wakes
//! readers waiting for the next one.
//!
//! A sync takes its positions (`payment_status_history.position` for the feed,
//! `payments.position` for the lists) under one advisory lock, as the last thing
//! before it commits. Postgres makes a transaction visible before it releases its
//! locks, so positions become visible in the order they were taken: once a reader
//! sees position N, every position below N is committed (or rolled back, a gap).
//! A cursor never passes a change still to commit.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Upserted;
use crate::db::notices::{Heard, Hearer};
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};

/// Postgres channel notified when changes commit.
pub const CHANGES_CHANNEL: &str = "paymirror_changes";
/// The advisory lock that orders positions ("paymir" + 1).
const POSITION_LOCK: i64 = 0x7061_796d_6972_0001;

pub const PUBLISH: &str = "with h as (
       update payment_status_history set position = nextval('change_positions')
       where seq = $4 returning 1
     ), p as (
       update payments set position = nextval('payment_positions')
       where merchant_code = $1 and kind = $2 and id = $3 returning 1
     )
     select pg_notify($5, '') where $4::bigint is not null";

pub const LIST_CHANGES: &str = "select x.* from unnest($1::text[]) as m(code)
     cross join lateral (
       select position, merchant_code, kind, payment_id as id, status, previous_status,
              observed_at
       from payment_status_history
       where merchant_code = m.code and position > $2
       order by position
       limit $3) x
     order by x.position
     limit $3";

/// One status change, as the feed serves it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    #[serde(skip)]
    pub position: i64,
    pub merchant_code: String,
    pub kind: PaymentKind,
    #[schema(value_type = String)]
    pub id: PaymentId,
    #[schema(value_type = String)]
    pub status: PaymentStatus,
    #[schema(required = true, value_type = Option<String>)]
    pub previous_status: Option<PaymentStatus>,
    pub observed_at: DateTime<Utc>,
}

/// Gives what a sync changed its commit-ordered positions and wakes feed readers at
/// commit. Call it last in the sync's transaction: the lock it takes is held until
/// the commit, so keep what follows it short.
pub async fn publish_changes(
    conn: &mut PgConnection,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
    upserted: &Upserted,
) -> sqlx::Result<()> {
    if upserted.history_seq.is_none() && !upserted.document_changed {
        return Ok(());
    }
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(POSITION_LOCK)
        .execute(&mut *conn)
        .await?;
    sqlx::query(PUBLISH)
        .bind(merchant_code)
        .bind(kind.as_str())
        .bind(id.as_str())
        .bind(upserted.history_seq)
        .bind(CHANGES_CHANNEL)
        .fetch_all(&mut *conn)
        .await?;
    Ok(())
}

/// Returns up to `limit` changes after position `after`, oldest first.
pub async fn list_changes(
    pool: &PgPool,
    merchants: &[impl AsRef<str>],
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<Change>> {
    let merchants: Vec<&str> = merchants.iter().map(AsRef::as_ref).collect();
    sqlx::query_as(LIST_CHANGES)
        .bind(&merchants)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Wakes the requests of this process waiting for changes, from one LISTEN
/// connection. Cheap to clone.
#[derive(Clone, Default)]
pub struct ChangeSignal {
    notify: Arc<Notify>,
    stopping: CancellationToken,
}

impl ChangeSignal {
    /// Returns a future that resolves at the next change committed after this call
    /// (enable it before querying, so a change between the query and the wait is not missed).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Resolves when the process shuts down: waiting requests answer at once, so a
    /// long poll never holds up a graceful shutdown.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }
}

impl Hearer for ChangeSignal {
    /// Wakes the waiters on a change and on listening (again), since changes may have
    /// come meanwhile; at a stop, answers them at once.
    fn heard(&self, heard: Heard) {
        match heard {
            Heard::Connected | Heard::Notice => self.notify.notify_waiters(),
            Heard::Lost => {}
            Heard::Stopped => self.stopping.cancel(),
        }
    }
}
