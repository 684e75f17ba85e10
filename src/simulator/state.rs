//! Everything the simulator remembers: payments, the request log, the throttles
//! and counters, behind one short-lived lock, plus a change signal for waiters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::jwt::TokenKeys;
use super::merchant::SimMerchant;
use super::payment::Payment;
use super::window::SlidingWindow;
use super::SimulatorConfig;
use crate::domain::{PaymentId, PaymentKind};

/// The request log keeps at most this many entries (counters keep counting).
const MAX_LOGGED_REQUESTS: usize = 100_000;

/// A payment's key: its merchant's code, its kind and its id.
pub type PaymentKey = (String, PaymentKind, PaymentId);

/// One platform request as received, with the status it was answered with
/// (0 while it is still being answered).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub api_version: Option<String>,
    pub authorization: Option<String>,
    /// The merchant the request counted against: the `merchantCode` of a token
    /// request, the `sub` of a fetch's token; `None` if it named no merchant the
    /// simulator serves (such requests share the primary merchant's window).
    pub merchant: Option<String>,
    pub status: u16,
    pub at: Instant,
}

/// Counters of one merchant: only the requests it was named by (see
/// [`RecordedRequest::merchant`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantStats {
    /// Requests received, throttled ones included.
    pub requests: u64,
    /// Requests answered 429 by this merchant's sliding-window throttle.
    pub throttled_by_window: u64,
    /// Requests the window admitted but answered 429 anyway (`throttle_rate`).
    pub throttled_injected: u64,
    /// Tokens issued to this merchant.
    pub tokens_issued: u64,
    /// Most requests received within any sliding one-second window.
    pub peak_requests_per_second: u64,
    /// Most requests the window admitted within any sliding one-second window;
    /// never above this merchant's `max_rps`.
    pub peak_admitted_per_second: u64,
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
    /// Requests answered 429 by a merchant's sliding-window throttle (above its `max_rps`).
    pub throttled_by_window: u64,
    /// Requests the window admitted but answered 429 anyway (`throttle_rate`).
    pub throttled_injected: u64,
    /// Most requests received within any sliding one-second window, all
    /// merchants together.
    pub peak_requests_per_second: u64,
    /// Most requests the windows admitted (not answered 429 by them) within any
    /// sliding one-second window, all merchants together: with one merchant,
    /// never above its `max_rps`.
    pub peak_admitted_per_second: u64,
    #[serde(skip)]
    pub last_callback_sent_at: Option<Instant>,
    /// Each merchant's own counters, by code (every merchant served is listed).
    pub per_merchant: BTreeMap<String, MerchantStats>,
}

/// The windows that meter one merchant's own requests, for its peaks.
#[derive(Debug, Default)]
struct Meter {
    received: SlidingWindow,
    admitted: SlidingWindow,
}

/// The mutable part of the simulator.
#[derive(Default)]
pub struct SimState {
    pub payments: HashMap<PaymentKey, Payment>,
    pub log: VecDeque<RecordedRequest>,
    /// Sequence number of `log[0]`, so in-flight requests keep a stable handle.
    pub log_base: u64,
    /// The throttle of each merchant by code: the requests it admitted.
    throttles: HashMap<String, SlidingWindow>,
    /// Every request received and every request admitted, for the global peaks.
    received: SlidingWindow,
    admitted: SlidingWindow,
    /// Each merchant's own requests, for its peaks.
    meters: HashMap<String, Meter>,
    pub stats: SimStats,
}

/// What the arrival of a request decided.
pub struct Arrival {
    pub seq: u64,
    pub admitted: bool,
}

