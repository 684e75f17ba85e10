//! Sliding one-second windows: the throttle (accepted requests) and the peak
//! rate meter (every request received).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span of the platform's rate limit.
pub const WINDOW: Duration = Duration::from_millis(1000);

/// The instants of events inside the last [`WINDOW`].
#[derive(Debug, Default)]
pub struct SlidingWindow {
    times: VecDeque<Instant>,
}

impl SlidingWindow {
    /// Returns how many events remain in the window ending at `now`, after
    /// forgetting those at least [`WINDOW`] old.
    pub fn count_at(&mut self, now: Instant) -> usize {
        while let Some(&oldest) = self.times.front() {
            if now.saturating_duration_since(oldest) >= WINDOW {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.len()
    }

    /// Records an event at `now` if fewer than `limit` are in the window; returns
    /// whether it was admitted (a refused event does not count).
    pub fn try_admit(&mut self, now: Instant, limit: usize) -> bool {
        if self.count_at(now) >= limit {
            return false;
        }
        self.times.push_back(now);
        true
    }

    /// Records an event at `now` unconditionally; returns the events now in the window.
    pub fn record(&mut self, now: Instant) -> usize {
        self.count_at(now);
        self.times.push_back(now);
        self.times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn admits_up_to_the_limit_within_one_second() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::default();
        for i in 0..10 {
            assert!(window.try_admit(t0 + ms(i * 10), 10), "request {i}");
        }
        assert!(!window.try_admit(t0 + ms(200), 10));
        assert!(!window.try_admit(t0 + ms(999), 10));
    }

    #[test]
    fn slides_instead_of_resetting_on_second_boundaries() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::default();
        for i in 0..5 {
            assert!(window.try_admit(t0 + ms(900 + i), 10));
        }
        for i in 0..5 {
            assert!(window.try_admit(t0 + ms(1100 + i), 10));
        }
        // A fixed-second counter would allow this one; the sliding window does not.
        assert!(!window.try_admit(t0 + ms(1200), 10));
        // Once the first five are a full second old, room opens again.
        assert!(window.try_admit(t0 + ms(1900), 10));
    }

    #[test]
    fn refused_requests_do_not_extend_the_throttle() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::default();
        assert!(window.try_admit(t0, 1));
        for i in 1..100 {
            assert!(!window.try_admit(t0 + ms(i * 5), 1));
        }
        assert!(window.try_admit(t0 + ms(1000), 1));
    }

    #[test]
    fn record_counts_every_event_for_the_peak() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::default();
        let counts: Vec<usize> = [0, 100, 500, 999, 1000, 1600]
            .iter()
            .map(|&t| window.record(t0 + ms(t)))
            .collect();
        assert_eq!(counts, vec![1, 2, 3, 4, 4, 3]);
    }
}
