//! The payment document of SPEC §2, as the API and the console serve it.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::JobState;
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::store::{PaymentRow, StoredDocument};

/// The payment document of SPEC §2 (camelCase; fields may be added, never removed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDocument {
    pub kind: PaymentKind,
    #[schema(value_type = String)]
    pub id: PaymentId,
    pub merchant_code: String,
    /// The platform's status (`PROCESSING`, `SUCCESS`, `FAILED`, `REFUSED`, or a newer
    /// one), null until the first successful sync.
    #[schema(required = true, value_type = Option<String>)]
    pub status: Option<PaymentStatus>,
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Exact decimal as a string: `"42.05"`.
    #[schema(required = true)]
    pub amount: Option<String>,
    #[schema(required = true)]
    pub currency_code: Option<String>,
    #[schema(required = true)]
    pub fee: Option<MoneyDocument>,
    #[schema(required = true)]
    pub failure_reason: Option<FailureDocument>,
    #[schema(required = true)]
    pub payment_method_code: Option<String>,
    #[schema(required = true)]
    pub is_test: Option<bool>,
    #[schema(required = true)]
    pub created_at: Option<String>,
    #[schema(required = true)]
    pub processed_at: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    #[schema(required = true)]
    pub synced_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The platform's last answer, verbatim.
    #[schema(required = true, value_type = Option<Object>)]
    pub platform: Option<Box<RawValue>>,
    /// Last: a stored document (see [`write_stored`]) is the object of every member
    /// above, kept by the database, with this one appended when it is served.
    pub sync: SyncDocument,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoneyDocument {
    pub amount: String,
    #[schema(required = true)]
    pub currency_code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureDocument {
    #[schema(required = true)]
    pub code: Option<String>,
    #[schema(required = true)]
    pub message: Option<String>,
    #[schema(required = true)]
    pub failed_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncDocument {
    pub state: JobState,
    pub attempts: i32,
    #[schema(required = true)]
    pub last_error: Option<String>,
}

impl From<PaymentRow> for PaymentDocument {
    fn from(row: PaymentRow) -> Self {
        let has_failure = row.failure_code.is_some() || row.failure_message.is_some();
        let failure_reason = has_failure.then_some(FailureDocument {
            code: row.failure_code,
            message: row.failure_message,
            failed_at: row.failed_at,
        });
        PaymentDocument {
            kind: row.kind,
            id: row.id,
            merchant_code: row.merchant_code,
            status: row.status,
            is_final: row.is_final,
            amount: row.amount.map(|a| a.to_string()),
            currency_code: row.currency_code,
            fee: row.fee_amount.map(|amount| MoneyDocument {
                amount: amount.to_string(),
                currency_code: row.fee_currency_code,
            }),
            failure_reason,
            payment_method_code: row.payment_method_code,
            is_test: row.is_test,
            created_at: row.platform_created_at,
            processed_at: row.platform_processed_at,
            first_seen_at: row.first_seen_at,
            synced_at: row.synced_at,
            updated_at: row.updated_at,
            platform: row.platform.map(|doc| doc.0),
            sync: SyncDocument {
                state: row.sync_state.unwrap_or(JobState::Idle),
                attempts: row.sync_attempts.unwrap_or_default(),
                last_error: row.sync_last_error,
            },
        }
    }
}

/// Appends the served bytes of a stored document to `out`: its object, with `sync`
/// (the job's state, which the database does not keep in the document) appended as
/// the last member, exactly as [`PaymentDocument`] serialises. Returns `false`, and
/// appends nothing, for a row without a document (written before they were kept) or
/// with one that is not an object's text.
pub fn write_stored(out: &mut Vec<u8>, stored: &StoredDocument) -> bool {
    let Some(head) = stored
        .document
        .as_deref()
        .and_then(|d| d.strip_suffix('}'))
        .filter(|head| head.len() > 1 && head.starts_with('{'))
    else {
        return false;
    };
    let state = stored.sync_state.unwrap_or(JobState::Idle);
    let attempts = stored.sync_attempts.unwrap_or_default();
    out.reserve(head.len() + 80);
    out.extend_from_slice(head.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        ",\"sync\":{{\"state\":\"{}\",\"attempts\":{attempts},\"lastError\":",
        state.as_str()
    );
    let _ = serde_json::to_writer(&mut *out, &stored.sync_last_error);
    out.extend_from_slice(b"}}");
    true
}
