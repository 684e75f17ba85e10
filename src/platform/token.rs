//! The platform's bearer tokens: how long one may be used, read from its own claims.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(super) struct CachedToken {
    pub value: SecretString,
    pub generation: u64,
    pub refresh_at: Instant,
}

/// The shortest life a token is given, whatever its claims say: the platform's own
/// minimum `validitySecs`. A token never counts as expired when it arrives; one the
/// platform really let lapse sooner costs a 401 and one refresh.
pub(super) const MIN_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Claims {
    exp: Option<i64>,
    iat: Option<i64>,
}

/// Returns how long a token that has just arrived may be used: `exp − iat`, both
/// stamped by the platform's clock, so a skew between its clock and ours changes
/// nothing; without a usable `iat`, `exp` minus our clock; without a readable `exp`,
/// what we `asked` for. Never more than `asked` (the platform grants at most that)
/// and never less than [`MIN_LIFETIME`]. The signature is the platform's business:
/// the claims are only read to know when to refresh.
pub(super) fn lifetime_from_claims(token: &SecretString, asked: Duration) -> Duration {
    let claimed = claims(token).and_then(|claims| {
        let exp = claims.exp?;
        let remaining = match claims.iat.filter(|&iat| iat < exp) {
            Some(iat) => exp.checked_sub(iat)?,
            None => exp.checked_sub(unix_now()?)?,
        };
        Some(Duration::from_secs(u64::try_from(remaining).unwrap_or(0)))
    });
    claimed.unwrap_or(asked).min(asked).max(MIN_LIFETIME)
}

/// Returns the token's claims read without its key, or `None` if it is no JWT.
fn claims(token: &SecretString) -> Option<Claims> {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Claims>(
        token.expose_secret(),
        &DecodingKey::from_secret(&[]),
        &validation,
    )
    .ok()
    .map(|data| data.claims)
}

/// Returns our clock as seconds since the Unix epoch.
fn unix_now() -> Option<i64> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// Returns when to refresh a token that lives `lifetime`: a minute early, or a fifth
/// of its life early for short-lived tokens, so no request goes out with an expired one.
pub(super) fn refresh_deadline(now: Instant, lifetime: Duration) -> Instant {
    let margin = Duration::from_secs(60).min(lifetime / 5);
    now + lifetime.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const ASKED: Duration = Duration::from_secs(1800);

    /// Returns a token with these claims, signed with a key the reader never sees.
    fn token(claims: serde_json::Value) -> SecretString {
        let jwt =
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .expect("encodes");
        SecretString::from(jwt)
    }

    fn now() -> i64 {
        unix_now().expect("a clock after 1970")
    }

    #[test]
    fn reads_lifetime_from_exp_without_the_key() {
        let now = now();
        let lifetime = lifetime_from_claims(&token(json!({"exp": now + 600, "iat": now})), ASKED);
        assert_eq!(lifetime, Duration::from_secs(600));
        let not_a_jwt = SecretString::from("not-a-jwt");
        assert_eq!(lifetime_from_claims(&not_a_jwt, ASKED), ASKED);
    }

    #[test]
    fn a_skewed_clock_changes_nothing_when_iat_is_there() {
        // The platform's clock two hours behind ours: exp is long past by our clock.
        let then = now() - 7200;
        let behind = token(json!({"exp": then + 1800, "iat": then}));
        assert_eq!(lifetime_from_claims(&behind, ASKED), ASKED);
        // Two hours ahead: exp - now would be 3 h 30, more than was granted.
        let ahead = token(json!({"exp": now() + 7200 + 1800, "iat": now() + 7200}));
        assert_eq!(lifetime_from_claims(&ahead, ASKED), ASKED);
    }

    #[test]
    fn a_token_never_counts_as_expired_on_arrival() {
        let now = now();
        for claims in [
            json!({"exp": now - 100}),
            json!({"exp": now - 100, "iat": now - 100}),
            json!({"exp": now + 5, "iat": now}),
            json!({"exp": i64::MIN, "iat": i64::MAX}),
            json!({"exp": i64::MAX, "iat": i64::MIN}),
        ] {
            let lifetime = lifetime_from_claims(&token(claims.clone()), ASKED);
            assert!(
                (MIN_LIFETIME..=ASKED).contains(&lifetime),
                "{claims}: {lifetime:?}"
            );
        }
        let without_iat = token(json!({"exp": now + 900}));
        let lifetime = lifetime_from_claims(&without_iat, ASKED).as_secs();
        assert!((898..=900).contains(&lifetime), "{lifetime}");
    }

    #[test]
    fn refreshes_before_expiry() {
        let now = Instant::now();
        assert_eq!(
            refresh_deadline(now, Duration::from_secs(1800)),
            now + Duration::from_secs(1740)
        );
        assert_eq!(
            refresh_deadline(now, Duration::from_secs(60)),
            now + Duration::from_secs(48)
        );
    }
}
