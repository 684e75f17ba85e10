//! One claimed job: fetch, store, and what each kind of failure leads to.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use rand::Rng;

use super::SyncWorker;
use crate::platform::{FetchError, PlatformPayment, Reservation};
use crate::queue::{self, ClaimedJob, RetryPolicy};
use crate::reconcile::next_reconcile_at;
use crate::store::upsert_payment;

/// What became of one claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Synced,
    Retrying,
    Dead,
    /// Put back without counting an attempt: throttled, or our configuration refused.
    Paused,
    LeaseLost,
}

impl SyncWorker {
    /// Fetches and stores one job; a panic inside counts as a failed attempt.
    pub async fn process_job(&self, job: ClaimedJob) -> JobOutcome {
        self.process_job_with(job, None).await
    }

    pub(super) async fn process_job_with(
        &self,
        job: ClaimedJob,
        slot: Option<Reservation>,
    ) -> JobOutcome {
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
                self.record_failure(&job, "internal error while syncing", &self.policy)
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
            Ok(payment) => self.store(job, &payment).await,
            Err(FetchError::Throttled { retry_after }) => {
                // Honour Retry-After if the platform ever sends one; else 1–2 s with jitter.
                let pause = retry_after
                    .unwrap_or_else(|| Duration::from_millis(rand::rng().random_range(1000..2000)));
                tracing::warn!(
                    pause_ms = pause.as_millis() as u64,
                    "platform throttled us; pausing all fetches"
                );
                self.pause_and_requeue(job, pause, "throttled by the platform (429); will retry")
                    .await
            }
            Err(e @ (FetchError::Forbidden(_) | FetchError::MerchantRejected(_))) => {
                let pause = Duration::from_millis(self.settings.config_error_pause_ms);
                let status = if matches!(e, FetchError::Forbidden(_)) {
                    "403"
                } else {
                    "406"
                };
                metrics::counter!("paymirror_platform_config_errors_total", "status" => status)
                    .increment(1);
                tracing::error!(error = %e, pause_secs = pause.as_secs(), "the platform refuses our credentials or merchant: a configuration problem; pausing all fetches");
                self.pause_and_requeue(job, pause, &e.to_string()).await
            }
            Err(FetchError::NotFound) => {
                let policy = RetryPolicy {
                    max_attempts: self
                        .settings
                        .not_found_max_attempts
                        .min(self.policy.max_attempts),
                    ..self.policy.clone()
                };
                self.record_failure(
                    job,
                    "not found: the platform does not know this payment (410)",
                    &policy,
                )
                .await
            }
            Err(e) => self.record_failure(job, &e.to_string(), &self.policy).await,
        }
    }

    /// Stores the answer and finishes the job, in one transaction, scheduling the next
    /// reconciliation if the payment is not final.
    async fn store(
        &self,
        job: &ClaimedJob,
        payment: &PlatformPayment,
    ) -> anyhow::Result<JobOutcome> {
        let mut tx = self.pool.begin().await?;
        let upserted = upsert_payment(&mut tx, &self.merchant_code, job.kind, &job.id, payment)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no payment row for a scheduled sync"))?;
        let reconcile_at = next_reconcile_at(
            &self.reconcile,
            payment,
            upserted.first_seen_at,
            chrono::Utc::now(),
        );
        if !queue::finish_job(&mut tx, job, reconcile_at).await? {
            tracing::warn!(kind = %job.kind, id = %job.id, "lease lost before the sync was stored; discarding this answer");
            return Ok(JobOutcome::LeaseLost);
        }
        tx.commit().await?;
        let status = &payment.snapshot.status;
        tracing::info!(kind = %job.kind, id = %job.id, %status, changed = upserted.status_changed, "payment synced");
        Ok(JobOutcome::Synced)
    }

    /// Pauses every fetch of the process (and of every replica sharing the budget) and
    /// puts the job back without counting an attempt: no hot loop, nothing lost.
    async fn pause_and_requeue(
        &self,
        job: &ClaimedJob,
        pause: Duration,
        reason: &str,
    ) -> anyhow::Result<JobOutcome> {
        self.client.limiter().pause(pause).await;
        let mut conn = self.pool.acquire().await?;
        Ok(
            if queue::requeue_job(&mut conn, job, pause, reason).await? {
                JobOutcome::Paused
            } else {
                JobOutcome::LeaseLost
            },
        )
    }

    async fn record_failure(
        &self,
        job: &ClaimedJob,
        error: &str,
        policy: &RetryPolicy,
    ) -> anyhow::Result<JobOutcome> {
        let mut conn = self.pool.acquire().await?;
        let state = queue::fail_job(&mut conn, job, error, policy).await?;
        Ok(match state.as_deref() {
            Some("dead") => {
                tracing::error!(kind = %job.kind, id = %job.id, error, "sync is dead after its last attempt");
                metrics::counter!("paymirror_dead_syncs_total").increment(1);
                JobOutcome::Dead
            }
            Some(_) => {
                tracing::warn!(kind = %job.kind, id = %job.id, error, attempt = job.attempts + 1, "sync failed; will retry");
                JobOutcome::Retrying
            }
            None => JobOutcome::LeaseLost,
        })
    }
}
