//! The rate budget shared by every replica of a merchant: the send times of its last
//! `max_rps` platform requests and any pause, in one `platform_budget` row on the
//! database's clock, so the platform never counts more than `max_rps` in a second.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// How often a sender waiting on an in-flight request or on a pause looks again: a
/// response or an operator's `paymirror platform resume` frees it within this.
const RECHECK: Duration = Duration::from_millis(250);

/// The rate budget shared by every replica of one merchant, kept in `platform_budget`.
///
/// The row's `sent` array holds one entry per request that still counts: the
/// request counts while its entry is later than `now - window`, on the database's
/// clock so that replicas' clocks do not matter. A request in flight has an entry in
/// the future (its send time plus the longest it may take); when its response
/// arrives the entry becomes the arrival time, so it counts one window more.
/// A replica that dies holds nothing for longer than that bound.
///
/// (Binaries of the previous release read the same array the same way, so a rolling
/// deploy shares one budget.)
#[derive(Debug, Clone)]
pub struct SharedBudget {
    pool: PgPool,
    merchant_code: String,
    max: i32,
    window: Duration,
    in_flight_bound: Duration,
}

/// The pause and the window as one replica sees them, for operators.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BudgetState {
    pub paused_until: Option<DateTime<Utc>>,
    pub counted: i32,
}

impl SharedBudget {
    /// Returns the budget, creating its row if this is the merchant's first replica.
    /// `in_flight_bound` is the longest a request may take (connect plus request timeout).
    pub async fn new(
        pool: PgPool,
        merchant_code: &str,
        max: u32,
        window: Duration,
        in_flight_bound: Duration,
    ) -> sqlx::Result<Self> {
        sqlx::query(
            "insert into platform_budget (merchant_code) values ($1) on conflict do nothing",
        )
        .bind(merchant_code)
        .execute(&pool)
        .await?;
        Ok(SharedBudget {
            pool,
            merchant_code: merchant_code.to_owned(),
            max: max.max(1) as i32,
            window,
            in_flight_bound,
        })
    }

    /// Takes one send slot: `Ok(Ok(entry))` when taken (give `entry` to
    /// [`answered`](Self::answered) when the response arrives), `Ok(Err(wait))` when the
    /// window is full or the merchant is paused, with how long to wait before trying again.
    pub async fn try_take(&self) -> sqlx::Result<Result<DateTime<Utc>, Duration>> {
        let (entry, wait_secs): (Option<DateTime<Utc>>, Option<f64>) = sqlx::query_as(
            "with cur as (
               select merchant_code, paused_until,
                      array(select t from unnest(sent) t where t > clock_timestamp() - make_interval(secs => $3)
                            order by t) as recent
               from platform_budget where merchant_code = $1
               for update
             ), took as (
               update platform_budget b
               set sent = cur.recent || (clock_timestamp() + make_interval(secs => $4)), updated_at = now()
               from cur
               where b.merchant_code = cur.merchant_code
                 and cardinality(cur.recent) < $2
                 and (cur.paused_until is null or cur.paused_until <= clock_timestamp())
               returning b.sent[cardinality(b.sent)] as entry
             )
             select (select entry from took),
                    extract(epoch from greatest(
                      cur.paused_until,
                      case when cardinality(cur.recent) >= $2
                        then cur.recent[cardinality(cur.recent) - $2 + 1] + make_interval(secs => $3) end
                    ) - clock_timestamp())::float8
             from cur",
        )
        .bind(&self.merchant_code)
        .bind(self.max)
        .bind(self.window.as_secs_f64())
        .bind(self.in_flight_bound.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        if let Some(entry) = entry {
            return Ok(Ok(entry));
        }
        let wait = Duration::from_secs_f64(wait_secs.unwrap_or(0.0).max(0.001));
        // Past the window's length, the wait is a pause or an in-flight request: look again soon.
        Ok(Err(if wait > self.window { RECHECK } else { wait }))
    }

    /// Marks the request of `entry` answered now: it counts for one more window.
    pub async fn answered(self, entry: DateTime<Utc>) {
        let done = sqlx::query(
            "update platform_budget set sent = array_replace(sent, $2, clock_timestamp()), updated_at = now()
             where merchant_code = $1",
        )
        .bind(&self.merchant_code)
        .bind(entry)
        .execute(&self.pool)
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, "could not mark a platform request answered; it counts until its bound");
        }
    }

    /// Pauses every replica of the merchant for at least `for_at_least`.
    pub async fn pause(&self, for_at_least: Duration) -> sqlx::Result<()> {
        pause(&self.pool, &self.merchant_code, for_at_least).await
    }
}

async fn pause(pool: &PgPool, merchant_code: &str, for_at_least: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "update platform_budget set
           paused_until = greatest(paused_until, clock_timestamp() + make_interval(secs => $2)),
           updated_at = now()
         where merchant_code = $1",
    )
    .bind(merchant_code)
    .bind(for_at_least.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the merchant's pause at once (an operator's decision); returns whether one was on.
pub async fn resume(pool: &PgPool, merchant_code: &str) -> sqlx::Result<bool> {
    let cleared = sqlx::query(
        "update platform_budget set paused_until = null, updated_at = now()
         where merchant_code = $1 and paused_until > clock_timestamp()",
    )
    .bind(merchant_code)
    .execute(pool)
    .await?;
    Ok(cleared.rows_affected() > 0)
}

/// Returns the merchant's pause and how many requests its window counts now.
pub async fn budget_state(
    pool: &PgPool,
    merchant_code: &str,
    window: Duration,
) -> sqlx::Result<Option<BudgetState>> {
    sqlx::query_as(
        "select case when paused_until > clock_timestamp() then paused_until end as paused_until,
                (select count(*) from unnest(sent) t where t > clock_timestamp() - make_interval(secs => $2))::int4 as counted
         from platform_budget where merchant_code = $1",
    )
    .bind(merchant_code)
    .bind(window.as_secs_f64())
    .fetch_optional(pool)
    .await
}
