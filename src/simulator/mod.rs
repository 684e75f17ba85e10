//! A stateful stand-in for the payment platform (SPEC §1 and §4): tokens with
//! operation regexes, the version header, a sliding 1-second throttle, payments
//! that move to a final status and announce it by callback, and injectable faults.
//!
//! It serves one primary merchant and any number of others
//! ([`SimulatorConfig::merchants`]), each with its own secret, throttle window,
//! payments and, optionally, faults ([`Simulator::set_merchant_faults`]). The
//! methods without `_as` act for the primary merchant, as when it served one.

mod admin;
mod answer;
mod answer_faults;
mod callbacks;
mod cli;
mod document;
mod faults;
mod gate;
mod jwt;
mod lifecycle;
mod merchant;
mod payment;
mod platform_routes;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod window;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::task::JoinHandle;

use crate::domain::{PaymentId, PaymentKind};
use state::Shared;

pub use cli::{run, FaultArgs, SimulatorArgs};
pub use faults::Faults;
pub use merchant::SimMerchant;
pub use state::{MerchantStats, RecordedRequest, SimStats};

/// How the simulated platform behaves.
///
/// `merchant_code`, `secret` and `max_rps` are the primary merchant, the one
/// the methods without `_as` act for; `merchants` lists the others. Each
/// merchant has its own secret, its own throttle window and its own payments
/// (the same kind and id under two merchants are two payments).
#[derive(Clone)]
pub struct SimulatorConfig {
    /// The primary merchant's code.
    pub merchant_code: String,
    /// The secret `POST /auth-tokens` accepts for the primary merchant.
    pub secret: String,
    /// The primary merchant's accepted requests allowed in any sliding 1000 ms
    /// window (requests naming no configured merchant count here too).
    pub max_rps: u32,
    /// The merchants besides the primary one; none by default.
    pub merchants: Vec<SimMerchant>,
    /// Callbacks go to `{base}/callbacks/{payins|payouts}` for the primary
    /// merchant and to `{base}/callbacks/{CODE}/{payins|payouts}` for another,
    /// unless the payment has its own URL.
    pub callback_base_url: Option<String>,
    /// Pause between callback attempts (the platform: 2 minutes).
    pub callback_retry_interval: Duration,
    /// How long a payin waits for money: its `expireAt` is its creation plus
    /// this, and a payin still not final then fails (the default: 15 minutes).
    pub payin_expiry: Duration,
    /// The faults at start; [`Simulator::set_faults`] replaces them while running.
    pub faults: Faults,
}

impl fmt::Debug for SimulatorConfig {
    /// Shows everything but the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("merchant_code", &self.merchant_code)
            .field("secret", &"***")
            .field("max_rps", &self.max_rps)
            .field("merchants", &self.merchants)
            .field("callback_base_url", &self.callback_base_url)
            .field("callback_retry_interval", &self.callback_retry_interval)
            .field("payin_expiry", &self.payin_expiry)
            .field("faults", &self.faults)
            .finish()
    }
}

impl Default for SimulatorConfig {
    /// Returns the real platform's behaviour, without faults, with the
    /// simulator's own credentials.
    fn default() -> Self {
        SimulatorConfig {
            merchant_code: "M1".into(),
            secret: "sim-secret".into(),
            max_rps: 10,
            merchants: Vec::new(),
            callback_base_url: None,
            callback_retry_interval: Duration::from_secs(120),
            payin_expiry: Duration::from_secs(15 * 60),
            faults: Faults::default(),
        }
    }
}

/// A payment to create on the simulated platform.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub kind: PaymentKind,
    pub id: PaymentId,
    pub amount: Decimal,
    pub currency: String,
    pub payment_method_code: String,
    /// `SUCCESS`, `FAILED`, `REFUSED` (or anything else); `None` stays PROCESSING.
    pub final_status: Option<String>,
    /// With a `final_status`: how long the payment stays PROCESSING first.
    pub finalize_after: Duration,
    pub callback_url: Option<String>,
    pub is_test: bool,
    /// Payins only: overrides [`SimulatorConfig::payin_expiry`] for this payment.
    pub expire_after: Option<Duration>,
}

