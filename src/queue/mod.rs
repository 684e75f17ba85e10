//! The durable sync queue: one `sync_jobs` row per tracked payment.
//!
//! States: `idle` (nothing to do), `pending` (a fetch is due at `run_at`),
//! `running` (leased to one worker until `lease_until`), `dead` (gave up; retryable).
//! A sync requested while `running` sets `rerun_priority`: exactly one more fetch follows.

mod claim;
mod dead;
mod enqueue;
mod finish;

pub use claim::{claim_due_jobs, reap_expired_leases, ClaimedJob};
pub use dead::{list_dead_syncs, promote_due_reconciliations, retry_dead_syncs, DeadSync};
pub use enqueue::enqueue_syncs;
pub use finish::{fail_job, finish_job, requeue_job, RetryPolicy};

/// Postgres channel that wakes workers when jobs are enqueued.
pub const NOTIFY_CHANNEL: &str = "paymirror_sync";

/// Why a sync was asked for; lower runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Callback = 0,
    Manual = 1,
    Reconcile = 2,
}

impl Priority {
    pub fn as_i16(self) -> i16 {
        self as i16
    }
}
