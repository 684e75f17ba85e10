//! Anemic callbacks to the merchant: `POST {"idEntity", "event"}`, retried like
//! the platform does (4 more tries after a non-200), with injectable faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::faults::chance;
use super::merchant::path_segment;
use super::payment::Payment;
use super::state::Shared;

/// The first try plus the platform's 4 retries.
const ATTEMPTS: u32 = 5;
/// How long one delivery attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The event of a status change.
pub const STATUS_CHANGE: &str = "payment.statusChange";
/// An event type paymirror does not know, to test that it is tolerated.
pub const UNKNOWN_EVENT: &str = "payment.noteAdded";

/// Starts background deliveries announcing that `payment` changed; returns at once.
///
/// Applies the faults in force for the payment's merchant (its own, else the
/// global ones): the callback may be dropped, sent twice,
/// followed by one with an unknown event type, or delayed at random.
pub fn announce(shared: &Arc<Shared>, payment: &Payment) {
    let Some(url) = callback_url(shared, payment) else {
        return;
    };
    let faults = shared.faults_for(Some(&payment.merchant));
    if chance(faults.drop_callback_rate) {
        shared.mutate(|state| state.stats.callbacks_dropped += 1);
        return;
    }
    let id = payment.id.as_str();
    let status_change = json!({"idEntity": id, "event": STATUS_CHANGE});
    let mut bodies = vec![status_change.clone()];
    if chance(faults.duplicate_callback_rate) {
        bodies.push(status_change);
    }
    if chance(faults.unknown_event_rate) {
        bodies.push(json!({"idEntity": id, "event": UNKNOWN_EVENT}));
    }
    for body in bodies {
        spawn_delivery(shared, url.clone(), body, faults.callback_delay());
    }
}

/// Returns where callbacks for `payment` go: its own URL, else
/// `{callback_base_url}/callbacks/{payins|payouts}` for the primary merchant
/// and `{callback_base_url}/callbacks/{CODE}/{payins|payouts}` for another
/// (the code percent-encoded), else nowhere.
fn callback_url(shared: &Shared, payment: &Payment) -> Option<String> {
    if let Some(url) = &payment.callback_url {
        return Some(url.clone());
    }
    let base = shared.config.callback_base_url.as_deref()?;
    let base = base.trim_end_matches('/');
    let kind = payment.kind.plural();
    if payment.merchant == shared.primary() {
        Some(format!("{base}/callbacks/{kind}"))
    } else {
        let code = path_segment(&payment.merchant);
        Some(format!("{base}/callbacks/{code}/{kind}"))
    }
}

/// Spawns one callback's delivery with retries, its first attempt after
/// `delay`; it stops early on shutdown.
fn spawn_delivery(shared: &Arc<Shared>, url: String, body: serde_json::Value, delay: Duration) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let cancel = shared.cancel.clone();
        let delivery = async {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            deliver_with_retries(&shared, &url, &body).await;
        };
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = delivery => {}
        }
    });
}

/// Tries to deliver `body` to `url` up to [`ATTEMPTS`] times, `callback_retry_interval`
/// apart; returns once it was answered 200 or the last attempt failed.
async fn deliver_with_retries(shared: &Shared, url: &str, body: &serde_json::Value) {
    for attempt in 1..=ATTEMPTS {
        if attempt_delivery(shared, url, body).await {
            return;
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(shared.config.callback_retry_interval).await;
        }
    }
    tracing::warn!(
        url,
        "simulator gave up on a callback after {ATTEMPTS} attempts"
    );
    shared.mutate(|state| state.stats.callbacks_given_up += 1);
}

/// Returns true if one POST of `body` to `url` was answered 200.
async fn attempt_delivery(shared: &Shared, url: &str, body: &serde_json::Value) -> bool {
    shared.mutate(|state| {
        state.stats.callbacks_sent += 1;
        state.stats.last_callback_sent_at = Some(Instant::now());
    });
    let answer = shared
        .http
        .post(url)
        .json(body)
        .timeout(ATTEMPT_TIMEOUT)
        .send()
        .await;
    let delivered = match answer {
        Ok(response) => response.status() == reqwest::StatusCode::OK,
        Err(error) => {
            tracing::debug!(url, %error, "simulator callback attempt failed");
            false
        }
    };
    if delivered {
        shared.mutate(|state| state.stats.callbacks_delivered += 1);
    }
    delivered
}
