//! The sliding-window rate limiter every platform request goes through: a slot is
//! reserved before the job is chosen, counted from its send until its answer plus the
//! window, and shared across replicas through [`SharedBudget`](super::SharedBudget).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::budget::SharedBudget;

/// How long after its response a request still counts: the platform's one-second
/// window plus 10 ms of slack. A request counts from the moment it is sent until
/// its response arrives plus this window, so wherever between the two it reached
/// the platform, the platform cannot see `max + 1` arrivals in one second.
pub const WINDOW: Duration = Duration::from_millis(1010);
/// How long to hold requests when the shared budget cannot be read (fail closed).
const BUDGET_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(1);
/// Re-check interval while waiting for a reserved or in-flight slot to resolve.
const PENDING_RECHECK: Duration = Duration::from_millis(50);

/// A sliding-window limiter: never more than `max` requests counted at once, where a
/// request counts from its send until its response arrived plus [`WINDOW`].
///
/// A token bucket with a burst of `max` can send almost `2 × max` inside one second
/// (a full bucket, then a refill); counting each request cannot.
///
/// A slot is first *reserved* (it occupies the window from then on), *committed*
/// right before the request goes out, and *finished* when the response arrives (the
/// [`Sent`] guard is dropped); an unused reservation gives its slot back.
///
/// With a [`SharedBudget`], committing also takes a slot in the merchant's window
/// shared by every replica, and pauses live there (so an operator can clear them);
/// without one, a pause holds this process only.
#[derive(Debug)]
pub struct RateLimiter {
    max: usize,
    window: Duration,
    inner: Mutex<Inner>,
    shared: Option<SharedBudget>,
    changed: Notify,
    next_id: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Reserved,
    InFlight,
    /// The response arrived at this instant.
    Done(Instant),
}

