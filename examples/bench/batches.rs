//! The group-commit writers' batches during an ingest run: how many, how large, and
//! how long each took to store. A closed-loop run (wrk's fixed connections) is bound
//! by that time: every callback of a batch waits for it, and the next batch forms
//! while it runs. paymirror reports it in `/metrics`; the bare group commit counts
//! the same span (binding its arrays, the statement, the commit) in a [`Tally`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::exposition::Exposition;

/// Totals since the writer started; a run's figures are the difference of two.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batches {
    pub batches: f64,
    pub callbacks: f64,
    pub seconds: f64,
}

impl Batches {
    /// What happened between `before` and `self`.
    pub fn since(self, before: Batches) -> Batches {
        Batches {
            batches: self.batches - before.batches,
            callbacks: self.callbacks - before.callbacks,
            seconds: self.seconds - before.seconds,
        }
    }

    pub fn callbacks_per_batch(&self) -> f64 {
        self.callbacks / self.batches.max(1.0)
    }

    /// Mean time to store a batch, in milliseconds.
    pub fn ms_per_batch(&self) -> f64 {
        self.seconds * 1000.0 / self.batches.max(1.0)
    }
}

/// Where a side's batch totals are read.
#[derive(Clone)]
pub enum Source {
    /// paymirror's `/metrics` at this base URL.
    Metrics(String),
    /// The bare group commit's writer, in this process.
    Tally(Arc<Tally>),
}

impl Source {
    /// The totals now, or `None` if they cannot be read.
    pub async fn read(&self) -> Option<Batches> {
        match self {
            Source::Metrics(base) => {
                let metrics = Exposition::scrape(base).await?;
                // A histogram appears once its first sample is recorded: absent, it is 0.
                let value = |name: &str| metrics.value(name).unwrap_or(0.0);
                Some(Batches {
                    batches: value("paymirror_inbox_commit_seconds_count"),
                    callbacks: value("paymirror_inbox_batch_size_sum"),
                    seconds: value("paymirror_inbox_commit_seconds_sum"),
                })
            }
            Source::Tally(tally) => Some(tally.totals()),
        }
    }
}

/// The bare group commit's own count of its batches.
#[derive(Default)]
pub struct Tally {
    batches: AtomicU64,
    callbacks: AtomicU64,
    nanos: AtomicU64,
}

impl Tally {
    /// Counts one batch of `callbacks` that took `took` to store.
    pub fn record(&self, callbacks: usize, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.callbacks
            .fetch_add(callbacks as u64, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn totals(&self) -> Batches {
        Batches {
            batches: self.batches.load(Ordering::Relaxed) as f64,
            callbacks: self.callbacks.load(Ordering::Relaxed) as f64,
            seconds: self.nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}
