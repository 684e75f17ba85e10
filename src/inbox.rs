//! The callback inbox: writer tasks that commit many callbacks per transaction
//! (group commit) and answer each request only after its transaction committed.
//!
//! One callback never decides another's answer: when Postgres refuses a batch for
//! the data of one of its rows, the batch is split and retried until that row is
//! alone, and only it is refused. When the database itself fails, the whole batch
//! is answered 503 (the platform repeats it).

use std::future::Future;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::config::InboxSettings;
use crate::db::refused_data;
use crate::domain::{PaymentId, PaymentKind};
use crate::ops::{Tally, Written};
use crate::queue::{distinct_payments, enqueue_ctes, Priority, NOTIFY_CHANNEL};

/// A callback as received: its payment (none if the body had no `idEntity`) and body.
#[derive(Debug)]
pub struct InboxEntry {
    /// A configured merchant code (the callback's URL named it).
    pub merchant: Arc<str>,
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

/// Why a callback was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotStored {
    /// Postgres refuses this callback's data (the SQLSTATE, logged, never answered);
    /// sending it again will not help.
    #[error("{}", refusal_reason(.0))]
    Refused(String),
    /// The database failed or did not commit in time; the platform should retry.
    #[error("the callback could not be stored durably")]
    Unavailable,
}

/// Says what in the client's body the database could not hold, by its SQLSTATE,
/// without the code itself (an internal detail, SPEC §2).
fn refusal_reason(sqlstate: &str) -> &'static str {
    match sqlstate {
        "22021" | "22P05" => {
            "the body holds text the service cannot store (an invalid or unsupported character)"
        }
        "22003" => "the body holds a number too large or too precise to store",
        "54000" | "54001" => "the body is too large or too deeply nested to store",
        _ => "the body holds a value the service cannot store",
    }
}

type Answer = Result<(), NotStored>;

struct Submission {
    entry: InboxEntry,
    committed: oneshot::Sender<Answer>,
}

/// The sending side; cheap to clone. Writers stop once every clone is dropped
/// and the queued callbacks are written.
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Submission>,
    commit_timeout: Duration,
    alive: Arc<AtomicUsize>,
}

/// What every writer needs.
#[derive(Clone)]
struct Writer {
    rx: Arc<Mutex<mpsc::Receiver<Submission>>>,
    /// Where stored callbacks are counted for the console's charts.
    tally: Tally,
    pool: PgPool,
    batch_size: usize,
    commit_timeout: Duration,
    /// The held connection is pinged before a batch when it was not used for this long.
    ping_after_idle: Duration,
}

impl Inbox {
    /// Starts the supervised writer tasks and returns the inbox with their handles.
    /// Stored callbacks are counted in `tally` (the console's charts). Each writer opens
    /// its connection with `pool`'s options and pings it as [`crate::db::needs_ping`]
    /// says for `ping_after_idle`.
    pub fn start(
        pool: PgPool,
        settings: &InboxSettings,
        ping_after_idle: Duration,
        tally: Tally,
    ) -> (Inbox, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(settings.batch_size * settings.writers * 4);
        let commit_timeout = settings.commit_timeout;
        let writer = Writer {
            rx: Arc::new(Mutex::new(rx)),
            tally,
            pool,
            batch_size: settings.batch_size,
            commit_timeout,
            ping_after_idle,
        };
        let alive = Arc::new(AtomicUsize::new(0));
        let writers = (0..settings.writers)
            .map(|_| {
                let writer = writer.clone();
                tokio::spawn(supervise(alive.clone(), move || writer.clone().run()))
            })
            .collect();
        let inbox = Inbox {
            tx,
            commit_timeout,
            alive,
        };
        (inbox, writers)
    }

    /// Stores the callback (and schedules its sync) durably; returns once committed,
    /// or why not. Gives up (unavailable) after the commit timeout.
    pub async fn submit(&self, entry: InboxEntry) -> Answer {
        let (committed, done) = oneshot::channel();
        let submitted = async {
            self.tx
                .send(Submission { entry, committed })
                .await
                .map_err(|_| NotStored::Unavailable)?;
            done.await.unwrap_or(Err(NotStored::Unavailable))
        };
        tokio::time::timeout(self.commit_timeout, submitted)
            .await
            .unwrap_or(Err(NotStored::Unavailable))
    }

    /// Returns how many writer tasks are running (readiness fails at zero).
    pub fn writers_alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }
}

/// Runs the task `start` makes, and starts it again if it panics; returns when it
/// ends normally. `alive` counts the tasks running.
async fn supervise<F, Fut>(alive: Arc<AtomicUsize>, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        alive.fetch_add(1, Ordering::Relaxed);
        let ended = AssertUnwindSafe(start()).catch_unwind().await;
        alive.fetch_sub(1, Ordering::Relaxed);
        match ended {
            Ok(()) => return,
            Err(_) => {
                tracing::error!(
                    "a callback writer panicked; its batch was answered 503; restarting it"
                );
                metrics::counter!("paymirror_inbox_writer_restarts_total").increment(1);
            }
        }
    }
}

