//! How payments come to exist and change status; every change is announced by callback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::callbacks;
use super::payment::Payment;
use super::state::Shared;
use super::NewPayment;
use crate::domain::{PaymentId, PaymentKind};

/// The status every payment starts in.
pub const PROCESSING: &str = "PROCESSING";

/// Stores `new` as PROCESSING (replacing any payment with the same kind and id),
/// announces it, and schedules its move to `final_status` if one is given.
pub fn create_payment(shared: &Arc<Shared>, new: NewPayment) {
    let payment = Payment {
        kind: new.kind,
        id: new.id,
        amount: new.amount,
        currency: new.currency,
        payment_method_code: new.payment_method_code,
        status: PROCESSING.to_owned(),
        created_at: Utc::now(),
        created_instant: Instant::now(),
        processed_at: None,
        is_test: new.is_test,
        callback_url: new.callback_url,
    };
    let key = (payment.kind, payment.id.clone());
    shared.mutate(|state| state.payments.insert(key, payment.clone()));
    callbacks::announce(shared, &payment);
    if let Some(status) = new.final_status {
        schedule_finalisation(shared, &payment, status, new.finalize_after);
    }
}

/// Moves a payment to `status` and announces it; returns false if there is no
/// such payment. The same status again is still announced, as a test may want.
pub fn set_status(shared: &Arc<Shared>, kind: PaymentKind, id: &PaymentId, status: &str) -> bool {
    change_status(shared, kind, id, status, |_| true)
}

/// Moves the payment to `status` if it exists and `allowed` approves of its
/// current state, in one critical section; announces the change and returns
/// whether it happened.
fn change_status(
    shared: &Arc<Shared>,
    kind: PaymentKind,
    id: &PaymentId,
    status: &str,
    allowed: impl FnOnce(&Payment) -> bool,
) -> bool {
    let changed = shared.mutate(|state| {
        let payment = state.payments.get_mut(&(kind, id.clone()))?;
        if !allowed(payment) {
            return None;
        }
        payment.apply_status(status, Utc::now());
        Some(payment.clone())
    });
    match changed {
        Some(payment) => {
            callbacks::announce(shared, &payment);
            true
        }
        None => false,
    }
}

/// Returns the current status of a payment, if it exists.
pub fn status_of(shared: &Shared, kind: PaymentKind, id: &PaymentId) -> Option<String> {
    shared.read(|state| {
        let payment = state.payments.get(&(kind, id.clone()))?;
        Some(payment.status.clone())
    })
}

/// Spawns a task that moves `payment` to `status` after `delay`, unless it has
/// reached a final status some other way or been replaced meanwhile.
fn schedule_finalisation(shared: &Arc<Shared>, payment: &Payment, status: String, delay: Duration) {
    let shared = Arc::clone(shared);
    let (kind, id, created_at) = (payment.kind, payment.id.clone(), payment.created_at);
    tokio::spawn(async move {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        change_status(&shared, kind, &id, &status, |current| {
            current.created_at == created_at && !current.is_final()
        });
    });
}
