//! Everything the simulator remembers: payments, the request log, the throttle
//! and counters, behind one short-lived lock, plus a change signal for waiters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::jwt::TokenKeys;
use super::payment::Payment;
use super::window::SlidingWindow;
use super::SimulatorConfig;
use crate::domain::{PaymentId, PaymentKind};

/// The request log keeps at most this many entries (counters keep counting).
const MAX_LOGGED_REQUESTS: usize = 100_000;

/// One platform request as received, with the status it was answered with
/// (0 while it is still being answered).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub api_version: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
    pub at: Instant,
}

/// Counters describing what the simulator has seen and done so far.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Platform requests received, throttled ones included.
    pub requests: u64,
    /// Answered platform requests by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    pub tokens_issued: u64,
    /// Callback POSTs attempted (retries and duplicates included).
    pub callbacks_sent: u64,
    /// Callback POSTs answered 200.
    pub callbacks_delivered: u64,
    /// Callbacks abandoned after the last retry failed.
    pub callbacks_given_up: u64,
    /// Callbacks deliberately not sent (`drop_callback_rate`).
    pub callbacks_dropped: u64,
    /// Requests answered 429 by the sliding-window throttle (above `max_rps`).
    pub throttled_by_window: u64,
    /// Requests the window admitted but answered 429 anyway (`throttle_rate`).
    pub throttled_injected: u64,
    /// Most requests received within any sliding one-second window.
    pub peak_requests_per_second: u64,
    /// Most requests the window admitted (not answered 429 by it) within any
    /// sliding one-second window; never above `max_rps`.
    pub peak_admitted_per_second: u64,
    #[serde(skip)]
    pub last_callback_sent_at: Option<Instant>,
}

/// The mutable part of the simulator.
#[derive(Default)]
pub struct SimState {
    pub payments: HashMap<(PaymentKind, PaymentId), Payment>,
    pub log: VecDeque<RecordedRequest>,
    /// Sequence number of `log[0]`, so in-flight requests keep a stable handle.
    pub log_base: u64,
    pub accepted: SlidingWindow,
    pub received: SlidingWindow,
    pub stats: SimStats,
}

/// What the arrival of a request decided.
pub struct Arrival {
    pub seq: u64,
    pub admitted: bool,
}

impl SimState {
    /// Logs a request arriving now and applies the throttle; a refused request
    /// is logged as answered 429 at once.
    pub fn arrive(&mut self, mut request: RecordedRequest, max_rps: u32) -> Arrival {
        let now = request.at;
        let in_window = self.received.record(now) as u64;
        self.stats.peak_requests_per_second = self.stats.peak_requests_per_second.max(in_window);
        self.stats.requests += 1;
        let admitted = self.accepted.try_admit(now, max_rps as usize);
        let seq = self.log_base + self.log.len() as u64;
        if admitted {
            let in_window = self.accepted.count_at(now) as u64;
            self.stats.peak_admitted_per_second =
                self.stats.peak_admitted_per_second.max(in_window);
        } else {
            request.status = 429;
            self.stats.throttled_by_window += 1;
            *self.stats.by_status.entry(429).or_default() += 1;
        }
        self.log.push_back(request);
        self.trim_log();
        Arrival { seq, admitted }
    }

    /// Records the status a request `seq` was answered with.
    pub fn finish(&mut self, seq: u64, status: u16) {
        *self.stats.by_status.entry(status).or_default() += 1;
        let Some(index) = seq.checked_sub(self.log_base) else {
            return;
        };
        if let Some(entry) = self.log.get_mut(index as usize) {
            entry.status = status;
        }
    }

    /// Forgets the oldest log entries beyond [`MAX_LOGGED_REQUESTS`].
    fn trim_log(&mut self) {
        while self.log.len() > MAX_LOGGED_REQUESTS {
            self.log.pop_front();
            self.log_base += 1;
        }
    }
}

/// State shared by the server, background tasks and the [`super::Simulator`] handle.
pub struct Shared {
    /// The configuration at start; its `faults` are only the initial ones,
    /// read the current ones with [`Shared::faults`].
    pub config: SimulatorConfig,
    keys: RwLock<Arc<TokenKeys>>,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    faults: RwLock<Faults>,
    state: Mutex<SimState>,
    changes: watch::Sender<u64>,
}

impl Shared {
    /// Returns fresh shared state for `config`.
    pub fn new(config: SimulatorConfig, http: reqwest::Client) -> Self {
        let faults = RwLock::new(config.faults.clone());
        Shared {
            config,
            keys: RwLock::new(Arc::new(TokenKeys::random())),
            http,
            cancel: CancellationToken::new(),
            faults,
            state: Mutex::new(SimState::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// Returns what `f` computes from the state, without signalling a change.
    pub fn read<R>(&self, f: impl FnOnce(&SimState) -> R) -> R {
        f(&self.lock())
    }

    /// Returns what `f` computes while changing the state, then wakes waiters.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let result = f(&mut self.lock());
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
        result
    }

    /// Returns a receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Returns the current signing keys.
    pub fn keys(&self) -> Arc<TokenKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the signing keys: every token issued so far is answered 401 from now on.
    pub fn rotate_keys(&self) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(TokenKeys::random());
    }

    /// Returns the faults in force now.
    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Changes only the extra delay applied to payment fetches (whole milliseconds).
    pub fn set_latency(&self, latency: Duration) {
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.faults
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .latency_ms = latency_ms;
    }

    /// Returns the state guard; a panic elsewhere while holding it leaves plain
    /// data behind, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