impl Writer {
    async fn run(self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut held = Held::default();
        loop {
            // Take whatever is waiting, up to a batch: under load batches grow by themselves.
            let received = self
                .rx
                .lock()
                .await
                .recv_many(&mut batch, self.batch_size)
                .await;
            if received == 0 {
                held.close().await;
                return;
            }
            // One statement writes one merchant's callbacks: a batch is written as
            // runs of one merchant each (almost always a single run).
            batch.sort_by(|a, b| a.entry.merchant.cmp(&b.entry.merchant));
            let started = Instant::now();
            let answers = self.commit(&mut held, &batch).await;
            metrics::histogram!("paymirror_inbox_commit_seconds").record(started.elapsed());
            metrics::histogram!("paymirror_inbox_batch_size").record(batch.len() as f64);
            let mut answered = answers.iter();
            for run in batch.chunk_by(same_merchant) {
                let mut counted = Outcomes::default();
                for (submission, answer) in run.iter().zip(answered.by_ref()) {
                    counted.add(&submission.entry, answer);
                }
                counted.record(&self.tally, &run[0].entry.merchant);
            }
            for (submission, answer) in batch.drain(..).zip(answers) {
                // The requester may have gone away; the callback is stored all the same.
                let _ = submission.committed.send(answer);
            }
        }
    }

    /// Commits the batch, splitting it where Postgres refuses a row's data, and
    /// returns each submission's answer.
    async fn commit(&self, held: &mut Held, batch: &[Submission]) -> Vec<Answer> {
        let mut answers = vec![Err(NotStored::Unavailable); batch.len()];
        let mut todo: Vec<Range<usize>> = Vec::with_capacity(16);
        let mut start = 0;
        for run in batch.chunk_by(same_merchant) {
            todo.push(start..start + run.len());
            start += run.len();
        }
        while let Some(range) = todo.pop() {
            let written = tokio::time::timeout(self.commit_timeout, async {
                let conn = held.connection(&self.pool, self.ping_after_idle).await?;
                write_batch(conn, &batch[range.clone()]).await
            })
            .await;
            held.judge(&written);
            let answer = match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => match refused_data(&e) {
                    Some(_) if range.len() > 1 => {
                        let mid = range.start + range.len() / 2;
                        todo.push(mid..range.end);
                        todo.push(range.start..mid);
                        continue;
                    }
                    Some(code) => {
                        tracing::warn!(sqlstate = %code, "the database refused one callback's data; refusing it alone");
                        Err(NotStored::Refused(code))
                    }
                    None => {
                        tracing::warn!(error = %e, callbacks = range.len(), "could not store callbacks");
                        Err(NotStored::Unavailable)
                    }
                },
                Err(_) => {
                    tracing::warn!(callbacks = range.len(), "storing callbacks timed out");
                    Err(NotStored::Unavailable)
                }
            };
            answers[range].fill(answer);
        }
        answers
    }
}

/// The writer's own connection, opened with the pool's options but outside it and
/// kept from one batch to the next. A connection taken from the pool for each batch
/// costs two more round trips on the path every callback waits on: sqlx pings it when
/// acquired and again when released (BENCHMARKS.md, session 5). Outside the pool,
/// callbacks never wait for a connection behind a burst of API reads, and reads keep
/// every pooled connection. A failure other than refused data drops it; the next
/// batch opens a new one.
#[derive(Default)]
struct Held {
    conn: Option<PgConnection>,
    last_used: Option<Instant>,
}

