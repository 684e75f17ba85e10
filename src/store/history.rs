//! A payment's status history: every status observed, oldest first.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::{PaymentId, PaymentKind, PaymentStatus};

/// One observed status change.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    #[schema(value_type = String)]
    pub status: PaymentStatus,
    pub observed_at: DateTime<Utc>,
}

/// Returns every status observed for the payment, oldest first.
pub async fn list_history(
    pool: &PgPool,
    merchant_code: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> sqlx::Result<Vec<HistoryEntry>> {
    sqlx::query_as(
        "select status, observed_at from payment_status_history
         where merchant_code = $1 and kind = $2 and payment_id = $3
         order by seq",
    )
    .bind(merchant_code)
    .bind(kind.as_str())
    .bind(id.as_str())
    .fetch_all(pool)
    .await
}
