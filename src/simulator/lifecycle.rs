//! How payments come to exist and change status; every change is announced by
//! callback. A payin still not final at its `expireAt` fails, as on the platform.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::callbacks;
use super::payment::Payment;
use super::state::Shared;
use super::NewPayment;
use crate::domain::{PaymentId, PaymentKind};

/// The status every payment starts in.
pub const PROCESSING: &str = "PROCESSING";

/// Stores `new` as a PROCESSING payment of `merchant` (replacing any payment
/// of that merchant with the same kind and id), announces it, and schedules
/// its move to `final_status` if one is given and, for a payin, its expiry.
pub fn create_payment(shared: &Arc<Shared>, merchant: &str, new: NewPayment) {
    let created_at = Utc::now();
    let expire_after = match new.kind {
        PaymentKind::Payin => Some(new.expire_after.unwrap_or(shared.config.payin_expiry)),
        PaymentKind::Payout => None,
    };
    let payment = Payment {
        merchant: merchant.to_owned(),
        kind: new.kind,
        id: new.id,
        id_payment: Uuid::new_v4(),
        amount: new.amount,
        currency: new.currency,
        payment_method_code: new.payment_method_code,
        status: PROCESSING.to_owned(),
        created_at,
        created_instant: Instant::now(),
        processed_at: None,
        expire_at: expire_after.and_then(|after| later_by(created_at, after)),
        expired: false,
        is_test: new.is_test,
        callback_url: new.callback_url,
    };
    let key = (payment.merchant.clone(), payment.kind, payment.id.clone());
    shared.mutate(|state| state.payments.insert(key, payment.clone()));
    callbacks::announce(shared, &payment);
    if let Some(status) = new.final_status {
        schedule_change(shared, &payment, new.finalize_after, move |p, now| {
            p.apply_status(&status, now)
        });
    }
    if let (Some(after), Some(_)) = (expire_after, payment.expire_at) {
        schedule_change(shared, &payment, after, Payment::expire);
    }
}

/// Returns `at + after`, or `None` if that is beyond what a date can hold
/// (the payment then never expires).
fn later_by(at: DateTime<Utc>, after: Duration) -> Option<DateTime<Utc>> {
    at.checked_add_signed(TimeDelta::from_std(after).ok()?)
}

/// Moves a payment of `merchant` to `status` and announces it; returns false
/// if there is no such payment. The same status again is still announced, as
/// a test may want.
pub fn set_status(
    shared: &Arc<Shared>,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
    status: &str,
) -> bool {
    change_status(
        shared,
        merchant,
        kind,
        id,
        |_| true,
        |p, now| p.apply_status(status, now),
    )
}

/// Applies `change` to the payment if it exists and `allowed` approves of its
/// current state, in one critical section; announces the change and returns
/// whether it happened.
fn change_status(
    shared: &Arc<Shared>,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
    allowed: impl FnOnce(&Payment) -> bool,
    change: impl FnOnce(&mut Payment, DateTime<Utc>),
) -> bool {
    let changed = shared.mutate(|state| {
        let payment = state
            .payments
            .get_mut(&(merchant.to_owned(), kind, id.clone()))?;
        if !allowed(payment) {
            return None;
        }
        change(payment, Utc::now());
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

/// Returns the current status of a payment of `merchant`, if it exists.
pub fn status_of(
    shared: &Shared,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> Option<String> {
    shared.read(|state| {
        let payment = state
            .payments
            .get(&(merchant.to_owned(), kind, id.clone()))?;
        Some(payment.status.clone())
    })
}

/// Spawns a task that applies `change` to `payment` after `delay`, unless it
/// has reached a final status some other way or been replaced meanwhile.
fn schedule_change(
    shared: &Arc<Shared>,
    payment: &Payment,
    delay: Duration,
    change: impl FnOnce(&mut Payment, DateTime<Utc>) + Send + 'static,
) {
    let shared = Arc::clone(shared);
    let merchant = payment.merchant.clone();
    let (kind, id, id_payment) = (payment.kind, payment.id.clone(), payment.id_payment);
    tokio::spawn(async move {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let unchanged = |current: &Payment| current.id_payment == id_payment && !current.is_final();
        change_status(&shared, &merchant, kind, &id, unchanged, change);
    });
}
