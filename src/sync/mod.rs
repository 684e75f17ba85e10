//! The sync worker: claim a due job → fetch the payment → upsert it → finish the job.

mod job;

use std::sync::Arc;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{ReconcileSettings, SyncSettings};
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
        }
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
        // Listen before the first claim, so no notification falls between the two.
        let mut listener = self.listen().await;
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
                    self.idle(&mut listener, &cancel).await;
                }
                Err(e) => {
                    if let Some(e) = e.downcast_ref::<sqlx::Error>() {
                        crate::db::note_failure(e);
                    }
                    tracing::warn!(error = %e, "could not claim sync jobs");
                    drop((permit, slot));
                    self.idle(&mut listener, &cancel).await;
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

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(queue::NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Waits for a notification, the poll interval, or cancellation.
    async fn idle(&self, listener: &mut Option<PgListener>, cancel: &CancellationToken) {
        let poll = tokio::time::sleep(self.settings.poll_interval);
        match listener {
            Some(l) => tokio::select! {
                received = l.recv() => if received.is_err() { *listener = None },
                _ = poll => {}
                _ = cancel.cancelled() => {}
            },
            None => {
                tokio::select! { _ = poll => {}, _ = cancel.cancelled() => return }
                *listener = self.listen().await;
            }
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
