//! The service's background chores: work repeated every interval until shutdown
//! ([`every`]), and counts kept in memory and written in batches ([`Pending`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `task` `interval` after the call, then again `interval` after each run ends,
/// until `cancel` fires (a run under way is finished, not cut).
pub async fn every<F, Fut>(interval: Duration, cancel: &CancellationToken, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = cancel.cancelled() => return,
        }
        task().await;
    }
}

/// What a count of [`Pending`] does with another of the same key: adds it in.
pub trait Merge {
    fn merge(&mut self, other: Self);
}

/// Counts kept in memory per key until they are written: counting is one short,
/// uncontended lock, never a database write; counts whose write fails are merged
/// back for the next one. Cheap to clone; clones share the counts.
#[derive(Debug)]
pub struct Pending<K, V> {
    counts: Arc<Mutex<BTreeMap<K, V>>>,
}

impl<K, V> Clone for Pending<K, V> {
    fn clone(&self) -> Self {
        Pending {
            counts: Arc::clone(&self.counts),
        }
    }
}

impl<K, V> Default for Pending<K, V> {
    fn default() -> Self {
        Pending {
            counts: Arc::default(),
        }
    }
}

impl<K: Ord, V: Default + Merge> Pending<K, V> {
    /// Updates the count of `key` (starting from its default) with `count`.
    pub fn update(&self, key: K, count: impl FnOnce(&mut V)) {
        count(self.lock().entry(key).or_default());
    }

    /// Takes every count and hands them to `write`; returns how many keys were written.
    /// If `write` fails, the counts are merged back and its error returned.
    pub async fn flush<E>(
        &self,
        write: impl AsyncFnOnce(&[(K, V)]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let taken: Vec<(K, V)> = std::mem::take(&mut *self.lock()).into_iter().collect();
        if taken.is_empty() {
            return Ok(0);
        }
        match write(&taken).await {
            Ok(()) => Ok(taken.len()),
            Err(e) => {
                let mut counts = self.lock();
                for (key, value) in taken {
                    counts.entry(key).or_default().merge(value);
                }
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<K, V>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Merge for i64 {
        fn merge(&mut self, other: i64) {
            *self += other;
        }
    }

    #[tokio::test]
    async fn a_failed_write_keeps_its_counts_for_the_next() {
        let pending: Pending<&str, i64> = Pending::default();
        pending.update("a", |n| *n += 2);
        let failed = pending.flush(async |_| Err::<(), _>("down")).await;
        assert_eq!(failed, Err("down"));
        pending.update("a", |n| *n += 1);

        let mut written = Vec::new();
        let flushed = pending
            .flush(async |counts| {
                written.extend_from_slice(counts);
                Ok::<(), ()>(())
            })
            .await;

        assert_eq!(flushed, Ok(1));
        assert_eq!(written, [("a", 3)]);
        assert_eq!(pending.flush(async |_| Ok::<(), ()>(())).await, Ok(0));
    }

    #[tokio::test(start_paused = true)]
    async fn runs_every_interval_until_cancelled() {
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let runs = std::sync::Mutex::new(Vec::new());
        every(Duration::from_secs(10), &cancel, || async {
            let mut runs = runs.lock().expect("lock");
            runs.push(started.elapsed().as_secs());
            if runs.len() == 3 {
                cancel.cancel();
            }
        })
        .await;
        assert_eq!(*runs.lock().expect("lock"), [10, 20, 30]);
    }
}
