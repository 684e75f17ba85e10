use std::time::Duration;

use sqlx::PgPool;

/// The rate budget shared by every replica of one merchant, kept in `platform_budget`.
///
/// The row holds the send times of the last `max` requests, on the database's clock so
/// that replicas' clocks do not matter. Taking a slot is one statement under the row
/// lock: it succeeds when fewer than `max` sends fall in the window. A replica that dies
/// holds nothing: its send times simply age out of the window.
#[derive(Debug, Clone)]
pub struct SharedBudget {
    pool: PgPool,
    merchant_code: String,
    max: i32,
    window: Duration,
}

impl SharedBudget {
    /// Returns the budget, creating its row if this is the merchant's first replica.
    pub async fn new(
        pool: PgPool,
        merchant_code: &str,
        max: u32,
        window: Duration,
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
        })
    }

    /// Takes one send slot: `Ok(None)` when taken, `Ok(Some(wait))` when the window is
    /// full or the merchant is paused, with how long until a slot may free up.
    pub async fn try_take(&self) -> sqlx::Result<Option<Duration>> {
        let (taken, wait_secs): (bool, Option<f64>) = sqlx::query_as(
            "with cur as (
               select merchant_code, paused_until,
                      array(select t from unnest(sent) t where t > clock_timestamp() - make_interval(secs => $3)
                            order by t) as recent
               from platform_budget where merchant_code = $1
               for update
             ), took as (
               update platform_budget b set sent = cur.recent || clock_timestamp(), updated_at = now()
               from cur
               where b.merchant_code = cur.merchant_code
                 and cardinality(cur.recent) < $2
                 and (cur.paused_until is null or cur.paused_until <= clock_timestamp())
               returning 1
             )
             select exists (select 1 from took),
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
        .fetch_one(&self.pool)
        .await?;
        if taken {
            return Ok(None);
        }
        let wait = wait_secs.unwrap_or(0.0).max(0.001);
        Ok(Some(Duration::from_secs_f64(wait)))
    }

    /// Pauses every replica of the merchant for at least `for_at_least`.
    pub async fn pause(&self, for_at_least: Duration) -> sqlx::Result<()> {
        sqlx::query(
            "update platform_budget set
               paused_until = greatest(paused_until, clock_timestamp() + make_interval(secs => $2)),
               updated_at = now()
             where merchant_code = $1",
        )
        .bind(&self.merchant_code)
        .bind(for_at_least.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
