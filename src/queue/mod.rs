//! The durable sync queue: one `sync_jobs` row per tracked payment.
//!
//! States ([`JobState`]): `idle` (nothing to do), `pending` (a fetch is due at
//! `run_at`), `running` (leased to one worker until `lease_until`, which its
//! heartbeat extends), `dead` (gave up; retryable, and reconciled again if the
//! payment is not final). A sync requested while `running` sets `rerun_priority`:
//! exactly one more fetch follows.

mod batch;
mod claim;
mod dead;
mod depth;
mod enqueue;
mod finish;

pub use claim::{
    claim_due_jobs, claim_picking, extend_lease, reap_expired_leases, ClaimedJob, Pick,
};
pub use dead::{list_dead_syncs, promote_due_reconciliations, retry_dead_syncs, DeadSync};
pub use depth::{queue_depth, QueueDepth};
pub use enqueue::{distinct_payments, enqueue_ctes, enqueue_syncs};
pub use finish::{fail_job, finish_job, requeue_job, resume_after_outage, RetryPolicy};

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
/// The hot statements, for the plan checks of `tests/explain.rs`.
pub mod sql {
    pub use super::claim::{CLAIM, CLAIM_NEWEST, EXTEND_LEASE, REAP};
    pub use super::dead::{FORGET_OLD, LIST_DEAD, PROMOTE, RETRY_DEAD};
    pub use super::depth::{DEPTH, OLDEST_DUE};
    pub use super::enqueue::ENQUEUE;
    pub use super::finish::{FAIL, FINISH, REQUEUE, RESUME};
}