#[derive(Debug, Default)]
struct Inner {
    slots: Vec<(u64, Slot)>,
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

/// A request on its way: drop it when the response (or the failure) arrived.
#[derive(Debug)]
pub struct Sent {
    limiter: Arc<RateLimiter>,
    id: u64,
    shared_entry: Option<DateTime<Utc>>,
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
    pub async fn acquire(self: &Arc<Self>) -> Sent {
        self.reserve().await.commit().await
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
                // Full of reservations not yet answered: wait for one to resolve.
                Err(None) => {
                    let _ = tokio::time::timeout(PENDING_RECHECK, changed).await;
                }
            }
        }
    }

    /// Stops every sender until `for_at_least` has passed: every replica's when the
    /// budget is shared, else this process's.
    pub async fn pause(&self, for_at_least: Duration) {
        match &self.shared {
            Some(shared) => {
                if let Err(e) = shared.pause(for_at_least).await {
                    tracing::warn!(error = %e, "could not record the pause for every replica; pausing this one");
                    self.pause_locally(for_at_least);
                }
            }
            None => self.pause_locally(for_at_least),
        }
    }

    fn pause_locally(&self, for_at_least: Duration) {
        let until = Instant::now() + for_at_least;
        let mut inner = self.lock();
        inner.paused_until = Some(inner.paused_until.map_or(until, |p| p.max(until)));
    }

    /// Reserves a slot, or returns when to try again (`None`: when a pending slot resolves).
    fn try_reserve(&self, now: Instant) -> Result<u64, Option<Instant>> {
        let mut inner = self.lock();
        let window = self.window;
        inner.slots.retain(|(_, slot)| match slot {
            Slot::Done(at) => now.duration_since(*at) < window,
            Slot::Reserved | Slot::InFlight => true,
        });
        if let Some(paused) = inner.paused_until.filter(|&p| p > now) {
            return Err(Some(paused));
        }
        if inner.slots.len() < self.max {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            inner.slots.push((id, Slot::Reserved));
            return Ok(id);
        }
        Err(inner
            .slots
            .iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Done(at) => Some(*at + window),
                _ => None,
            })
            .min())
    }

    /// Returns when the local pause (if any) ends.
    fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|&p| p > Instant::now())
    }

    fn mark(&self, id: u64, slot: Slot) {
        if let Some(entry) = self.lock().slots.iter_mut().find(|(i, _)| *i == id) {
            entry.1 = slot;
        }
        self.changed.notify_waiters();
    }

    fn release(&self, id: u64) {
        self.lock().slots.retain(|(i, _)| *i != id);
        self.changed.notify_waiters();
    }

    /// Takes a shared slot: `Ok(entry)` once taken (or with no shared budget), after
    /// waiting out a full window or a pause. If the budget cannot be read, nothing is
    /// sent rather than risk the limit.
    async fn take_shared(&self) -> Option<DateTime<Utc>> {
        let shared = self.shared.as_ref()?;
        loop {
            match shared.try_take().await {
                Ok(Ok(entry)) => return Some(entry),
                Ok(Err(wait)) => tokio::time::sleep(wait).await,
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate budget unavailable; holding platform requests");
                    tokio::time::sleep(BUDGET_UNAVAILABLE_PAUSE).await;
                }
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

    /// Waits out any pause and the shared budget, then marks the slot in flight.
    /// Send the request right after, and drop the returned guard once answered.
    pub async fn commit(mut self) -> Sent {
        let limiter = self.limiter.clone();
        while let Some(until) = limiter.paused_until() {
            tokio::time::sleep_until(until).await;
        }
        let shared_entry = limiter.take_shared().await;
        let id = self.id.take().unwrap_or_default();
        limiter.mark(id, Slot::InFlight);
        self.held = None;
        Sent {
            limiter,
            id,
            shared_entry,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.limiter.release(id);
        }
    }
}

impl Drop for Sent {
    /// The response arrived: from now on the request counts for one more window only.
    fn drop(&mut self) {
        self.limiter.mark(self.id, Slot::Done(Instant::now()));
        if let (Some(entry), Some(shared)) = (self.shared_entry.take(), &self.limiter.shared) {
            // A failed or lost update only keeps the slot counted until its pessimistic bound.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(shared.clone().answered(entry));
            }
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
            drop(limiter.acquire().await);
            times.push(Instant::now());
        }
        assert_eq!(max_in_any_second(&times), 10);
        // 55 sends need five full windows after the first burst: about 5 × 1.01 s.
        let elapsed = Instant::now().duration_since(start);
        assert!(elapsed >= 5 * WINDOW, "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(5200), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_counts_send_times_not_reservation_times() {
        let limiter = Arc::new(RateLimiter::new(1));
        let start = Instant::now();
        let slow = limiter.reserve().await;
        // The caller sends only 600 ms after reserving.
        tokio::time::sleep(Duration::from_millis(600)).await;
        drop(slow.commit().await);

        drop(limiter.acquire().await);

        // The next send waits a window after the *send* at 600 ms, not the reservation at 0.
        assert!(Instant::now().duration_since(start) >= Duration::from_millis(600) + WINDOW);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_until_its_response_plus_the_window() {
        let limiter = Arc::new(RateLimiter::new(1));
        let start = Instant::now();
        let in_flight = limiter.acquire().await;
        // The request takes 700 ms to be answered (a slow connection set-up, say):
        // it may reach the platform at any point in between.
        let answered = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            drop(in_flight);
        });

        drop(limiter.acquire().await);

        assert!(Instant::now().duration_since(start) >= Duration::from_millis(700) + WINDOW);
        answered.await.expect("joins");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_reservation_frees_its_slot() {
        let limiter = Arc::new(RateLimiter::new(1));
        let start = Instant::now();
        drop(limiter.reserve().await);

        drop(limiter.acquire().await);

        assert_eq!(Instant::now(), start);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_every_sender_even_with_a_reservation() {
        let limiter = Arc::new(RateLimiter::new(10));
        let start = Instant::now();
        let reserved = limiter.reserve().await;
        limiter.pause(Duration::from_secs(3)).await;

        drop(reserved.commit().await);
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
        drop(limiter.acquire().await);
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }
}
