use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Slack added to the one-second window so that network jitter cannot make the
/// platform see `max + 1` requests inside its own one-second window.
const WINDOW_SLACK: Duration = Duration::from_millis(50);

/// A sliding-window limiter: never more than `max` sends in any window of one second.
///
/// A token bucket with a burst of `max` can send almost `2 × max` inside one second
/// (a full bucket, then a refill); remembering the last `max` send times cannot.
/// It also carries the process-wide pause a 429 imposes on every worker.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl RateLimiter {
    pub fn new(max_per_second: u32) -> Self {
        RateLimiter {
            max: max_per_second.max(1) as usize,
            window: Duration::from_secs(1) + WINDOW_SLACK,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Waits until a request may be sent and records it as sent.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                Err(at) => tokio::time::sleep_until(at).await,
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

    /// Stops every sender of this process until `for_at_least` has passed.
    pub fn pause(&self, for_at_least: Duration) {
        let until = Instant::now() + for_at_least;
        let mut inner = self.lock();
        inner.paused_until = Some(inner.paused_until.map_or(until, |p| p.max(until)));
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
        limiter.pause(Duration::from_secs(3));
        assert_eq!(limiter.ready_at(), start + Duration::from_secs(3));
        limiter.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }
}
