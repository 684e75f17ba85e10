use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::budget::SharedBudget;

/// The window the platform counts in, plus slack so that network jitter cannot make
/// the platform see `max + 1` requests inside its own one-second window.
pub const WINDOW: Duration = Duration::from_millis(1050);
/// How long to hold requests when the shared budget cannot be read (fail closed).
const BUDGET_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);

/// A sliding-window limiter: never more than `max` sends in any window of one second.
///
/// A token bucket with a burst of `max` can send almost `2 × max` inside one second
/// (a full bucket, then a refill); remembering the last `max` send times cannot.
/// It also carries the process-wide pause a 429 imposes on every worker.
///
/// With a [`SharedBudget`], a slot must also be free in the merchant's window shared
/// by every replica, so N replicas together stay within the platform's limit.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    inner: Mutex<Inner>,
    shared: Option<SharedBudget>,
    /// One acquirer at a time, so nobody takes the local slot between our two checks.
    turn: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Inner {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    /// Returns a limiter for this process alone.
    pub fn new(max_per_second: u32) -> Self {
        RateLimiter {
            max: max_per_second.max(1) as usize,
            window: WINDOW,
            inner: Mutex::new(Inner::default()),
            shared: None,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns a limiter that also respects the budget shared by every replica.
    pub fn with_shared_budget(max_per_second: u32, shared: SharedBudget) -> Self {
        RateLimiter {
            shared: Some(shared),
            ..RateLimiter::new(max_per_second)
        }
    }

    /// Waits until a request may be sent, in this process's window and (if any) the
    /// shared one, and records it as sent.
    pub async fn acquire(&self) {
        let _turn = self.turn.lock().await;
        loop {
            tokio::time::sleep_until(self.ready_at()).await;
            if let Some(wait) = self.take_shared().await {
                tokio::time::sleep(wait).await;
                continue;
            }
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                // Paused meanwhile: the shared slot goes unused, which only costs budget.
                Err(at) => tokio::time::sleep_until(at).await,
            }
        }
    }

    /// Takes a shared slot; returns how long to wait if none is free (or the budget
    /// cannot be read: then nothing is sent rather than risk the limit).
    async fn take_shared(&self) -> Option<Duration> {
        let shared = self.shared.as_ref()?;
        match shared.try_take().await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "shared rate budget unavailable; holding platform requests");
                Some(BUDGET_UNAVAILABLE_PAUSE)
            }
        }
    }

    /// Returns the earliest instant at which [`acquire`](Self::acquire) would succeed,
    /// without taking the slot: workers wait for it before choosing which job to fetch.
    pub fn ready_at(&self) -> Instant {
        let now = Instant::now();
        let inner = self.lock();
        Self::next_free(&inner, now, self.max, self.window).unwrap_or(now)
    }

    /// Stops every sender of this process, and of every replica when the budget is
    /// shared, until `for_at_least` has passed.
    pub async fn pause(&self, for_at_least: Duration) {
        let until = Instant::now() + for_at_least;
        {
            let mut inner = self.lock();
            inner.paused_until = Some(inner.paused_until.map_or(until, |p| p.max(until)));
        }
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.pause(for_at_least).await {
                tracing::warn!(error = %e, "could not share the pause with other replicas");
            }
        }
    }

    fn try_acquire(&self, now: Instant) -> Result<(), Instant> {
        let mut inner = self.lock();
        while inner
            .sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            inner.sent.pop_front();
        }
        if let Some(at) = Self::next_free(&inner, now, self.max, self.window) {
            return Err(at);
        }
        inner.sent.push_back(now);
        Ok(())
    }

    fn next_free(inner: &Inner, now: Instant, max: usize, window: Duration) -> Option<Instant> {
        let paused = inner.paused_until.filter(|&p| p > now);
        let full = (inner.sent.len() >= max)
            .then(|| inner.sent[inner.sent.len() - max] + window)
            .filter(|&t| t > now);
        paused.into_iter().chain(full).max()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot panic; recover rather than poison every worker.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_in_any_second(times: &[Instant]) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t.duration_since(start) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_second_yet_near_full_rate() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..55 {
            limiter.acquire().await;
            times.push(Instant::now());
        }
        assert_eq!(max_in_any_second(&times), 10);
        // 55 sends need five full windows after the first burst: about 5 × 1.05 s.
        let elapsed = Instant::now().duration_since(start);
        assert!(elapsed >= Duration::from_secs(5), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(5400), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_sender() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        limiter.pause(Duration::from_secs(3)).await;
        assert_eq!(limiter.ready_at(), start + Duration::from_secs(3));
        limiter.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }
}
