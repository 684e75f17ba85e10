//! The sync worker: claim a due job → fetch the payment → upsert it → finish the job.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rand::Rng;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::SyncSettings;
use crate::platform::{FetchError, PlatformClient, Reservation};
use crate::queue::{self, ClaimedJob, RetryPolicy};
use crate::store::upsert_payment;

/// What became of one claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Synced,
    Retrying,
    Dead,
    Throttled,
    LeaseLost,
}

/// Runs syncs for one merchant. Cheap to clone; clones share the client and its limiter.
#[derive(Clone)]
pub struct SyncWorker {
    pool: PgPool,
    merchant_code: Arc<str>,
    client: Arc<PlatformClient>,
    policy: RetryPolicy,
    settings: SyncSettings,
}

impl SyncWorker {
    pub fn new(
        pool: PgPool,
        merchant_code: Arc<str>,
        client: Arc<PlatformClient>,
        settings: SyncSettings,
    ) -> Self {
        let policy = RetryPolicy {
            max_attempts: settings.max_attempts,
            backoff_base: Duration::from_millis(settings.backoff_base_ms),
            backoff_cap: Duration::from_millis(settings.backoff_cap_ms),
        };
        SyncWorker {
            pool,
            merchant_code,
            client,
            policy,
            settings,
        }
    }

    /// Runs until `cancel` fires, with up to `concurrency` fetches in flight, then
    /// waits for those fetches to finish.
    pub async fn run(self, cancel: CancellationToken) {
        // Listen before the first claim, so no notification falls between the two.
        let mut listener = self.listen().await;
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let unsent = Arc::new(Semaphore::new(1));
        let mut in_flight = JoinSet::new();
        let mut next_reap = tokio::time::Instant::now();
        loop {
            // Also under a constant backlog: a crashed replica's jobs must come back.
            if tokio::time::Instant::now() >= next_reap {
                self.reap_expired_leases().await;
                next_reap = tokio::time::Instant::now() + self.settings.poll_interval();
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            // Reserve the request slot before choosing the job, and keep at most one
            // chosen job unsent: the most urgent job due when a slot frees is the one
            // sent. With nothing due, the reservation is dropped and the slot given back.
            let reservation = tokio::select! {
                r = self.reserve_slot(&unsent) => r,
                _ = cancel.cancelled() => break,
            };
            let lease = self.settings.lease();
            match queue::claim_due_jobs(&self.pool, &self.merchant_code, 1, lease).await {
                Ok(mut jobs) if !jobs.is_empty() => {
                    let worker = self.clone();
                    let job = jobs.remove(0);
                    in_flight.spawn(async move {
                        worker.process_job_with(job, Some(reservation)).await;
                        drop(permit);
                    });
                }
                Ok(_) => {
                    drop((permit, reservation));
                    self.idle(&mut listener, &cancel).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim sync jobs");
                    drop((permit, reservation));
                    self.idle(&mut listener, &cancel).await;
                }
            }
            while in_flight.try_join_next().is_some() {}
        }
        while in_flight.join_next().await.is_some() {}
    }

    async fn reserve_slot(&self, unsent: &Arc<Semaphore>) -> Reservation {
        let gate = unsent.clone().acquire_owned().await;
        let reservation = self.client.limiter().reserve().await;
        match gate {
            Ok(gate) => reservation.holding(gate),
            Err(_) => reservation,
        }
    }

    /// Processes due jobs one after another until none is due; returns how many ran.
    /// Lets tests drive the worker without background tasks or sleeps.
    pub async fn run_until_idle(&self) -> anyhow::Result<usize> {
        let mut processed = 0;
        loop {
            let jobs =
                queue::claim_due_jobs(&self.pool, &self.merchant_code, 1, self.settings.lease())
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

    /// Fetches and stores one job; a panic inside counts as a failed attempt.
    pub async fn process_job(&self, job: ClaimedJob) -> JobOutcome {
        self.process_job_with(job, None).await
    }

    async fn process_job_with(&self, job: ClaimedJob, slot: Option<Reservation>) -> JobOutcome {
        let started = std::time::Instant::now();
        let outcome = match AssertUnwindSafe(self.sync_one(&job, slot))
            .catch_unwind()
            .await
        {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::warn!(kind = %job.kind, id = %job.id, error = ?e, "sync could not be recorded; its lease will expire and it will run again");
                JobOutcome::LeaseLost
            }
            Err(_) => {
                tracing::error!(kind = %job.kind, id = %job.id, "sync panicked");
                self.record_failure(&job, "internal error while syncing")
                    .await
                    .unwrap_or(JobOutcome::LeaseLost)
            }
        };
        let label = format!("{outcome:?}").to_lowercase();
        metrics::counter!("paymirror_syncs_total", "outcome" => label).increment(1);
        metrics::histogram!("paymirror_sync_seconds").record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn sync_one(
        &self,
        job: &ClaimedJob,
        slot: Option<Reservation>,
    ) -> anyhow::Result<JobOutcome> {
        match self
            .client
            .fetch_payment_with(job.kind, &job.id, slot)
            .await
        {
            Ok(payment) => {
                let mut tx = self.pool.begin().await?;
                if !queue::finish_job(&mut tx, job).await? {
                    tracing::warn!(kind = %job.kind, id = %job.id, "lease lost before the sync was stored; discarding this answer");
                    return Ok(JobOutcome::LeaseLost);
                }
                let changed =
                    upsert_payment(&mut tx, &self.merchant_code, job.kind, &job.id, &payment)
                        .await?;
                tx.commit().await?;
                tracing::info!(kind = %job.kind, id = %job.id, status = %payment.snapshot.status, changed, "payment synced");
                Ok(JobOutcome::Synced)
            }
            Err(FetchError::Throttled { retry_after }) => {
                let pause = retry_after
                    .unwrap_or_else(|| Duration::from_millis(rand::rng().random_range(1000..2000)));
                self.client.limiter().pause(pause).await;
                tracing::warn!(
                    pause_ms = pause.as_millis() as u64,
                    "platform throttled us; pausing all fetches"
                );
                let mut conn = self.pool.acquire().await?;
                queue::requeue_job(&mut conn, job, pause).await?;
                Ok(JobOutcome::Throttled)
            }
            Err(e) => self.record_failure(job, &e.to_string()).await,
        }
    }

    async fn record_failure(&self, job: &ClaimedJob, error: &str) -> anyhow::Result<JobOutcome> {
        let mut conn = self.pool.acquire().await?;
        let state = queue::fail_job(&mut conn, job, error, &self.policy).await?;
        Ok(match state.as_deref() {
            Some("dead") => {
                tracing::error!(kind = %job.kind, id = %job.id, error, "sync is dead after its last attempt");
                JobOutcome::Dead
            }
            Some(_) => {
                tracing::warn!(kind = %job.kind, id = %job.id, error, attempt = job.attempts + 1, "sync failed; will retry");
                JobOutcome::Retrying
            }
            None => JobOutcome::LeaseLost,
        })
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.ok()?;
        listener.listen(queue::NOTIFY_CHANNEL).await.ok()?;
        Some(listener)
    }

    /// Waits for a notification, the poll interval, or cancellation.
    async fn idle(&self, listener: &mut Option<PgListener>, cancel: &CancellationToken) {
        let poll = tokio::time::sleep(self.settings.poll_interval());
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

    async fn reap_expired_leases(&self) {
        match queue::reap_expired_leases(&self.pool).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "returned syncs with expired leases to the queue"),
            Err(e) => tracing::warn!(error = %e, "could not reap expired leases"),
        }
    }
}
