//! Bulk updates in bounded batches: each statement takes at most [`BATCH`] rows.

use std::future::Future;

/// The most rows one bulk statement touches: short transactions, short row locks.
pub const BATCH: i64 = 500;

/// Runs `batch` (one statement of at most [`BATCH`] rows) until it touches fewer
/// than a full batch; returns the rows touched in all.
///
/// Bulk statements take their rows `order by ... payment_id collate "C"` (the byte
/// order the callback writers lock in) with `for update skip locked`, so they never
/// wait on, nor deadlock with, callback ingest: a row busy now is taken next time.
pub async fn in_batches<F, Fut>(mut batch: F) -> sqlx::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = sqlx::Result<u64>>,
{
    let mut total = 0;
    loop {
        let touched = batch().await?;
        total += touched;
        if touched < BATCH as u64 {
            return Ok(total);
        }
    }
}