impl Held {
    /// Returns the held connection, else a newly opened one. One not used for
    /// `ping_after_idle` is pinged first (as HikariCP's `aliveBypassWindowMs` does):
    /// one that sat idle may have been cut off (a failover, a firewall), one in steady
    /// use is known to work.
    async fn connection(
        &mut self,
        pool: &PgPool,
        ping_after_idle: Duration,
    ) -> sqlx::Result<&mut PgConnection> {
        // Never used (just opened, or a batch failed on it): pinged as if long idle.
        let idle_for = self.last_used.map_or(Duration::MAX, |used| used.elapsed());
        let conn = match self.conn.take() {
            Some(mut conn) => {
                match crate::db::ping_if_due(&mut conn, idle_for, ping_after_idle).await {
                    Ok(()) => conn,
                    Err(_) => crate::db::connect_outside_pool(pool).await?,
                }
            }
            None => crate::db::connect_outside_pool(pool).await?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Closes the connection, telling Postgres so.
    async fn close(self) {
        if let Some(conn) = self.conn {
            let _ = conn.close().await;
        }
    }

    /// Keeps the connection after a commit or a refusal of data (Postgres answered);
    /// drops it after anything else, which may have left it broken or mid-statement.
    fn judge(&mut self, written: &Result<sqlx::Result<()>, tokio::time::error::Elapsed>) {
        match written {
            Ok(Ok(())) => self.last_used = Some(Instant::now()),
            Ok(Err(e)) if refused_data(e).is_some() => self.last_used = Some(Instant::now()),
            failed => {
                if let Ok(Err(e)) = failed {
                    crate::db::note_failure(e);
                }
                self.conn = None;
                self.last_used = None;
            }
        }
    }
}

/// How a batch's callbacks ended, by kind, outcome and result: one count per group
/// rather than per callback.
#[derive(Default)]
struct Outcomes([[[u64; 3]; 2]; 2]);

impl Outcomes {
    const KINDS: [PaymentKind; 2] = [PaymentKind::Payin, PaymentKind::Payout];
    const OUTCOMES: [&'static str; 2] = ["accepted", "ignored"];
    const RESULTS: [Written; 3] = [Written::Stored, Written::Refused, Written::Failed];

    fn add(&mut self, entry: &InboxEntry, answer: &Answer) {
        let kind = usize::from(entry.kind == PaymentKind::Payout);
        let outcome = usize::from(entry.id.is_none());
        let result = match answer {
            Ok(()) => 0,
            Err(NotStored::Refused(_)) => 1,
            Err(NotStored::Unavailable) => 2,
        };
        self.0[kind][outcome][result] += 1;
    }

    /// Counts each group in `tally`, as `merchant`'s.
    fn record(&self, tally: &Tally, merchant: &Arc<str>) {
        for (kind, outcomes) in Self::KINDS.iter().zip(&self.0) {
            for (outcome, results) in Self::OUTCOMES.iter().zip(outcomes) {
                for (written, &n) in Self::RESULTS.iter().zip(results) {
                    if n > 0 {
                        tally.callbacks(merchant, *kind, outcome, *written, n);
                    }
                }
            }
        }
    }
}

/// The one statement a batch costs, committed as a whole: the callbacks as one row of
/// `callback_batches` (one tuple and one index append per batch, not per callback), the
/// payments never seen before, the sync jobs, and the workers' wake-up when a job was
/// written (a job already pending was announced when it became so).
pub static WRITE_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with cb as (
           insert into callback_batches (merchant_code, kinds, payment_ids, outcomes, bodies)
           values ($1, $5::text[], $6::text[], $7::text[], $8::jsonb[])
         ), {}
         select pg_notify($9, '') where exists (select from todo)",
        enqueue_ctes()
    )
});

/// Writes the callbacks and their sync jobs in one statement (one round trip, its
/// own transaction): the callbacks, payment stubs and sync jobs commit together.
/// Whether two callbacks are the same merchant's: a batch, sorted by merchant, is
/// written and counted in runs of one merchant each.
fn same_merchant(a: &Submission, b: &Submission) -> bool {
    a.entry.merchant == b.entry.merchant
}

/// Every callback of `batch` is the same merchant's.
async fn write_batch(conn: &mut PgConnection, batch: &[Submission]) -> sqlx::Result<()> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    let merchant_code: &str = &first.entry.merchant;
    let kinds: Vec<&str> = batch.iter().map(|s| s.entry.kind.as_str()).collect();
    let ids: Vec<Option<&str>> = batch
        .iter()
        .map(|s| s.entry.id.as_ref().map(|id| id.as_str()))
        .collect();
    let outcomes: Vec<&str> = batch.iter().map(|s| s.entry.outcome()).collect();
    let bodies: Vec<Json<&Value>> = batch.iter().map(|s| Json(&s.entry.body)).collect();
    let payments: Vec<(PaymentKind, PaymentId)> = batch
        .iter()
        .filter_map(|s| s.entry.id.clone().map(|id| (s.entry.kind, id)))
        .collect();
    let (job_kinds, job_ids) = distinct_payments(&payments);
    sqlx::query(&WRITE_BATCH)
        .bind(merchant_code)
        .bind(&job_kinds)
        .bind(&job_ids)
        .bind(Priority::Callback.as_i16())
        .bind(&kinds)
        .bind(&ids)
        .bind(&outcomes)
        .bind(&bodies)
        .bind(NOTIFY_CHANNEL)
        .fetch_all(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_writer_is_restarted_and_counted_while_it_runs() {
        let alive = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let (seen_alive, mut alive_rx) = mpsc::unbounded_channel();
        supervise(alive.clone(), || {
            let run = runs.fetch_add(1, Ordering::Relaxed);
            let (alive, seen_alive) = (alive.clone(), seen_alive.clone());
            async move {
                let _ = seen_alive.send(alive.load(Ordering::Relaxed));
                if run == 0 {
                    panic!("writer bug");
                }
            }
        })
        .await;

        assert_eq!(runs.load(Ordering::Relaxed), 2);
        assert_eq!(alive_rx.recv().await, Some(1));
        assert_eq!(alive_rx.recv().await, Some(1));
        assert_eq!(alive.load(Ordering::Relaxed), 0);
    }
}
