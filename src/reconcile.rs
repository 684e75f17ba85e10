//! When to re-fetch a payment that is not final yet, without waiting for a callback
//! (the platform gives up on a callback after five tries in eight minutes).

use chrono::{DateTime, Duration, Utc};

use crate::config::ReconcileSettings;
use crate::platform::PlatformPayment;

/// Returns when to fetch the payment next without a callback: `None` once it is final
/// or too old to chase. Early fetches follow `schedule_secs` by the payment's age,
/// then every `interval_secs`; a payment still processing is fetched again shortly
/// after its `expireAt`, when the platform must have decided.
pub fn next_reconcile_at(
    settings: &ReconcileSettings,
    payment: &PlatformPayment,
    first_seen_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if payment.snapshot.status.is_final() {
        return None;
    }
    let give_up_at = first_seen_at + span(settings.max_age);
    let by_age = settings
        .schedule
        .iter()
        .map(|&s| first_seen_at + span(s))
        .find(|&at| at > now)
        .unwrap_or(now + span(settings.interval));
    let after_expiry = payment
        .snapshot
        .expire_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc) + span(settings.expiry_grace))
        .filter(|&at| at > now);
    let next = after_expiry.map_or(by_age, |at| at.min(by_age));
    (next <= give_up_at).then_some(next)
}

/// Returns `d` as a span of calendar time (saturating: no configured duration is that long).
fn span(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ReconcileSettings {
        ReconcileSettings {
            schedule: [60, 300, 900].map(std::time::Duration::from_secs).to_vec(),
            interval: std::time::Duration::from_secs(3600),
            max_age: std::time::Duration::from_secs(72 * 3600),
            expiry_grace: std::time::Duration::from_secs(5),
        }
    }

    fn payment(status: &str, expire_at: Option<&str>) -> PlatformPayment {
        let expire = expire_at
            .map(|t| format!(r#", "expireAt": "{t}""#))
            .unwrap_or_default();
        let body = format!(
            r#"{{"paymentRequested": {{"money": {{"amount": 1.00, "currencyCode": "INR"}}}},
                 "process": {{"status": "{status}"}},
                 "paymentMethodResponse": {{"paymentMethodCode": "UPIQR", "idPayin": "P-1"{expire}}}}}"#
        );
        let id = crate::domain::PaymentId::parse("P-1").expect("valid id");
        PlatformPayment::parse(body.as_bytes(), crate::domain::PaymentKind::Payin, &id)
            .expect("parses")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn follows_the_schedule_by_age_then_hourly() {
        let seen = at("2026-11-21T10:00:00Z");
        let p = payment("PROCESSING", None);
        let next = |now: &str| next_reconcile_at(&settings(), &p, seen, at(now));
        assert_eq!(
            next("2026-11-21T10:00:01Z"),
            Some(at("2026-11-21T10:01:00Z"))
        );
        assert_eq!(
            next("2026-11-21T10:01:00Z"),
            Some(at("2026-11-21T10:05:00Z"))
        );
        assert_eq!(
            next("2026-11-21T10:06:00Z"),
            Some(at("2026-11-21T10:15:00Z"))
        );
        assert_eq!(
            next("2026-11-21T10:20:00Z"),
            Some(at("2026-11-21T11:20:00Z"))
        );
    }

    #[test]
    fn stops_for_final_payments_and_old_ones() {
        let seen = at("2026-11-21T10:00:00Z");
        for status in ["SUCCESS", "FAILED", "REFUSED"] {
            assert_eq!(
                next_reconcile_at(&settings(), &payment(status, None), seen, seen),
                None
            );
        }
        let old = at("2026-11-24T09:30:00Z");
        assert_eq!(
            next_reconcile_at(&settings(), &payment("PROCESSING", None), seen, old),
            None
        );
    }

    #[test]
    fn an_expiring_payment_is_fetched_right_after_expiry() {
        let seen = at("2026-11-21T10:00:00Z");
        let p = payment("PROCESSING", Some("2026-11-21T10:00:30Z"));
        let next = next_reconcile_at(&settings(), &p, seen, at("2026-11-21T10:00:02Z"));
        assert_eq!(next, Some(at("2026-11-21T10:00:35Z")));
        // Once past expiry it falls back to the schedule rather than hammering.
        let later = next_reconcile_at(&settings(), &p, seen, at("2026-11-21T10:00:40Z"));
        assert_eq!(later, Some(at("2026-11-21T10:01:00Z")));
    }

    #[test]
    fn unknown_statuses_are_chased_too() {
        let seen = at("2026-11-21T10:00:00Z");
        assert!(next_reconcile_at(&settings(), &payment("ON_HOLD", None), seen, seen).is_some());
    }
}
