//! Payments: the upsert a sync ends in (a final status never replaced by a non-final
//! one), and the reads by id and by page, each with the presenting token's permissions.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::sync::LazyLock;

use sqlx::postgres::PgRow;
use sqlx::{Column, FromRow, PgConnection, Postgres, Row};

use crate::domain::JobState;
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::platform::PlatformPayment;

/// A payment with its sync state, as the API serves it: decoded by position from the
/// columns of [`PAYMENT_COLUMNS`], which come first in every select that reads one.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub merchant_code: String,
    pub kind: PaymentKind,
    pub id: PaymentId,
    pub status: Option<PaymentStatus>,
    pub is_final: bool,
    pub amount: Option<Decimal>,
    pub currency_code: Option<String>,
    pub fee_amount: Option<Decimal>,
    pub fee_currency_code: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// The platform's own time (`failureReasons.failedAt`), as the platform wrote it.
    pub failed_at: Option<String>,
    pub payment_method_code: Option<String>,
    pub is_test: Option<bool>,
    /// The platform's own time (`process.createdAt`), as the platform wrote it.
    ///
    /// The platform's times stay text, stored and served verbatim: a mirror must not
    /// reformat the platform's values (offsets, precision, or a value that is not a
    /// time at all). paymirror's own times (`first_seen_at`, `synced_at`, `updated_at`)
    /// are `DateTime<Utc>`.
    pub platform_created_at: Option<String>,
    /// The platform's own time (`process.processedAt`), as the platform wrote it.
    pub platform_processed_at: Option<String>,
    /// The platform's last answer as Postgres stores it, passed through unparsed.
    pub platform: Option<sqlx::types::Json<Box<RawValue>>>,
    pub first_seen_at: DateTime<Utc>,
    pub synced_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Where the payment's last change stands in commit order (the list cursor).
    pub position: i64,
    pub sync_state: Option<JobState>,
    pub sync_attempts: Option<i32>,
    pub sync_last_error: Option<String>,
}

/// Decodes column `index`, which must be `name`. By position rather than by name:
/// by name, sqlx hashes the name of each column of each row to find it (24 lookups a
/// payment, a twentieth of the CPU a page of 100 costs). Debug builds, and so every
/// test, check that the column at `index` is the one meant.
fn column<'r, T>(row: &'r PgRow, index: usize, name: &str) -> sqlx::Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    debug_assert_eq!(
        row.columns().get(index).map(|c| c.name()),
        Some(name),
        "PAYMENT_COLUMNS and PaymentRow's decoding disagree"
    );
    row.try_get(index)
}

impl<'r> FromRow<'r, PgRow> for PaymentRow {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        Ok(PaymentRow {
            merchant_code: column(row, 0, "merchant_code")?,
            kind: column(row, 1, "kind")?,
            id: column(row, 2, "id")?,
            status: column(row, 3, "status")?,
            is_final: column(row, 4, "final")?,
            amount: column(row, 5, "amount")?,
            currency_code: column(row, 6, "currency_code")?,
            fee_amount: column(row, 7, "fee_amount")?,
            fee_currency_code: column(row, 8, "fee_currency_code")?,
            failure_code: column(row, 9, "failure_code")?,
            failure_message: column(row, 10, "failure_message")?,
            failed_at: column(row, 11, "failed_at")?,
            payment_method_code: column(row, 12, "payment_method_code")?,
            is_test: column(row, 13, "is_test")?,
            platform_created_at: column(row, 14, "platform_created_at")?,
            platform_processed_at: column(row, 15, "platform_processed_at")?,
            platform: column(row, 16, "platform")?,
            first_seen_at: column(row, 17, "first_seen_at")?,
            synced_at: column(row, 18, "synced_at")?,
            updated_at: column(row, 19, "updated_at")?,
            position: column(row, 20, "position")?,
            sync_state: column(row, 21, "sync_state")?,
            sync_attempts: column(row, 22, "sync_attempts")?,
            sync_last_error: column(row, 23, "sync_last_error")?,
        })
    }
}

/// The columns of a [`PaymentRow`], in the order it decodes them.
pub(super) const PAYMENT_COLUMNS: &str =
    "p.merchant_code, p.kind, p.id, p.status, p.final, p.amount,
    p.currency_code, p.fee_amount, p.fee_currency_code, p.failure_code, p.failure_message,
    p.failed_at, p.payment_method_code, p.is_test, p.platform_created_at, p.platform_processed_at,
    p.platform, p.first_seen_at, p.synced_at, p.updated_at, p.position,
    j.state as sync_state, j.attempts as sync_attempts, j.last_error as sync_last_error";

