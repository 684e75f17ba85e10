use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::budget::SharedBudget;

/// The window the platform counts in, plus slack so that network jitter cannot make
/// the platform see `max + 1` requests inside its own one-second window.
pub const WINDOW: Duration = Duration::from_millis(1050);
/// How long to hold requests when the shared budget cannot be read (fail closed).
const BUDGET_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);
/// Re-check interval while waiting for a pending reservation to resolve.
const PENDING_RECHECK: Duration = Duration::from_millis(50);

/// A sliding-window limiter: never more than `max` sends in any window of one second.
///
/// A token bucket with a burst of `max` can send almost `2 × max` inside one second
/// (a full bucket, then a refill); remembering the last `max` send times cannot.
///
/// A slot is first *reserved* (it occupies the window from then on) and *committed*
/// right before the request goes out, which stamps the send time; an unused
/// reservation gives its slot back. So the window holds the times the platform sees,
/// however long the caller took between choosing to send and sending.
///
/// With a [`SharedBudget`], committing also takes a slot in the merchant's window
/// shared by every replica. The limiter also carries the pause a 429 imposes.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    inner: Mutex<Inner>,
    shared: Option<SharedBudget>,
    changed: Notify,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Reserved slots: `None` until sent.
    slots: Vec<(u64, Option<Instant>)>,
    paused_until: Option<Instant>,
}

/// A reserved send slot. [`commit`](Reservation::commit) it right before sending;
/// dropping it unused frees the slot.
#[derive(Debug)]
pub struct Reservation {
    limiter: Arc<RateLimiter>,
    id: Option<u64>,
    /// Released once the slot is sent or given back (see [`Reservation::holding`]).
    held: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl RateLimiter {
    /// Returns a limiter for this process alone.
    pub fn new(max_per_second: u32) -> Self {
        RateLimiter {
            max: max_per_second.max(1) as usize,
            window: WINDOW,
            inner: Mutex::new(Inner::default()),
            shared: None,
            changed: Notify::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Returns a limiter that also respects the budget shared by every replica.
    pub fn with_shared_budget(max_per_second: u32, shared: SharedBudget) -> Self {
        RateLimiter {
            shared: Some(shared),
            ..RateLimiter::new(max_per_second)
        }
    }

    /// Waits until a request may be sent and records it as sent now.
    pub async fn acquire(self: &Arc<Self>) {
        self.reserve().await.commit().await;
    }

    /// Waits for room in this process's window and reserves a slot in it.
    pub async fn reserve(self: &Arc<Self>) -> Reservation {
        loop {
            let changed = self.changed.notified();
            match self.try_reserve(Instant::now()) {
                Ok(id) => {
                    return Reservation {
                        limiter: self.clone(),
                        id: Some(id),
                        held: None,
                    }
                }
                Err(Some(at)) => {
                    tokio::select! { _ = tokio::time::sleep_until(at) => {}, _ = changed => {} }
                }
                // Full of reservations not yet sent: wait for one to be sent or dropped.
                Err(None) => {
                    let _ = tokio::time::timeout(PENDING_RECHECK, changed).await;
                }
            }
        }
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

    /// Reserves a slot, or returns when to try again (`None`: when a pending slot resolves).
    fn try_reserve(&self, now: Instant) -> Result<u64, Option<Instant>> {
        let mut inner = self.lock();
        let window = self.window;
        inner
            .slots
            .retain(|(_, sent)| sent.is_none_or(|t| now.duration_since(t) < window));
        if let Some(paused) = inner.paused_until.filter(|&p| p > now) {
            return Err(Some(paused));
        }
        if inner.slots.len() < self.max {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            inner.slots.push((id, None));
            return Ok(id);
        }
        Err(inner
            .slots
            .iter()
            .filter_map(|(_, sent)| *sent)
            .min()
            .map(|t| t + window))
    }

    /// Returns when the pause (if any) ends.
    fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|&p| p > Instant::now())
    }

    fn stamp(&self, id: u64, at: Instant) {
        if let Some(slot) = self.lock().slots.iter_mut().find(|(i, _)| *i == id) {
            slot.1 = Some(at);
        }
        self.changed.notify_waiters();
    }

    fn release(&self, id: u64) {
        self.lock().slots.retain(|(i, _)| *i != id);
        self.changed.notify_waiters();
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot panic; recover rather than poison every worker.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Reservation {
    /// Keeps `permit` until this reservation is sent or dropped: lets a dispatcher have
    /// at most one chosen-but-unsent job, so a fresh urgent job never queues behind many.
    pub fn holding(mut self, permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        self.held = Some(permit);
        self
    }

    /// Waits out any pause and the shared budget, then stamps the slot as sent now.
    /// Send the request right after.
    pub async fn commit(mut self) {
        let limiter = self.limiter.clone();
        loop {
            if let Some(until) = limiter.paused_until() {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match limiter.take_shared().await {
                Some(wait) => tokio::time::sleep(wait).await,
                None => break,
            }
        }
        if let Some(id) = self.id.take() {
            limiter.stamp(id, Instant::now());
        }
        self.held = None;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.limiter.release(id);
        }
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
        let limiter = Arc::new(RateLimiter::new(10));
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
    async fn the_window_counts_send_times_not_reservation_times() {
        let limiter = Arc::new(RateLimiter::new(1));
        let start = Instant::now();
        let slow = limiter.reserve().await;
        // The caller sends only 600 ms after reserving.
        tokio::time::sleep(Duration::from_millis(600)).await;
        slow.commit().await;

        limiter.acquire().await;

        // The next send waits a window after the *send* at 600 ms, not the reservation at 0.
        assert!(Instant::now().duration_since(start) >= Duration::from_millis(600) + WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_reservation_frees_its_slot() {
        let limiter = Arc::new(RateLimiter::new(1));
        let start = Instant::now();
        drop(limiter.reserve().await);

        limiter.acquire().await;

        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_sender_even_with_a_reservation() {
        let limiter = Arc::new(RateLimiter::new(10));
        let start = Instant::now();
        let reserved = limiter.reserve().await;
        limiter.pause(Duration::from_secs(3)).await;

        reserved.commit().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
        limiter.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }
}