impl NewPayment {
    /// Returns an INR test payment that stays PROCESSING until it is moved (or,
    /// for a payin, until it expires), paid by UPIQR if a payin and by
    /// BANK_TRANSFER if a payout.
    pub fn processing(kind: PaymentKind, id: PaymentId, amount: Decimal) -> Self {
        NewPayment {
            kind,
            id,
            amount,
            currency: "INR".into(),
            payment_method_code: payment::default_method_code(kind).into(),
            final_status: None,
            finalize_after: Duration::ZERO,
            callback_url: None,
            is_test: true,
            expire_after: None,
        }
    }
}

/// A running simulator; dropping it stops the server and its background tasks.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Simulator {
    /// Serves on an already-bound listener (tests bind 127.0.0.1:0); spawns the
    /// server and returns at once. Errors if the merchants are not valid
    /// ([`SimulatorConfig::validate_merchants`]).
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: SimulatorConfig,
    ) -> anyhow::Result<Simulator> {
        config
            .validate_merchants()
            .map_err(|reason| anyhow::anyhow!("invalid simulator merchants: {reason}"))?;
        let addr = listener.local_addr()?;
        // Callbacks target the merchant directly, as the platform would, never a proxy from the environment.
        let http = reqwest::Client::builder().no_proxy().build()?;
        let shared = Arc::new(Shared::new(config, http));
        let app =
            platform_routes::router(Arc::clone(&shared)).merge(admin::router(Arc::clone(&shared)));
        let server = tokio::spawn(server::serve(listener, app, Arc::clone(&shared)));
        Ok(Simulator {
            addr,
            shared,
            server: Mutex::new(Some(server)),
        })
    }

    /// Returns `http://IP:PORT` of the listener.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates a PROCESSING payment of the primary merchant (replacing one with
    /// the same kind and id), sends its callback and schedules its finalisation.
    pub async fn create_payment(&self, p: NewPayment) {
        lifecycle::create_payment(&self.shared, self.primary(), p);
    }

    /// Creates a PROCESSING payment of `merchant`, as [`Simulator::create_payment`]
    /// does for the primary merchant; errors (creating nothing) if `merchant` is
    /// not one the simulator serves.
    pub async fn create_payment_as(&self, merchant: &str, p: NewPayment) -> anyhow::Result<()> {
        self.known(merchant)?;
        lifecycle::create_payment(&self.shared, merchant, p);
        Ok(())
    }

    /// Moves a payment of the primary merchant to `status` and sends a callback;
    /// returns false if the kind and id are unknown.
    pub async fn set_status(&self, kind: PaymentKind, id: &PaymentId, status: &str) -> bool {
        lifecycle::set_status(&self.shared, self.primary(), kind, id, status)
    }

    /// Moves a payment of `merchant` to `status` and sends a callback; returns
    /// false if that merchant has no payment with this kind and id.
    pub async fn set_status_as(
        &self,
        merchant: &str,
        kind: PaymentKind,
        id: &PaymentId,
        status: &str,
    ) -> bool {
        lifecycle::set_status(&self.shared, merchant, kind, id, status)
    }

    /// Returns the current status of the primary merchant's payment, or `None`
    /// if it does not exist.
    pub fn payment_status(&self, kind: PaymentKind, id: &PaymentId) -> Option<String> {
        lifecycle::status_of(&self.shared, self.primary(), kind, id)
    }

    /// Returns the current status of `merchant`'s payment, or `None` if that
    /// merchant has no payment with this kind and id.
    pub fn payment_status_as(
        &self,
        merchant: &str,
        kind: PaymentKind,
        id: &PaymentId,
    ) -> Option<String> {
        lifecycle::status_of(&self.shared, merchant, kind, id)
    }

    /// Returns every payment of the primary merchant with its current status,
    /// sorted by kind and id.
    pub fn payments(&self) -> Vec<(PaymentKind, PaymentId, String)> {
        self.payments_as(self.primary())
    }

    /// Returns every payment of `merchant` with its current status, sorted by
    /// kind and id (none for a merchant the simulator does not serve).
    pub fn payments_as(&self, merchant: &str) -> Vec<(PaymentKind, PaymentId, String)> {
        let mut list: Vec<_> = self.shared.read(|state| {
            state
                .payments
                .values()
                .filter(|p| p.merchant == merchant)
                .map(|p| (p.kind, p.id.clone(), p.status.clone()))
                .collect()
        });
        list.sort();
        list
    }

    /// Returns the platform requests received, in arrival order (admin routes
    /// excluded; only the newest 100 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .read(|state| state.log.iter().cloned().collect())
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.read(|state| state.stats.clone())
    }

    /// Invalidates every token issued so far (the platform rotated its key).
    pub fn revoke_tokens(&self) {
        self.shared.rotate_keys();
    }

    /// Changes the extra delay before answering payment fetches (whole
    /// milliseconds; the other faults stay as they are). Only the global
    /// faults change, not a merchant's own ([`Simulator::set_merchant_faults`]).
    pub fn set_latency(&self, d: Duration) {
        self.shared.set_latency(d);
    }

    /// Returns the global faults in force now (those of every merchant without
    /// its own, see [`Simulator::set_merchant_faults`]).
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces every global fault at once; requests and callbacks from now on
    /// see them, except those of a merchant with its own faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Gives `merchant` its own faults (`Some`), used instead of the global ones
    /// for its token requests, its fetches and its payments' callbacks, or
    /// returns it to the global faults (`None`). Returns false, changing
    /// nothing, if the simulator does not serve `merchant`.
    ///
    /// `connectDelayMs` acts on connections, before any merchant is known, so it
    /// is only ever taken from the global faults.
    pub fn set_merchant_faults(&self, merchant: &str, faults: Option<Faults>) -> bool {
        self.shared.set_merchant_faults(merchant, faults)
    }

    /// Returns `merchant`'s own faults, or `None` if it follows the global ones
    /// (or is not a merchant the simulator serves).
    pub fn merchant_faults(&self, merchant: &str) -> Option<Faults> {
        self.shared.merchant_faults(merchant)
    }

    /// Returns the primary merchant's code.
    fn primary(&self) -> &str {
        self.shared.primary()
    }

    /// Returns `Ok` if the simulator serves `merchant`.
    fn known(&self, merchant: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.shared.merchant(merchant).is_some(),
            "the simulator serves no merchant {merchant:?}"
        );
        Ok(())
    }

    /// Resolves once `pred` holds, re-checking after every recorded request,
    /// status change or callback; errors if it still fails after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&Simulator) -> bool,
    ) -> anyhow::Result<()> {
        let now = tokio::time::Instant::now();
        // A timeout too large to add is as good as waiting a year.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(31_536_000));
        // Subscribing before checking means no change can slip in unseen.
        let mut changes = self.shared.subscribe();
        loop {
            if pred(self) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if pred(self) {
            return Ok(());
        }
        anyhow::bail!("simulator condition not met within {timeout:?}")
    }

    /// Stops the server and every background delivery and finalisation.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// Returns once the server task has finished (after [`Simulator::shutdown`]).
    async fn stopped(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = server {
            if let Err(error) = server.await {
                tracing::error!(%error, "simulator server task failed");
            }
        }
    }
}

impl Drop for Simulator {
    /// Stops everything; the server task is aborted rather than drained.
    fn drop(&mut self) {
        self.shutdown();
        if let Some(server) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            server.abort();
        }
    }
}
