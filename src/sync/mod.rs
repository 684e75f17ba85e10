//! The sync worker: claim a due job → fetch the payment → upsert it → finish the job.

mod job;

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{ReconcileSettings, SyncSettings};
use crate::db::notices::{Heard, Hearer};
use crate::ops::Tally;
use crate::platform::PlatformClient;
use crate::queue::{self, Pick, RetryPolicy};

pub use job::JobOutcome;

/// Runs syncs for one merchant. Cheap to clone; clones share the client and its limiter.
#[derive(Clone)]
pub struct SyncWorker {
    pool: PgPool,
    merchant_code: Arc<str>,
    client: Arc<PlatformClient>,
    policy: RetryPolicy,
    settings: SyncSettings,
    reconcile: ReconcileSettings,
    /// Status changes per minute, for the console's charts.
    tally: Tally,
    /// Woken when a job may have become due (shared by every merchant's worker).
    wake: SyncWake,
}

/// Wakes idle sync workers when a sync is queued (the queue's notice) or when
/// listening starts again (notices may have been missed). Cheap to clone.
#[derive(Clone, Default)]
pub struct SyncWake(Arc<Notify>);

impl Hearer for SyncWake {
    fn heard(&self, heard: Heard) {
        if matches!(heard, Heard::Connected | Heard::Notice) {
            self.0.notify_waiters();
        }
    }
}

impl SyncWorker {
    pub fn new(
        pool: PgPool,
        merchant_code: Arc<str>,
        client: Arc<PlatformClient>,
        settings: SyncSettings,
        reconcile: ReconcileSettings,
    ) -> Self {
        let policy = RetryPolicy {
            backoff_base: settings.backoff_base,
            backoff_cap: settings.backoff_cap,
            max_age: settings.max_retry_age,
            dead_reconcile_after: Some(reconcile.interval),
            reconcile_max_age: reconcile.max_age,
            retry_priority: None,
        };
        SyncWorker {
            pool,
            merchant_code,
            client,
            policy,
            settings,
            reconcile,
            tally: Tally::default(),
            wake: SyncWake::default(),
        }
    }

    /// Returns this worker woken by `wake` (which the process's listener feeds).
    pub fn woken_by(self, wake: SyncWake) -> Self {
        SyncWorker { wake, ..self }
    }

    /// The merchant whose syncs this worker runs.
    pub fn merchant_code(&self) -> &Arc<str> {
        &self.merchant_code
    }

    /// Returns this worker counting the status changes it commits into `tally`.
    pub fn counting_into(self, tally: Tally) -> Self {
        SyncWorker { tally, ..self }
    }

    /// Runs until `cancel` fires, with up to `concurrency` fetches in flight, then
    /// waits for those fetches to finish.
    pub async fn run(self, cancel: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut in_flight = JoinSet::new();
        let mut next_reap = tokio::time::Instant::now();
        // Claims alternate between the oldest and the newest due job of the most urgent
        // priority: a callback that just came is fetched within two claims however many
        // wait (a flood of forged ids among them), and none waits without end.
        let mut pick = Pick::Newest;
        loop {
            // Also under a constant backlog: a crashed replica's jobs must come back,
            // and payments waiting for a missed callback must be chased.
            if tokio::time::Instant::now() >= next_reap {
                self.reap_expired_leases().await;
                self.promote_due_reconciliations().await;
                next_reap = tokio::time::Instant::now() + self.settings.poll_interval;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            // Take the send slot before choosing the job: the most urgent job due when
            // a slot frees is the one sent. With nothing due, the slot is given back.
            let slot = tokio::select! {
                s = self.client.reserve() => s,
                _ = cancel.cancelled() => break,
            };
            let lease = self.settings.lease;
            pick = match pick {
                Pick::Oldest => Pick::Newest,
                Pick::Newest => Pick::Oldest,
            };
            // Waiting for a wake-up starts before the claim, so a job queued between
            // the claim and the wait is not missed.
            let woken = self.wake.0.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match queue::claim_picking(&self.pool, &self.merchant_code, 1, lease, pick).await {
                Ok(mut jobs) if !jobs.is_empty() => {
                    let worker = self.clone();
                    let job = jobs.remove(0);
                    in_flight.spawn(async move {
                        worker.process_job_with(job, Some(slot)).await;
                        drop(permit);
                    });
                }
                Ok(_) => {
                    drop((permit, slot));
                    self.idle(woken, &cancel).await;
                }
                Err(e) => {
                    if let Some(e) = e.downcast_ref::<sqlx::Error>() {
                        crate::db::note_failure(e);
                    }
                    tracing::warn!(error = %e, "could not claim sync jobs");
                    drop((permit, slot));
                    self.idle(woken, &cancel).await;
                }
            }
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Processes due jobs one after another until none is due; returns how many ran.
    /// Lets tests drive the worker without background tasks or sleeps.
    pub async fn run_until_idle(&self) -> anyhow::Result<usize> {
        let mut processed = 0;
        loop {
            let jobs =
                queue::claim_due_jobs(&self.pool, &self.merchant_code, 1, self.settings.lease)
                    .await?;
            if jobs.is_empty() {
                return Ok(processed);
            }
            for job in jobs {
                self.process_job(job).await;
                processed += 1;
            }
        }
    }

    /// Waits for a wake-up, the poll interval, or cancellation.
    async fn idle(
        &self,
        woken: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        cancel: &CancellationToken,
    ) {
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(self.settings.poll_interval) => {}
            () = cancel.cancelled() => {}
        }
    }

    /// Queues the reconciliation fetches that are due; returns how many.
    pub async fn promote_due_reconciliations(&self) -> u64 {
        let max_age = self.reconcile.max_age;
        match queue::promote_due_reconciliations(&self.pool, &self.merchant_code, max_age).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(payments = n, "reconciling payments not final yet");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not queue reconciliations");
                0
            }
        }
    }

    async fn reap_expired_leases(&self) {
        match queue::reap_expired_leases(&self.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "returned syncs with expired leases to the queue"),
            Err(e) => tracing::warn!(error = %e, "could not reap expired leases"),
        }
    }
}
