//! The callback inbox: writer tasks that commit many callbacks per transaction
//! (group commit) and answer each request only after its transaction committed.

use std::sync::Arc;

use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::config::InboxSettings;
use crate::domain::{PaymentId, PaymentKind};
use crate::queue::{enqueue_syncs, Priority};

/// A callback as received: its payment (none if the body had no `idEntity`) and body.
#[derive(Debug)]
pub struct InboxEntry {
    pub kind: PaymentKind,
    pub id: Option<PaymentId>,
    pub body: Value,
}

impl InboxEntry {
    /// `accepted` when the callback names a payment (a sync is scheduled), else `ignored`.
    pub fn outcome(&self) -> &'static str {
        if self.id.is_some() {
            "accepted"
        } else {
            "ignored"
        }
    }
}

struct Submission {
    entry: InboxEntry,
    committed: oneshot::Sender<bool>,
}

/// The sending side; cheap to clone. Writers stop once every clone is dropped
/// and the queued callbacks are written.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Submission>,
}

/// Why a callback could not be stored.
#[derive(Debug, thiserror::Error)]
#[error("the callback could not be stored durably")]
pub struct NotStored;

impl Inbox {
    /// Starts the writer tasks and returns the inbox with their handles.
    pub fn start(
        pool: PgPool,
        merchant_code: Arc<str>,
        settings: &InboxSettings,
    ) -> (Inbox, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(settings.batch_size * settings.writers * 4);
        let rx = Arc::new(Mutex::new(rx));
        let writers = (0..settings.writers)
            .map(|_| {
                tokio::spawn(run_writer(
                    rx.clone(),
                    pool.clone(),
                    merchant_code.clone(),
                    settings.batch_size,
                ))
            })
            .collect();
        (Inbox { tx }, writers)
    }

    /// Stores the callback (and schedules its sync) durably; returns once committed.
    pub async fn submit(&self, entry: InboxEntry) -> Result<(), NotStored> {
        let (committed, done) = oneshot::channel();
        self.tx
            .send(Submission { entry, committed })
            .await
            .map_err(|_| NotStored)?;
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(NotStored),
        }
    }
}

async fn run_writer(
    rx: Arc<Mutex<mpsc::Receiver<Submission>>>,
    pool: PgPool,
    merchant_code: Arc<str>,
    batch_size: usize,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        // Take whatever is waiting, up to a batch: under load batches grow by themselves.
        let received = rx.lock().await.recv_many(&mut batch, batch_size).await;
        if received == 0 {
            return;
        }
        let committed = match write_batch(&pool, &merchant_code, &batch).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, callbacks = batch.len(), "could not store callbacks");
                false
            }
        };
        metrics::histogram!("paymirror_inbox_batch_size").record(batch.len() as f64);
        for submission in batch.drain(..) {
            let outcome = submission.entry.outcome();
            let stored = if committed { "stored" } else { "failed" };
            metrics::counter!("paymirror_callbacks_total", "kind" => submission.entry.kind.as_str(), "outcome" => outcome, "result" => stored).increment(1);
            // The requester may have gone away; the callback is stored all the same.
            let _ = submission.committed.send(committed);
        }
    }
}

/// Writes the callbacks and their sync jobs in one transaction.
async fn write_batch(pool: &PgPool, merchant_code: &str, batch: &[Submission]) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let kinds: Vec<&str> = batch.iter().map(|s| s.entry.kind.as_str()).collect();
    let ids: Vec<Option<&str>> = batch
        .iter()
        .map(|s| s.entry.id.as_ref().map(|id| id.as_str()))
        .collect();
    let outcomes: Vec<&str> = batch.iter().map(|s| s.entry.outcome()).collect();
    let bodies: Vec<Json<&Value>> = batch.iter().map(|s| Json(&s.entry.body)).collect();
    sqlx::query(
        "insert into callbacks (merchant_code, kind, payment_id, outcome, body)
         select $1, k, i, o, b from unnest($2::text[], $3::text[], $4::text[], $5::jsonb[]) as t(k, i, o, b)",
    )
    .bind(merchant_code)
    .bind(&kinds)
    .bind(&ids)
    .bind(&outcomes)
    .bind(&bodies)
    .execute(&mut *tx)
    .await?;

    let payments: Vec<(PaymentKind, PaymentId)> = batch
        .iter()
        .filter_map(|s| s.entry.id.clone().map(|id| (s.entry.kind, id)))
        .collect();
    enqueue_syncs(&mut tx, merchant_code, &payments, Priority::Callback).await?;
    tx.commit().await
}
