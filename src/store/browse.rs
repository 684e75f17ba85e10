//! Queries for people browsing rather than machines syncing (the operator console):
//! payments of either kind newest change first, filtered by id prefix, status and
//! sync state; and the newest status changes.

use sqlx::PgPool;

use super::payments::{PAYMENTS_WITH_JOBS, PAYMENT_COLUMNS};
use super::{Change, PaymentRow};
use crate::domain::JobState;
use crate::domain::{PaymentKind, PaymentStatus};

/// What a page of [`search_payments`] is restricted to; `before` is the keyset cursor
/// (a position in commit order: the page holds payments that last changed before it).
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub id_prefix: Option<String>,
    pub kind: Option<PaymentKind>,
    pub status: Option<PaymentStatus>,
    pub sync_state: Option<JobState>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Returns up to `limit` payments matching `search`, the latest change first.
pub async fn search_payments(
    pool: &PgPool,
    merchant_code: &str,
    search: &Search,
) -> sqlx::Result<Vec<PaymentRow>> {
    sqlx::query_as(&format!(
        "select {PAYMENT_COLUMNS} {PAYMENTS_WITH_JOBS}
         where p.merchant_code = $1
           and ($2::text is null or p.kind = $2)
           and ($3::text is null or p.status = $3)
           and ($4::text is null or j.state = $4)
           and ($5::text is null or starts_with(p.id, $5))
           and ($6::bigint is null or p.position < $6)
         order by p.position desc
         limit $7"
    ))
    .bind(merchant_code)
    .bind(search.kind.map(PaymentKind::as_str))
    .bind(search.status.as_ref())
    .bind(search.sync_state.map(JobState::as_str))
    .bind(search.id_prefix.as_deref())
    .bind(search.before)
    .bind(search.limit)
    .fetch_all(pool)
    .await
}

/// Returns the newest `limit` status changes, newest first.
pub async fn latest_changes(
    pool: &PgPool,
    merchant_code: &str,
    limit: i64,
) -> sqlx::Result<Vec<Change>> {
    sqlx::query_as(
        "select position, merchant_code, kind, payment_id as id, status, previous_status, observed_at
         from payment_status_history
         where merchant_code = $1
         order by position desc
         limit $2",
    )
    .bind(merchant_code)
    .bind(limit)
    .fetch_all(pool)
    .await
}
