//! The per-minute figures behind the console's charts, kept in `console_minutes` so
//! every replica draws the same picture: each replica counts what it sees in a
//! [`Tally`] and adds it to the shared rows every few seconds; the queue depth is
//! sampled once a minute by whichever replica gets there first; old rows are pruned.
//! The core counts here, the console only reads.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::background::{every, Merge, Pending};
use crate::domain::{JobState, Merchants, PaymentKind};
use crate::queue::queue_depth;

/// What one replica saw in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    callbacks: i64,
    platform_requests: i64,
    platform_fetches: i64,
    platform_throttled: i64,
    status_changes: i64,
}

impl Merge for Counts {
    fn merge(&mut self, other: Counts) {
        self.callbacks += other.callbacks;
        self.platform_requests += other.platform_requests;
        self.platform_fetches += other.platform_fetches;
        self.platform_throttled += other.platform_throttled;
        self.status_changes += other.status_changes;
    }
}

/// This replica's counts not yet added to `console_minutes`, per minute. Cheap to
/// clone; counting is one uncontended lock, never a database write.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Counts by merchant and minute.
    pending: Pending<(Arc<str>, DateTime<Utc>), Counts>,
}

/// How the write of a callback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Committed: answered 200.
    Stored,
    /// The database refused its data: answered 400.
    Refused,
    /// Not committed (database down, too slow): answered 503, the platform retries.
    Failed,
}

impl Written {
    fn label(self) -> &'static str {
        match self {
            Written::Stored => "stored",
            Written::Refused => "refused",
            Written::Failed => "failed",
        }
    }
}

/// What this replica counts of its traffic, one call per event: each is added to its
/// Prometheus series and to the minute it happened in, which the console's charts read.
impl Tally {
    /// Counts `n` callbacks of `kind` that named a payment (`outcome` `accepted`) or
    /// none (`ignored`), whose write ended `written`.
    pub fn callbacks(
        &self,
        merchant: &Arc<str>,
        kind: PaymentKind,
        outcome: &'static str,
        written: Written,
        n: u64,
    ) {
        metrics::counter!("paymirror_callbacks_total", "merchant" => merchant.clone(), "kind" => kind.as_str(), "outcome" => outcome, "result" => written.label())
            .increment(n);
        if written == Written::Stored {
            self.add(merchant, |c| {
                c.callbacks += i64::try_from(n).unwrap_or(i64::MAX)
            });
        }
    }

    /// Counts one request sent to the platform on `route` (`auth-tokens` or a fetch's
    /// `payins`/`payouts`) and its answer's `status` (`None`: no answer).
    pub fn platform_request(&self, merchant: &Arc<str>, route: &'static str, status: Option<u16>) {
        let label = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        metrics::counter!("paymirror_platform_requests_total", "merchant" => merchant.clone(), "route" => route, "status" => label)
            .increment(1);
        self.add(merchant, |c| {
            c.platform_requests += 1;
            c.platform_fetches += i64::from(route != "auth-tokens");
            c.platform_throttled += i64::from(status == Some(429));
        });
    }

    /// Counts a committed status change.
    pub fn status_changed(&self, merchant: &Arc<str>) {
        self.add(merchant, |c| c.status_changes += 1);
    }

    fn add(&self, merchant: &Arc<str>, count: impl FnOnce(&mut Counts)) {
        self.pending
            .update((merchant.clone(), minute_of(Utc::now())), count);
    }

    /// Adds the counts so far to the shared rows in one statement; returns how many
    /// minutes were written. Counts that cannot be written are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool) -> sqlx::Result<usize> {
        self.pending
            .flush(async |taken| {
                let column =
                    |f: fn(&Counts) -> i64| taken.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
                let merchants: Vec<&str> = taken.iter().map(|((m, _), _)| &**m).collect();
                let minutes: Vec<DateTime<Utc>> = taken.iter().map(|((_, m), _)| *m).collect();
                sqlx::query(ADD_COUNTS)
                    .bind(&merchants)
                    .bind(&minutes)
                    .bind(column(|c| c.callbacks))
                    .bind(column(|c| c.platform_requests))
                    .bind(column(|c| c.platform_fetches))
                    .bind(column(|c| c.platform_throttled))
                    .bind(column(|c| c.status_changes))
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
            .await
    }
}

/// Adds `$3`..`$7` (counts) to the rows of merchants `$1` and minutes `$2`.
const ADD_COUNTS: &str =
    "insert into console_minutes as m (merchant_code, minute, callbacks, platform_requests,
       platform_fetches, platform_throttled, status_changes)
     select u.* from unnest($1::text[], $2::timestamptz[], $3::int8[], $4::int8[], $5::int8[],
       $6::int8[], $7::int8[]) as u
     on conflict (merchant_code, minute) do update set
       callbacks = m.callbacks + excluded.callbacks,
       platform_requests = m.platform_requests + excluded.platform_requests,
       platform_fetches = m.platform_fetches + excluded.platform_fetches,
       platform_throttled = m.platform_throttled + excluded.platform_throttled,
       status_changes = m.status_changes + excluded.status_changes,
       updated_at = now()";