/// Each payment with its sync job, found by the job's whole key. The `offset 0` keeps
/// the subquery from being flattened into a join: without statistics (a database
/// created minutes ago) the planner would otherwise walk every job of the merchant and
/// kind per payment and filter on the id, since it sees `merchant_code` and `kind`
/// equal to the statement's parameters.
pub(super) const PAYMENTS_WITH_JOBS: &str = "from payments p
  left join lateral (select state, attempts, last_error from sync_jobs sj
                     where sj.merchant_code = p.merchant_code and sj.kind = p.kind
                       and sj.payment_id = p.id
                     offset 0) j on true";

/// The select of one payment by `$1` merchant, `$2` kind, `$3` id.
pub static FIND_PAYMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {PAYMENT_COLUMNS} {PAYMENTS_WITH_JOBS}
         where p.merchant_code = $1 and p.kind = $2 and p.id = $3"
    )
});

/// What storing a platform answer changed.
#[derive(Debug, Clone, Copy)]
pub struct Upserted {
    /// The status differs from the one stored before (a history row was added).
    pub status_changed: bool,
    pub first_seen_at: DateTime<Utc>,
    /// A stale read: the payment is final and the answer was not, so nothing was stored.
    pub stale: bool,
    /// The platform's document differs from the one stored before.
    pub document_changed: bool,
    /// The history row added for a status change, to publish with [`publish_changes`](super::publish_changes).
    pub history_seq: Option<i64>,
}

/// Stores the platform's answer over the payment's previous state, in the caller's
/// transaction, and appends to the history when the status changed. A final status
/// is never replaced by a non-final one: such a stale read stores nothing.
/// Returns `None` if paymirror has no row for the payment (it always has one once a
/// sync was scheduled).
pub async fn upsert_payment(
    conn: &mut PgConnection,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
    payment: &PlatformPayment,
) -> sqlx::Result<Option<Upserted>> {
    let s = &payment.snapshot;
    let previous: Option<(Option<PaymentStatus>, DateTime<Utc>, bool)> = sqlx::query_as(
        "update payments p set
           status = $4, final = $5, amount = $6, currency_code = $7, fee_amount = $8,
           fee_currency_code = $9, failure_code = $10, failure_message = $11, failed_at = $12,
           payment_method_code = $13, is_test = $14, platform_created_at = $15,
           platform_processed_at = $16, platform = $17, synced_at = now(),
           updated_at = case when p.platform is distinct from $17 then now() else p.updated_at end
         from (select status, final, platform from payments
               where merchant_code = $1 and kind = $2 and id = $3 for update) old
         where p.merchant_code = $1 and p.kind = $2 and p.id = $3 and (not old.final or $5)
         returning old.status, p.first_seen_at, old.platform is distinct from $17",
    )
    .bind(merchant_code)
    .bind(kind.as_str())
    .bind(id.as_str())
    .bind(s.status.as_str())
    .bind(s.status.is_final())
    .bind(s.amount.as_ref().map(|m| m.amount))
    .bind(s.amount.as_ref().map(|m| m.currency_code.as_str()))
    .bind(s.fee.as_ref().map(|m| m.amount))
    .bind(s.fee.as_ref().map(|m| m.currency_code.as_str()))
    .bind(
        s.failure
            .as_ref()
            .and_then(|f| f.failure_reason_code.as_deref()),
    )
    .bind(s.failure.as_ref().and_then(|f| f.message.as_deref()))
    .bind(s.failure.as_ref().and_then(|f| f.failed_at.as_deref()))
    .bind(s.payment_method_code.as_deref())
    .bind(s.is_test)
    .bind(s.created_at.as_deref())
    .bind(s.processed_at.as_deref())
    .bind(sqlx::types::Json(&payment.raw))
    .fetch_optional(&mut *conn)
    .await?;

    let Some((old_status, first_seen_at, document_changed)) = previous else {
        return stale_or_missing(conn, merchant_code, kind, id).await;
    };
    let changed = old_status.as_ref() != Some(&s.status);
    let history_seq = if changed {
        let seq: i64 = sqlx::query_scalar(
            "insert into payment_status_history (merchant_code, kind, payment_id, status, previous_status)
             values ($1, $2, $3, $4, $5)
             returning seq",
        )
        .bind(merchant_code)
        .bind(kind.as_str())
        .bind(id.as_str())
        .bind(&s.status)
        .bind(&old_status)
        .fetch_one(&mut *conn)
        .await?;
        Some(seq)
    } else {
        None
    };
    Ok(Some(Upserted {
        status_changed: changed,
        first_seen_at,
        stale: false,
        document_changed,
        history_seq,
    }))
}

