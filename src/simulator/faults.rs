//! The faults the simulated platform can inject, changeable while it runs
//! (`Simulator::set_faults`, `PUT /_sim/faults`).

use std::time::Duration;

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};

/// The largest `body_padding_bytes` accepted: 64 MiB, far above any sane body cap.
pub const MAX_BODY_PADDING_BYTES: u64 = 64 * 1024 * 1024;

/// What the platform does wrong; the default does nothing wrong.
///
/// Rates are probabilities within 0..=1 (the admin route refuses others; set
/// directly, values outside act as 0 or 1; padding above the maximum acts as
/// the maximum). As JSON the fields are camelCase,
/// omitted fields mean "no such fault" and unknown fields are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    /// Extra delay before answering `GET /payins|payouts/{id}`, applied after
    /// the answer is computed.
    pub latency_ms: u64,
    /// A further uniformly random 0..=this many milliseconds on top of `latency_ms`.
    pub latency_jitter_ms: u64,
    /// Probability that an admitted platform request is answered 500.
    pub error_rate: f64,
    /// Probability that an admitted platform request is answered 429 anyway,
    /// on top of the sliding-window throttle.
    pub throttle_rate: f64,
    /// When set, every 429 carries `Retry-After: N` (the platform promises none).
    pub retry_after_secs: Option<u64>,
    /// When set, tokens expire at most this many seconds after issue, whatever
    /// `validitySecs` asked. Below 60 this is a hostile answer: the published document
    /// issues no token shorter than its minimum `validitySecs` (60).
    pub token_lifetime_cap_secs: Option<u64>,
    /// The platform's clock runs this many seconds off ours (negative: behind): tokens
    /// carry `iat` and `exp` by that clock, and are checked against it. The published
    /// spec allows it (the claims are plain numbers); clients that compare `exp` with
    /// their own clock misjudge every token.
    pub token_clock_skew_secs: i64,
    /// A payment answers 410 to fetches for this long after its creation.
    pub invisible_for_ms: u64,
    /// Probability that a callback is not sent at all.
    pub drop_callback_rate: f64,
    /// Probability that a callback is sent twice.
    pub duplicate_callback_rate: f64,
    /// Probability that an extra callback with an unknown event type follows.
    pub unknown_event_rate: f64,
    /// Each callback delivery first waits a random 0..=this many milliseconds,
    /// so callbacks for successive changes can arrive out of order.
    pub callback_delay_jitter_ms: u64,
    /// Probability that a 200 answer to a payment fetch carries a body that
    /// does not parse as the payment document. A hostile answer: the published
    /// document forbids it.
    pub malformed_body_rate: f64,
    /// Every fetch and token request is answered 406 `MERCHANT_INACTIVE`.
    pub merchant_inactive: bool,
    /// Every fetch is answered 403, as if the token lacked the operation.
    pub forbid_operations: bool,
    /// Every fetch is answered 401, as if every token were invalid.
    pub reject_tokens: bool,
    /// Each newly accepted TCP connection is held this long before any request
    /// on it is read, so such requests arrive (are throttled and recorded) that
    /// much later; requests on an already-open connection are not delayed.
    pub connect_delay_ms: u64,
    /// Probability that a 200 payment answer names a different payment in its
    /// `idPayin` / `idPayout` (the requested id with a suffix, still a valid id).
    pub wrong_id_rate: f64,
    /// When set, the `process.failureReasons.message` of FAILED and REFUSED
    /// payments, verbatim (any text, NUL included: the document allows any string).
    pub failure_message: Option<String>,
    /// When above 0, every 200 payment answer gains `"padding": "xxx…"` of this
    /// many bytes (at most [`MAX_BODY_PADDING_BYTES`]); the document allows fields
    /// it does not name, though no bound on size is promised either way.
    pub body_padding_bytes: u64,
    /// When set, every payment fetch is answered `302 Found` with this `Location`.
    /// A hostile answer: the published document has no 3xx.
    pub redirect_to: Option<String>,
}

