//! Payments and their status history: the upsert a sync ends in, and the queries the API serves.

mod history;
mod payments;

pub use history::{list_history, HistoryEntry};
#[cfg(test)]
pub(crate) use payments::list_sql;
pub use payments::{find_payment, list_payments, upsert_payment, ListFilter, PaymentRow, Upserted};