/// Nothing was updated: either the payment is final and the answer was not (stale),
/// or there is no row at all.
async fn stale_or_missing(
    conn: &mut PgConnection,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Option<Upserted>> {
    let first_seen_at: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select first_seen_at from payments where merchant_code = $1 and kind = $2 and id = $3",
    )
    .bind(merchant_code)
    .bind(kind.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(first_seen_at.map(|first_seen_at| Upserted {
        status_changed: false,
        first_seen_at,
        stale: true,
        document_changed: false,
        history_seq: None,
    }))
}

/// Returns the payment, or `None` if paymirror never heard of it.
pub async fn find_payment(
    db: impl sqlx::PgExecutor<'_>,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Option<PaymentRow>> {
    fetch_by_key(db, &FIND_PAYMENT, merchant_code, kind, id).await
}

/// Runs a select of one payment by `$1` merchant, `$2` kind, `$3` id.
pub(super) async fn fetch_by_key<T>(
    db: impl sqlx::PgExecutor<'_>,
    sql: &str,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Option<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(sql)
        .bind(merchant_code)
        .bind(kind.as_str())
        .bind(id.as_str())
        .fetch_optional(db)
        .await
}

/// What a page of payments is restricted to; `after` is the cursor: a position in
/// commit order (see [`publish_changes`](super::publish_changes)).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Empty: any status.
    pub statuses: Vec<PaymentStatus>,
    pub updated_after: Option<DateTime<Utc>>,
    pub after: Option<i64>,
    pub limit: i64,
}

/// The page query of [`list_payments`]: `$1` merchants, `$2` kind, `$3` statuses,
/// `$4` updated after, `$5` cursor, `$6` limit. Each merchant's page is read on its
/// own (the index's order, at most `$6` rows each) and the pages merged: an `= any`
/// over the merchants would read every payment of theirs after the cursor to sort it.
pub static LIST_PAYMENTS: LazyLock<String> = LazyLock::new(|| list_statement(PAYMENT_COLUMNS));

/// The page query, selecting `columns` (`x.position` among them) of each payment.
pub(super) fn list_statement(columns: &str) -> String {
    format!(
        "select x.* from unnest($1::text[]) as m(code)
         cross join lateral (
           select {columns} {PAYMENTS_WITH_JOBS}
           where p.merchant_code = m.code and p.kind = $2
             and (cardinality($3::text[]) = 0 or p.status = any($3))
             and ($4::timestamptz is null or p.updated_at > $4)
             and p.position > $5
           order by p.position
           limit $6) x
         order by x.position
         limit $6"
    )
}

/// Returns up to `limit` payments of `merchants` in the order they last changed
/// (commit order), after the cursor.
pub async fn list_payments(
    db: impl sqlx::PgExecutor<'_>,
    merchants: &[impl AsRef<str>],
    kind: PaymentKind,
    filter: &ListFilter,
) -> sqlx::Result<Vec<PaymentRow>> {
    fetch_page(db, &LIST_PAYMENTS, merchants, kind, filter).await
}

/// Runs a page query made by [`list_statement`] with the page's parameters.
pub(super) async fn fetch_page<T>(
    db: impl sqlx::PgExecutor<'_>,
    sql: &str,
    merchants: &[impl AsRef<str>],
    kind: PaymentKind,
    filter: &ListFilter,
) -> sqlx::Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let merchants: Vec<&str> = merchants.iter().map(AsRef::as_ref).collect();
    sqlx::query_as(sql)
        .bind(&merchants)
        .bind(kind.as_str())
        .bind(&filter.statuses)
        .bind(filter.updated_after)
        .bind(filter.after.unwrap_or(0))
        .bind(filter.limit)
        .fetch_all(db)
        .await
}
