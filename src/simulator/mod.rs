//! A stateful stand-in for the payment platform (SPEC §1 and §4): tokens with
//! operation regexes, the version header, a sliding 1-second throttle, payments
//! that move to a final status and announce it by callback, and injectable faults.

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
mod payment;
mod platform_routes;
mod server;
mod state;
#[cfg(test)]
mod tests;
mod window;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::task::JoinHandle;

use crate::domain::{PaymentId, PaymentKind};
use state::Shared;

pub use cli::{run, FaultArgs, SimulatorArgs};
pub use faults::Faults;
pub use state::{RecordedRequest, SimStats};

/// How the simulated platform behaves.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    pub merchant_code: String,
    /// The merchant secret `POST /auth-tokens` accepts.
    pub secret: String,
    /// Accepted platform requests allowed in any sliding 1000 ms window.
    pub max_rps: u32,
    /// Callbacks go to `{base}/callbacks/{payins|payouts}` unless the payment has its own URL.
    pub callback_base_url: Option<String>,
    /// Pause between callback attempts (the platform: 2 minutes).
    pub callback_retry_interval: Duration,
    /// How long a payin waits for money: its `expireAt` is its creation plus
    /// this, and a payin still not final then fails (the default: 15 minutes).
    pub payin_expiry: Duration,
    /// The faults at start; [`Simulator::set_faults`] replaces them while running.
    pub faults: Faults,
}

impl Default for SimulatorConfig {
    /// Returns the real platform's behaviour, without faults, with the
    /// simulator's own credentials.
    fn default() -> Self {
        SimulatorConfig {
            merchant_code: "M1".into(),
            secret: "sim-secret".into(),
            max_rps: 10,
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
    /// server and returns at once.
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: SimulatorConfig,
    ) -> anyhow::Result<Simulator> {
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

    /// Creates a PROCESSING payment (replacing one with the same kind and id),
    /// sends its callback and schedules its finalisation.
    pub async fn create_payment(&self, p: NewPayment) {
        lifecycle::create_payment(&self.shared, p);
    }

    /// Moves a payment to `status` and sends a callback; returns false if the
    /// kind and id are unknown.
    pub async fn set_status(&self, kind: PaymentKind, id: &PaymentId, status: &str) -> bool {
        lifecycle::set_status(&self.shared, kind, id, status)
    }

    /// Returns the payment's current status, or `None` if it does not exist.
    pub fn payment_status(&self, kind: PaymentKind, id: &PaymentId) -> Option<String> {
        lifecycle::status_of(&self.shared, kind, id)
    }

    /// Returns every payment with its current status, sorted by kind and id.
    pub fn payments(&self) -> Vec<(PaymentKind, PaymentId, String)> {
        let mut list: Vec<_> = self.shared.read(|state| {
            state
                .payments
                .values()
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
    /// milliseconds; the other faults stay as they are).
    pub fn set_latency(&self, d: Duration) {
        self.shared.set_latency(d);
    }

    /// Returns the faults in force now.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces every fault at once; requests and callbacks from now on see them.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
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