impl SimState {
    /// Returns an empty state whose counters list each of `merchants`.
    fn new<'a>(merchants: impl IntoIterator<Item = &'a str>) -> Self {
        let mut state = SimState::default();
        for code in merchants {
            state
                .stats
                .per_merchant
                .insert(code.to_owned(), MerchantStats::default());
        }
        state
    }

    /// Logs a request arriving now and applies the throttle of `window` (the
    /// code of the merchant it counts against), which admits `max_rps` a
    /// second; a refused request is logged as answered 429 at once.
    pub fn arrive(&mut self, mut request: RecordedRequest, window: &str, max_rps: u32) -> Arrival {
        let now = request.at;
        let in_window = self.received.record(now) as u64;
        self.stats.peak_requests_per_second = self.stats.peak_requests_per_second.max(in_window);
        self.stats.requests += 1;
        let throttle = match self.throttles.get_mut(window) {
            Some(throttle) => throttle,
            None => self.throttles.entry(window.to_owned()).or_default(),
        };
        let admitted = throttle.try_admit(now, max_rps as usize);
        let seq = self.log_base + self.log.len() as u64;
        if admitted {
            let in_window = self.admitted.record(now) as u64;
            self.stats.peak_admitted_per_second =
                self.stats.peak_admitted_per_second.max(in_window);
        } else {
            request.status = 429;
            self.stats.throttled_by_window += 1;
            *self.stats.by_status.entry(429).or_default() += 1;
        }
        if let Some(merchant) = &request.merchant {
            self.meter(merchant, now, admitted);
        }
        self.log.push_back(request);
        self.trim_log();
        Arrival { seq, admitted }
    }

    /// Counts a request of `merchant` arriving at `now` in its own counters.
    fn meter(&mut self, merchant: &str, now: Instant, admitted: bool) {
        let Some(stats) = self.stats.per_merchant.get_mut(merchant) else {
            return;
        };
        let meter = match self.meters.get_mut(merchant) {
            Some(meter) => meter,
            None => self.meters.entry(merchant.to_owned()).or_default(),
        };
        stats.requests += 1;
        let received = meter.received.record(now) as u64;
        stats.peak_requests_per_second = stats.peak_requests_per_second.max(received);
        if admitted {
            let admitted = meter.admitted.record(now) as u64;
            stats.peak_admitted_per_second = stats.peak_admitted_per_second.max(admitted);
        } else {
            stats.throttled_by_window += 1;
        }
    }

    /// Counts an injected 429 (`throttle_rate`), also for `merchant` if known.
    pub fn count_injected_429(&mut self, merchant: Option<&str>) {
        self.stats.throttled_injected += 1;
        if let Some(stats) = merchant.and_then(|m| self.stats.per_merchant.get_mut(m)) {
            stats.throttled_injected += 1;
        }
    }

    /// Counts a token issued to `merchant`.
    pub fn count_token(&mut self, merchant: &str) {
        self.stats.tokens_issued += 1;
        if let Some(stats) = self.stats.per_merchant.get_mut(merchant) {
            stats.tokens_issued += 1;
        }
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
    /// Every merchant served by code, the primary one included.
    merchants: BTreeMap<String, SimMerchant>,
    keys: RwLock<Arc<TokenKeys>>,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    faults: RwLock<Faults>,
    /// The merchants with faults of their own, used instead of `faults`.
    merchant_faults: RwLock<HashMap<String, Faults>>,
    state: Mutex<SimState>,
    changes: watch::Sender<u64>,
}

impl Shared {
    /// Returns fresh shared state for `config`.
    pub fn new(config: SimulatorConfig, http: reqwest::Client) -> Self {
        let faults = RwLock::new(config.faults.clone());
        let merchants = config.merchants_by_code();
        let state = SimState::new(merchants.keys().map(String::as_str));
        Shared {
            config,
            merchants,
            keys: RwLock::new(Arc::new(TokenKeys::random())),
            http,
            cancel: CancellationToken::new(),
            faults,
            merchant_faults: RwLock::default(),
            state: Mutex::new(state),
            changes: watch::Sender::new(0),
        }
    }

    /// Returns the primary merchant's code.
    pub fn primary(&self) -> &str {
        &self.config.merchant_code
    }

    /// Returns the merchant with `code`, if the simulator serves it.
    pub fn merchant(&self, code: &str) -> Option<&SimMerchant> {
        self.merchants.get(code)
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

    /// Returns the global faults in force now.
    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the global faults in force.
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    /// Returns the faults for what concerns `merchant`: its own if it has
    /// them, else the global ones (also for `None`, no merchant known).
    pub fn faults_for(&self, merchant: Option<&str>) -> Faults {
        merchant
            .and_then(|code| self.merchant_faults(code))
            .unwrap_or_else(|| self.faults())
    }

    /// Returns `merchant`'s own faults, if it has them.
    pub fn merchant_faults(&self, merchant: &str) -> Option<Faults> {
        self.merchant_faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(merchant)
            .cloned()
    }

    /// Gives `merchant` its own faults, or (`None`) returns it to the global
    /// ones; returns false, changing nothing, for a merchant not served.
    pub fn set_merchant_faults(&self, merchant: &str, faults: Option<Faults>) -> bool {
        if self.merchant(merchant).is_none() {
            return false;
        }
        let mut own = self
            .merchant_faults
            .write()
            .unwrap_or_else(|p| p.into_inner());
        match faults {
            Some(faults) => own.insert(merchant.to_owned(), faults),
            None => own.remove(merchant),
        };
        true
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
