use sqlx::PgPool;

use super::JobState;

/// How many syncs are in each busy state, and how late the oldest due one is.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth {
    pub by_state: Vec<(JobState, i64)>,
    pub oldest_due_secs: f64,
}

/// Returns the queue's depth for one merchant. The counts come from the partial
/// indexes on `pending`, `running` and `dead`, so this stays cheap at scrape time.
pub async fn queue_depth(pool: &PgPool, merchant_code: &str) -> sqlx::Result<QueueDepth> {
    let by_state: Vec<(JobState, i64)> = sqlx::query_as(
        "select s.state, (select count(*) from sync_jobs j where j.merchant_code = $1 and j.state = s.state)
         from (values ('pending'), ('running'), ('dead')) as s(state)",
    )
    .bind(merchant_code)
    .fetch_all(pool)
    .await?;
    let oldest_due: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from now() - min(run_at))::float8 from sync_jobs
         where merchant_code = $1 and state = 'pending' and run_at <= now()",
    )
    .bind(merchant_code)
    .fetch_one(pool)
    .await?;
    Ok(QueueDepth {
        by_state,
        oldest_due_secs: oldest_due.unwrap_or(0.0),
    })
}
