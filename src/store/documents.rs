//! Payment documents as stored: the text that the `payments_document` trigger keeps
//! beside each payment (migration `20261207000001`), read with the sync job's state,
//! which the reader splices in; and the backfill of the rows written before it.
//!
//! The trigger computes the document in the database from the row itself, so any
//! writer (an older release during a rolling deploy, an operator's SQL) keeps it
//! true. A read that finds no document (a row the backfill has not reached yet) is
//! served the old way, from [`find_payment`](super::find_payment) / [`list_payments`](super::list_payments).

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use tokio_util::sync::CancellationToken;

use super::payments::{fetch_by_key, fetch_page, list_statement, PAYMENTS_WITH_JOBS};
use super::ListFilter;
use crate::domain::{JobState, PaymentId, PaymentKind};

/// A payment's stored document and its sync job's state.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    /// Decoded, though the document holds it, so that a row whose id does not parse
    /// (written by hand) fails as every other read of it does, rather than being
    /// served against the published contract.
    pub id: PaymentId,
    /// The payment's JSON object without `sync`; `None` for a row written before the
    /// documents were kept and not yet backfilled.
    pub document: Option<String>,
    /// Where the payment stands in commit order (a page's cursor).
    pub position: i64,
    pub sync_state: Option<JobState>,
    pub sync_attempts: Option<i32>,
    pub sync_last_error: Option<String>,
}

/// The columns of [`StoredDocument`], in its order.
const DOCUMENT_COLUMNS: &str = "p.id, p.document, p.position,
    j.state as sync_state, j.attempts as sync_attempts, j.last_error as sync_last_error";

impl<'r> FromRow<'r, PgRow> for StoredDocument {
    /// By position: the columns of [`DOCUMENT_COLUMNS`].
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        Ok(StoredDocument {
            id: row.try_get(0)?,
            document: row.try_get(1)?,
            position: row.try_get(2)?,
            sync_state: row.try_get(3)?,
            sync_attempts: row.try_get(4)?,
            sync_last_error: row.try_get(5)?,
        })
    }
}

/// The document of one payment by `$1` merchant, `$2` kind, `$3` id.
pub static FIND_DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {DOCUMENT_COLUMNS} {PAYMENTS_WITH_JOBS}
         where p.merchant_code = $1 and p.kind = $2 and p.id = $3"
    )
});

/// A page of documents: the page query of [`list_payments`](super::list_payments).
pub static LIST_DOCUMENTS: LazyLock<String> = LazyLock::new(|| list_statement(DOCUMENT_COLUMNS));

/// Returns the payment's stored document, or `None` if paymirror never heard of it.
pub async fn find_document(
    db: impl sqlx::PgExecutor<'_>,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Option<StoredDocument>> {
    fetch_by_key(db, &FIND_DOCUMENT, merchant_code, kind, id).await
}

/// Returns the documents of the page [`list_payments`](super::list_payments) returns.
pub async fn list_documents(
    db: impl sqlx::PgExecutor<'_>,
    merchants: &[impl AsRef<str>],
    kind: PaymentKind,
    filter: &ListFilter,
) -> sqlx::Result<Vec<StoredDocument>> {
    fetch_page(db, &LIST_DOCUMENTS, merchants, kind, filter).await
}

/// Payments without a document, found through their partial index, each given one
/// by the trigger (an update of `document` recomputes it). Rows another transaction
/// holds (a sync writing them, which computes it anyway; another replica's backfill)
/// are skipped.
const BACKFILL: &str = "with b as (
       select merchant_code, kind, id from payments
       where document is null
       order by merchant_code, kind, id
       limit $1
       for update skip locked)
     update payments p set document = null from b
     where p.merchant_code = b.merchant_code and p.kind = b.kind and p.id = b.id";

/// Most rows one backfill statement writes.
pub const BACKFILL_BATCH: i64 = 1000;

/// Gives up to `batch` payments written before documents were kept their document;
/// returns how many it gave one (0: none was left, or every one left is locked).
pub async fn backfill_documents(pool: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(BACKFILL).bind(batch).execute(pool).await?;
    Ok(done.rows_affected())
}

/// Runs [`backfill_documents`] batch after batch, `pause` apart (a minute after a
/// failure), until it finds nothing left to do (an upgraded database's rows, once; a
/// new database has none) or `cancel` fires.
pub async fn backfill_documents_periodically(
    pool: PgPool,
    pause: Duration,
    cancel: CancellationToken,
) {
    let mut total = 0u64;
    let mut wait = pause;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => return,
        }
        match backfill_documents(&pool, BACKFILL_BATCH).await {
            Ok(0) => {
                if total > 0 {
                    tracing::info!(payments = total, "every payment has its stored document");
                }
                return;
            }
            Ok(n) => {
                total += n;
                wait = pause;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not backfill payment documents; trying again in a minute");
                wait = AFTER_FAILURE;
            }
        }
    }
}

/// How long the backfill waits after a failed batch.
const AFTER_FAILURE: Duration = Duration::from_secs(60);