/// Returns the start of the minute `at` falls in.
fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// Records the queue depth of the current minute unless a replica already did;
/// returns whether this call recorded it (and then also pruned old rows).
pub async fn sample_minute(
    pool: &PgPool,
    merchant_code: &str,
    retention: Duration,
) -> sqlx::Result<bool> {
    let sampled: bool = sqlx::query_scalar(
        "select exists(select 1 from console_minutes
           where merchant_code = $1 and minute = date_trunc('minute', now()) and queue_pending is not null)",
    )
    .bind(merchant_code)
    .fetch_one(pool)
    .await?;
    if sampled {
        return Ok(false);
    }
    let depth = queue_depth(pool, merchant_code).await?;
    let of = |state: JobState| {
        depth
            .by_state
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n)
    };
    // Two replicas may both get here: the first write of the minute wins.
    let recorded = sqlx::query(
        "insert into console_minutes as m (merchant_code, minute, queue_pending, queue_running, queue_dead)
         values ($1, date_trunc('minute', now()), $2, $3, $4)
         on conflict (merchant_code, minute) do update set
           queue_pending = excluded.queue_pending, queue_running = excluded.queue_running,
           queue_dead = excluded.queue_dead, updated_at = now()
         where m.queue_pending is null",
    )
    .bind(merchant_code)
    .bind(of(JobState::Pending))
    .bind(of(JobState::Running))
    .bind(of(JobState::Dead))
    .execute(pool)
    .await?;
    if recorded.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "delete from console_minutes
         where merchant_code = $1 and minute < now() - make_interval(secs => $2)",
    )
    .bind(merchant_code)
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(true)
}

/// Flushes the tally and samples the minute every `interval` until `cancel` fires,
/// then flushes once more.
pub async fn keep_minutes(
    pool: PgPool,
    merchants: Merchants,
    tally: Tally,
    interval: Duration,
    retention: Duration,
    cancel: CancellationToken,
) {
    let flush = || async {
        if let Err(e) = tally.flush(&pool).await {
            tracing::warn!(error = %e, "could not record the console's counts; keeping them for the next try");
        }
    };
    every(interval, &cancel, || async {
        flush().await;
        for merchant in merchants.all() {
            if let Err(e) = sample_minute(&pool, merchant, retention).await {
                tracing::warn!(error = %e, "could not sample the queue depth for the console");
            }
        }
    })
    .await;
    flush().await;
}

/// One minute of figures, as the charts read them (every replica's counts summed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Minute {
    pub minute: DateTime<Utc>,
    pub callbacks: i64,
    pub platform_requests: i64,
    pub platform_fetches: i64,
    pub platform_throttled: i64,
    pub status_changes: i64,
    pub queue_pending: Option<i64>,
    pub queue_dead: Option<i64>,
}

/// Returns the minutes recorded since `since`, oldest first.
pub async fn list_minutes(
    pool: &PgPool,
    merchant_code: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<Minute>> {
    sqlx::query_as(
        "select minute, callbacks, platform_requests, platform_fetches, platform_throttled,
                status_changes, queue_pending, queue_dead
         from console_minutes
         where merchant_code = $1 and minute >= $2
         order by minute",
    )
    .bind(merchant_code)
    .bind(since)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_land_in_the_minute_they_happened() {
        let tally = Tally::default();
        let m1: Arc<str> = "M1".into();
        tally.callbacks(&m1, PaymentKind::Payin, "accepted", Written::Stored, 1);
        tally.callbacks(&m1, PaymentKind::Payin, "accepted", Written::Failed, 5);
        tally.platform_request(&m1, "payins", Some(429));
        tally.platform_request(&m1, "auth-tokens", Some(200));
        tally.status_changed(&m1);
        let mut taken = Vec::new();
        let flushed = tally
            .pending
            .flush(async |counts| {
                taken.extend_from_slice(counts);
                Ok::<(), ()>(())
            })
            .await;
        assert!(flushed.is_ok());
        let total = taken.iter().fold(Counts::default(), |mut t, (_, c)| {
            t.merge(*c);
            t
        });
        assert_eq!(
            total,
            Counts {
                callbacks: 1,
                platform_requests: 2,
                platform_fetches: 1,
                platform_throttled: 1,
                status_changes: 1,
            }
        );
        assert!(taken.iter().all(|(m, _)| m.1.timestamp() % 60 == 0));
    }
}
