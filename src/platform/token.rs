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

#[derive(Deserialize)]
struct Claims {
    exp: Option<i64>,
}

/// Returns how long the token stays valid according to its `exp` claim, or `None`
/// when it has no readable `exp`. The signature is the platform's business: we only
/// read the claims to know when to refresh.
pub(super) fn lifetime_from_claims(token: &SecretString) -> Option<Duration> {
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Claims>(
        token.expose_secret(),
        &DecodingKey::from_secret(&[]),
        &validation,
    )
    .ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    let remaining = data.claims.exp? - now;
    Some(Duration::from_secs(remaining.max(0) as u64))
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

    fn token_expiring_in(secs: i64) -> SecretString {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let claims = serde_json::json!({"exp": now + secs, "iat": now, "sub": "M1"});
        let jwt =
            jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k"))
                .expect("encodes");
        SecretString::from(jwt)
    }

    #[test]
    fn reads_lifetime_from_exp_without_the_key() {
        let lifetime = lifetime_from_claims(&token_expiring_in(1800)).expect("has exp");
        assert!((1798..=1800).contains(&lifetime.as_secs()), "{lifetime:?}");
        assert_eq!(lifetime_from_claims(&SecretString::from("not-a-jwt")), None);
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
