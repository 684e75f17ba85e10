//! How deep the queue is: jobs by state and how late the oldest due one is.

use sqlx::PgPool;

use crate::domain::JobState;

// One count per state, each a constant, so each uses its state's partial index.
pub const DEPTH: &str = "select
           (select count(*) from sync_jobs where merchant_code = $1 and state = 'pending'),
           (select count(*) from sync_jobs where merchant_code = $1 and state = 'running'),
           (select count(*) from sync_jobs where merchant_code = $1 and state = 'dead')";

pub const OLDEST_DUE: &str = "select extract(epoch from now() - min(run_at))::float8 from sync_jobs
         where merchant_code = $1 and state = 'pending' and run_at <= now()";

/// How many syncs are in each busy state, and how late the oldest due one is.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth {
    pub by_state: Vec<(JobState, i64)>,
    pub oldest_due_secs: f64,
}

/// Returns the queue's depth for one merchant. The counts come from the partial
/// indexes on `pending`, `running` and `dead`, so this stays cheap at scrape time.
pub async fn queue_depth(pool: &PgPool, merchant_code: &str) -> sqlx::Result<QueueDepth> {
    let (pending, running, dead): (i64, i64, i64) = sqlx::query_as(DEPTH)
        .bind(merchant_code)
        .fetch_one(pool)
        .await?;
    let by_state = vec![
        (JobState::Pending, pending),
        (JobState::Running, running),
        (JobState::Dead, dead),
    ];
    let oldest_due: Option<f64> = sqlx::query_scalar(OLDEST_DUE)
        .bind(merchant_code)
        .fetch_one(pool)
        .await?;
    Ok(QueueDepth {
        by_state,
        oldest_due_secs: oldest_due.unwrap_or(0.0),
    })
}