impl Faults {
    /// Returns `Ok` if every rate is within 0..=1, the padding within
    /// [`MAX_BODY_PADDING_BYTES`] and `redirectTo` a usable header value, else
    /// which field is wrong (by its JSON name).
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("errorRate", self.error_rate),
            ("throttleRate", self.throttle_rate),
            ("dropCallbackRate", self.drop_callback_rate),
            ("duplicateCallbackRate", self.duplicate_callback_rate),
            ("unknownEventRate", self.unknown_event_rate),
            ("malformedBodyRate", self.malformed_body_rate),
            ("wrongIdRate", self.wrong_id_rate),
        ];
        if let Some((name, rate)) = rates.iter().find(|(_, rate)| !(0.0..=1.0).contains(rate)) {
            return Err(format!("{name} must be within 0..=1, not {rate}"));
        }
        if self.body_padding_bytes > MAX_BODY_PADDING_BYTES {
            return Err(format!(
                "bodyPaddingBytes must be at most {MAX_BODY_PADDING_BYTES}, not {}",
                self.body_padding_bytes
            ));
        }
        if let Some(location) = &self.redirect_to {
            if location.is_empty() || HeaderValue::from_str(location).is_err() {
                return Err(format!("redirectTo is not a usable Location: {location:?}"));
            }
        }
        Ok(())
    }

    /// Returns the platform's clock: ours, in seconds since the Unix epoch, plus
    /// `token_clock_skew_secs` (never before the epoch).
    pub fn platform_now_secs(&self) -> u64 {
        let ours = jsonwebtoken::get_current_timestamp();
        ours.saturating_add_signed(self.token_clock_skew_secs)
    }

    /// Returns the delay for one payment fetch: the latency plus its random jitter.
    pub fn fetch_delay(&self) -> Duration {
        Duration::from_millis(
            self.latency_ms
                .saturating_add(jitter(self.latency_jitter_ms)),
        )
    }

    /// Returns the random wait before one callback delivery's first attempt.
    pub fn callback_delay(&self) -> Duration {
        Duration::from_millis(jitter(self.callback_delay_jitter_ms))
    }
}

/// Returns true with probability `rate` (values outside 0..=1 act as 0 or 1).
pub fn chance(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// Returns a uniformly random number within 0..=`max`.
fn jitter(max: u64) -> u64 {
    if max == 0 {
        0
    } else {
        rand::random_range(0..=max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_no_fault_and_json_is_camel_case() {
        let faults = Faults::default();
        assert_eq!(faults.fetch_delay(), Duration::ZERO);
        assert_eq!(faults.callback_delay(), Duration::ZERO);
        let json = serde_json::to_value(faults).unwrap();
        assert_eq!(json["retryAfterSecs"], serde_json::Value::Null);
        assert_eq!(json["merchantInactive"], false);
        let partial: Faults = serde_json::from_str(r#"{"throttleRate": 0.5}"#).unwrap();
        assert_eq!(
            partial,
            Faults {
                throttle_rate: 0.5,
                ..Faults::default()
            }
        );
        assert!(serde_json::from_str::<Faults>(r#"{"throttle_rate": 0.5}"#).is_err());
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        assert!(Faults::default().validate().is_ok());
        let full = Faults {
            error_rate: 1.0,
            malformed_body_rate: 0.0,
            ..Faults::default()
        };
        assert!(full.validate().is_ok());
        for bad in [-0.1, 1.01, f64::NAN] {
            let faults = Faults {
                malformed_body_rate: bad,
                ..Faults::default()
            };
            let reason = faults.validate().unwrap_err();
            assert!(reason.starts_with("malformedBodyRate"), "{reason}");
        }
    }

    #[test]
    fn padding_and_redirect_are_checked() {
        let padded = |body_padding_bytes| Faults {
            body_padding_bytes,
            ..Faults::default()
        };
        assert!(padded(MAX_BODY_PADDING_BYTES).validate().is_ok());
        let reason = padded(MAX_BODY_PADDING_BYTES + 1).validate().unwrap_err();
        assert!(reason.starts_with("bodyPaddingBytes"), "{reason}");
        let redirect = |to: &str| Faults {
            redirect_to: Some(to.into()),
            ..Faults::default()
        };
        assert!(redirect("http://127.0.0.1:1/elsewhere").validate().is_ok());
        for bad in ["", "http://x/\nSet-Cookie: a=b"] {
            let reason = redirect(bad).validate().unwrap_err();
            assert!(reason.starts_with("redirectTo"), "{reason}");
        }
        let wrong = Faults {
            wrong_id_rate: 2.0,
            failure_message: Some("nul \u{0} inside".into()),
            ..Faults::default()
        };
        assert!(wrong.validate().unwrap_err().starts_with("wrongIdRate"));
    }

    #[test]
    fn delays_stay_within_latency_plus_jitter() {
        let faults = Faults {
            latency_ms: 100,
            latency_jitter_ms: 50,
            callback_delay_jitter_ms: 30,
            ..Faults::default()
        };
        for _ in 0..200 {
            let fetch = faults.fetch_delay().as_millis();
            assert!((100..=150).contains(&fetch), "{fetch}");
            assert!(faults.callback_delay() <= Duration::from_millis(30));
        }
    }
}
