//! One claimed job: fetch, store, and what each kind of failure leads to.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use rand::Rng;
use tokio::time::Instant;
use tracing::Instrument;

use super::SyncWorker;
use crate::db::refused_data;
use crate::domain::JobState;
use crate::platform::{FetchError, PlatformPayment, Slot};
use crate::queue::{self, ClaimedJob, Priority, RetryPolicy};
use crate::reconcile::next_reconcile_at;
use crate::store::{publish_changes, upsert_payment};

/// What became of one claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Synced,
    Retrying,
    Dead,
    /// Put back without counting an attempt: throttled, our configuration refused,
    /// or the platform is in an outage.
    Paused,
    LeaseLost,
}

impl SyncWorker {
    /// Fetches and stores one job; a panic inside counts as a failed attempt.
    pub async fn process_job(&self, job: ClaimedJob) -> JobOutcome {
        self.process_job_with(job, None).await
    }

    pub(super) async fn process_job_with(&self, job: ClaimedJob, slot: Option<Slot>) -> JobOutcome {
        let span =
            tracing::info_span!("sync", kind = %job.kind, id = %job.id, attempt = job.attempts + 1);
        async {
            let started = Instant::now();
            let work = AssertUnwindSafe(self.sync_one(&job, slot)).catch_unwind();
            let outcome = tokio::select! {
                result = work => match result {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %format_args!("{e:#}"), "sync could not be recorded; its lease will expire and it will run again");
                        JobOutcome::LeaseLost
                    }
                    Err(_) => {
                        tracing::error!("sync panicked");
                        self.record_failure(&job, "internal error while syncing", &self.policy)
                            .await
                            .unwrap_or(JobOutcome::LeaseLost)
                    }
                },
                () = self.hold_lease(&job) => {
                    tracing::warn!("lost the lease while syncing; abandoning this fetch to the next holder");
                    JobOutcome::LeaseLost
                }
            };
            let label = format!("{outcome:?}").to_lowercase();
            let merchant = self.merchant_code.clone();
            metrics::counter!("paymirror_syncs_total", "merchant" => merchant.clone(), "outcome" => label)
                .increment(1);
            metrics::histogram!("paymirror_sync_seconds", "merchant" => merchant)
                .record(started.elapsed().as_secs_f64());
            outcome
        }
        .instrument(span)
        .await
    }

    /// Keeps the job's lease alive while it is worked on (a renewal every quarter of
    /// the lease; a slow or failed one is tried again while the lease lasts). Returns
    /// only when the lease is lost, or runs out before a renewal got through: then
    /// another worker may take the job, so this one must stop.
    async fn hold_lease(&self, job: &ClaimedJob) {
        let lease = self.settings.lease;
        let beat = lease / 4;
        let mut expires = Instant::now() + lease;
        loop {
            tokio::time::sleep(beat).await;
            let asked = Instant::now();
            let left = expires.saturating_duration_since(asked);
            match tokio::time::timeout(left, queue::extend_lease(&self.pool, job, lease)).await {
                Ok(Ok(true)) => expires = asked + lease,
                Ok(Ok(false)) | Err(_) => return,
                Ok(Err(_)) if Instant::now() >= expires => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not extend the lease; trying again")
                }
            }
        }
    }

    async fn sync_one(&self, job: &ClaimedJob, slot: Option<Slot>) -> anyhow::Result<JobOutcome> {
        let slot = match slot {
            Some(slot) => slot,
            None => self.client.reserve().await,
        };
        let probe = slot.is_probe();
        let result = self.client.fetch(slot, job.kind, &job.id).await;
        let platform_down = matches!(&result, Err(e) if e.is_platform_failure());
        if probe && !platform_down {
            self.resume_after_outage().await;
        }
        match result {
            Ok(payment) => self.store(job, &payment).await,
            Err(FetchError::Throttled { retry_after }) => {
                // Honour Retry-After (capped) if the platform sends one; else 1–2 s with jitter.
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
                let pause = self.settings.config_error_pause;
                let (status, codes) = match &e {
                    FetchError::MerchantRejected(errors) => ("406", errors.metric_labels()),
                    _ => ("403", vec!["none"]),
                };
                for code in &codes {
                    metrics::counter!("paymirror_platform_config_errors_total", "merchant" => self.merchant_code.clone(), "status" => status, "code" => code.to_string())
                        .increment(1);
                }
                tracing::error!(error = %e, status, codes = ?codes, pause_secs = pause.as_secs(), "the platform refuses our credentials or merchant: a configuration problem; pausing all fetches");
                self.pause_and_requeue(job, pause, &e.to_string()).await
            }
            Err(FetchError::NotFound) => {
                // A fresh payment may not be visible to the platform yet: retried for
                // minutes, but behind every callback and refresh (anyone can send a
                // callback for an id the platform never knew), and never reconciled once
                // dead: only a new callback, a refresh or an operator revives it.
                let policy = RetryPolicy {
                    max_age: self.settings.not_found_max_age,
                    dead_reconcile_after: None,
                    retry_priority: Some(Priority::Reconcile),
                    ..self.policy.clone()
                };
                self.record_failure(
                    job,
                    "not found: the platform does not know this payment (410)",
                    &policy,
                )
                .await
            }
            // Fetches sent before the outage was noticed: nothing is wrong with the
            // payment, so no attempt is spent; probes carry on the backoff.
            Err(e) if platform_down && !probe && self.client.in_outage() => {
                let reason = format!("platform outage ({e}); waiting for it to answer again");
                self.requeue(job, Duration::ZERO, &reason).await
            }
            Err(e) => self.record_failure(job, &e.to_string(), &self.policy).await,
        }
    }

    /// Stores the answer and finishes the job, in one transaction, scheduling the next
    /// reconciliation if the payment is not final. An answer the database refuses is
    /// a failed attempt, retried and in the end dead like any other.
    async fn store(
        &self,
        job: &ClaimedJob,
        payment: &PlatformPayment,
    ) -> anyhow::Result<JobOutcome> {
        match self.try_store(job, payment).await {
            Err(e) => match e.downcast_ref::<sqlx::Error>().and_then(refused_data) {
                Some(code) => {
                    let error =
                        format!("the database refused the platform's answer (SQLSTATE {code})");
                    self.record_failure(job, &error, &self.policy).await
                }
                None => Err(e),
            },
            ok => ok,
        }
    }

    async fn try_store(
        &self,
        job: &ClaimedJob,
        payment: &PlatformPayment,
    ) -> anyhow::Result<JobOutcome> {
        let mut tx = self.pool.begin().await?;
        let upserted = upsert_payment(&mut tx, &self.merchant_code, job.kind, &job.id, payment)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no payment row for a scheduled sync"))?;
        let reconcile_at = if upserted.stale {
            None
        } else {
            next_reconcile_at(
                &self.reconcile,
                payment,
                upserted.first_seen_at,
                chrono::Utc::now(),
            )
        };
        if !queue::finish_job(&mut tx, job, reconcile_at).await? {
            tracing::warn!("lease lost before the sync was stored; discarding this answer");
            return Ok(JobOutcome::LeaseLost);
        }
        // Last before the commit: the positions' lock is held until it.
        publish_changes(&mut tx, &self.merchant_code, job.kind, &job.id, &upserted).await?;
        tx.commit().await?;
        if upserted.status_changed {
            self.tally.status_changed(&self.merchant_code);
        }
        let status = &payment.snapshot.status;
        if upserted.stale {
            tracing::warn!(%status, "stale read: the platform answered a non-final status for a final payment; kept the final one");
            metrics::counter!("paymirror_stale_reads_total", "merchant" => self.merchant_code.clone())
                .increment(1);
        } else {
            tracing::info!(%status, changed = upserted.status_changed, "payment synced");
        }
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
        let pause = pause.min(crate::platform::MAX_PAUSE);
        self.client.pause(pause).await;
        self.requeue(job, pause, reason).await
    }

    async fn requeue(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        reason: &str,
    ) -> anyhow::Result<JobOutcome> {
        let mut conn = self.pool.acquire().await?;
        Ok(
            if queue::requeue_job(&mut conn, job, delay, reason).await? {
                JobOutcome::Paused
            } else {
                JobOutcome::LeaseLost
            },
        )
    }

    /// The platform answers again: every sync waiting out a backoff is due now.
    async fn resume_after_outage(&self) {
        match queue::resume_after_outage(&self.pool, &self.merchant_code).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                syncs = n,
                "platform back: syncs waiting out a backoff are due now"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not make waiting syncs due after the outage")
            }
        }
    }

    async fn record_failure(
        &self,
        job: &ClaimedJob,
        error: &str,
        policy: &RetryPolicy,
    ) -> anyhow::Result<JobOutcome> {
        let mut conn = self.pool.acquire().await?;
        let state = queue::fail_job(&mut conn, job, error, policy).await?;
        Ok(match state {
            Some(JobState::Dead) => {
                tracing::error!(
                    error,
                    "sync is dead: it failed for longer than its retry bound"
                );
                metrics::counter!("paymirror_dead_syncs_total", "merchant" => self.merchant_code.clone())
                    .increment(1);
                JobOutcome::Dead
            }
            Some(_) => {
                tracing::warn!(error, "sync failed; will retry");
                JobOutcome::Retrying
            }
            None => JobOutcome::LeaseLost,
        })
    }
}
