//! Notices a platform-wide outage and waits it out with probes.
//!
//! After `threshold` platform failures in a row (5xx, timeouts, refused connections,
//! with no answer in between) the breaker opens: fetches stop, and one probe fetch
//! is let through every `probe_interval`. The first answer that is not a failure
//! closes it and every sender resumes at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Breaker {
    /// The merchant whose requests it judges: the `merchant` label of its metrics.
    merchant: Arc<str>,
    threshold: u32,
    probe_interval: Duration,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open: bool,
    next_probe_at: Instant,
    probing: bool,
}

/// Leave to send, as a normal fetch or as the one probe of an open breaker.
#[derive(Debug)]
pub struct Admission {
    breaker: Arc<Breaker>,
    probe: bool,
}

impl Breaker {
    pub fn new(merchant: Arc<str>, threshold: u32, probe_interval: Duration) -> Self {
        Breaker {
            merchant,
            threshold: threshold.max(1),
            probe_interval,
            state: Mutex::new(State {
                failures: 0,
                open: false,
                next_probe_at: Instant::now(),
                probing: false,
            }),
            changed: Notify::new(),
        }
    }

    /// Returns at once while the platform answers; during an outage, waits for the
    /// turn of the next probe (one at a time, one per `probe_interval`).
    pub async fn admit(self: &Arc<Self>) -> Admission {
        loop {
            let changed = self.changed.notified();
            let wait_until = {
                let mut state = self.lock();
                if !state.open {
                    return Admission {
                        breaker: self.clone(),
                        probe: false,
                    };
                }
                if !state.probing && Instant::now() >= state.next_probe_at {
                    state.probing = true;
                    return Admission {
                        breaker: self.clone(),
                        probe: true,
                    };
                }
                (!state.probing).then_some(state.next_probe_at)
            };
            match wait_until {
                Some(at) => {
                    tokio::select! { _ = tokio::time::sleep_until(at) => {}, _ = changed => {} }
                }
                None => changed.await,
            }
        }
    }

    /// Records how one platform request ended: `answered` unless it failed as a whole
    /// platform fails (5xx, timeout, connection refused).
    pub fn record(&self, answered: bool) {
        let mut state = self.lock();
        if answered {
            state.failures = 0;
            if state.open {
                state.open = false;
                tracing::warn!("the platform answers again; resuming every fetch");
                metrics::gauge!("paymirror_platform_outage", "merchant" => self.merchant.clone())
                    .set(0.0);
                self.changed.notify_waiters();
            }
            return;
        }
        state.failures = state.failures.saturating_add(1);
        if state.open {
            state.next_probe_at = Instant::now() + self.probe_interval;
        } else if state.failures >= self.threshold {
            state.open = true;
            state.next_probe_at = Instant::now() + self.probe_interval;
            tracing::error!(
                failures = state.failures,
                probe_every_ms = self.probe_interval.as_millis() as u64,
                "the platform is failing every request: outage; probing until it answers"
            );
            metrics::gauge!("paymirror_platform_outage", "merchant" => self.merchant.clone())
                .set(1.0);
            metrics::counter!("paymirror_platform_outages_total", "merchant" => self.merchant.clone())
                .increment(1);
        }
    }

    /// Returns whether an outage is under way.
    pub fn is_open(&self) -> bool {
        self.lock().open
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Admission {
    /// Returns whether this send is the probe of an open breaker.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.lock().probing = false;
            self.breaker.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_probes_once_per_interval() {
        let breaker = Arc::new(Breaker::new("M1".into(), 3, Duration::from_secs(1)));
        for _ in 0..3 {
            assert!(!breaker.admit().await.is_probe());
            breaker.record(false);
        }
        assert!(breaker.is_open());
        let start = Instant::now();

        let probe = breaker.admit().await;
        assert!(probe.is_probe());
        assert_eq!(Instant::now() - start, Duration::from_secs(1));
        breaker.record(false);
        drop(probe);

        let second = breaker.admit().await;
        assert!(second.is_probe());
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn one_answer_closes_it_and_releases_every_waiter() {
        let breaker = Arc::new(Breaker::new("M1".into(), 1, Duration::from_secs(1)));
        breaker.record(false);
        let probe = breaker.admit().await;
        let waiter = tokio::spawn({
            let breaker = breaker.clone();
            async move { breaker.admit().await.is_probe() }
        });

        breaker.record(true);
        drop(probe);

        assert!(!waiter.await.expect("joins"));
        assert!(!breaker.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_between_failures_resets_the_count() {
        let breaker = Arc::new(Breaker::new("M1".into(), 2, Duration::from_secs(1)));
        breaker.record(false);
        breaker.record(true);
        breaker.record(false);
        assert!(!breaker.is_open());
    }
}
