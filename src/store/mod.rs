//! Payments, their status history and the change feed: the upsert a sync ends in,
//! and the queries the API serves.

mod browse;
mod callback_position;
mod callback_upkeep;
mod callbacks;
mod changes;
mod documents;
mod history;
mod payments;
mod statistics;

pub use browse::{latest_changes, search_payments, Search};
pub use callback_position::{CallbackPosition, Towards, CURSOR_PATTERN};
pub use callback_upkeep::{
    merge_pending, merge_pending_periodically, prune_callbacks, prune_periodically,
};
pub use callbacks::{list_callbacks, list_ignored, CallbackPage, CallbackRecord, IgnoredCallback};
pub use changes::{list_changes, publish_changes, Change, ChangeSignal, CHANGES_CHANNEL};
pub use documents::{
    backfill_documents, backfill_documents_periodically, find_document, list_documents,
    StoredDocument, BACKFILL_BATCH,
};
pub use history::{list_history, HistoryEntry};
pub use payments::{find_payment, list_payments, upsert_payment, ListFilter, PaymentRow, Upserted};
pub use statistics::{analyze_young_tables, analyze_young_tables_periodically};

/// The hot statements, for the plan checks of `tests/explain.rs`.
pub mod sql {
    pub use super::callbacks::{LIST_IGNORED, LIST_NEWER_FOR_PAYMENT, LIST_OLDER_FOR_PAYMENT};
    pub use super::changes::{LIST_CHANGES, PUBLISH};
    pub use super::documents::{FIND_DOCUMENT, LIST_DOCUMENTS};
    pub use super::payments::{FIND_PAYMENT, LIST_PAYMENTS};
}
