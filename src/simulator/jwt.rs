//! The simulator's bearer tokens: HS256 JWTs whose `operations` claim lists the
//! regexes of the requests (`"GET /payins/X"`) the token may make.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The claims the platform puts in its tokens; there is no other expiry field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub sub: String,
    pub operations: Vec<String>,
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is invalid or expired")]
    Invalid,
    #[error("the token does not allow this operation")]
    Forbidden,
}

/// A random per-simulator signing key, so tokens of one run are worthless in another.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenKeys {
    /// Returns keys built from 32 fresh random bytes.
    pub fn random() -> Self {
        let secret: [u8; 32] = rand::random();
        TokenKeys {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        }
    }

    /// Returns a signed token for `merchant` valid for `validity_secs` from `now_secs`.
    pub fn issue(
        &self,
        merchant: &str,
        operations: Vec<String>,
        now_secs: u64,
        validity_secs: u64,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            exp: now_secs + validity_secs,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            sub: merchant.to_owned(),
            operations,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Returns the claims of `token` if its signature is ours and it has not expired
    /// by the platform's clock, which reads `now_secs`.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked below against the platform's clock, not the library's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| TokenError::Invalid)?;
        // The platform allows no grace period after `exp`.
        if claims.exp < now_secs {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }

    /// Returns the `sub` of the bearer token in `authorization` if its signature
    /// is ours, expired or not: whose token it is, as the platform can tell even
    /// when it refuses the token.
    pub fn subject(&self, authorization: Option<&str>) -> Option<String> {
        let token = bearer_token(authorization)?;
        // The platform's clock at the epoch: no signed token has expired by it.
        self.verify(token, 0).ok().map(|claims| claims.sub)
    }

    /// Returns the claims if `authorization` is a valid bearer token allowing
    /// `operation` when the platform's clock reads `now_secs`.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        operation: &str,
        now_secs: u64,
    ) -> Result<Claims, TokenError> {
        let token = bearer_token(authorization).ok_or(TokenError::Invalid)?;
        let claims = self.verify(token, now_secs)?;
        if allows(&claims.operations, operation) {
            Ok(claims)
        } else {
            Err(TokenError::Forbidden)
        }
    }
}

/// Returns the token part of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Returns the operation regex anchored so it must match the whole request line.
pub fn compile_operation(operation: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{operation})$"))
}

/// Returns true if one of `operations` fully matches `request` (`"GET /payins/X"`).
///
/// A pattern that does not compile matches nothing (tokens are issued only with
/// valid patterns, so this only guards against surprises).
pub fn allows(operations: &[String], request: &str) -> bool {
    operations.iter().any(|op| {
        compile_operation(op)
            .map(|re| re.is_match(request))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn operations_must_match_the_whole_request_line() {
        let read_payins = ops(&["GET /payins/.*"]);
        assert!(allows(&read_payins, "GET /payins/TST-1"));
        assert!(!allows(&read_payins, "GET /payouts/TST-1"));
        assert!(!allows(&read_payins, "POST /payins/TST-1"));
        // Unanchored matching would accept these.
        assert!(!allows(&ops(&["GET /payins"]), "GET /payins/TST-1"));
        assert!(!allows(&ops(&["payins/.*"]), "GET /payins/TST-1"));
        // Alternation inside one pattern stays anchored as a whole.
        let either = ops(&["GET /payins/A|GET /payouts/B"]);
        assert!(allows(&either, "GET /payouts/B"));
        assert!(!allows(&either, "GET /payouts/BX"));
    }

    #[test]
    fn invalid_patterns_match_nothing() {
        assert!(compile_operation("GET /payins/(").is_err());
        assert!(!allows(&ops(&["GET /payins/("]), "GET /payins/("));
        assert!(!allows(&[], "GET /payins/X"));
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let keys = TokenKeys::random();
        let now = jsonwebtoken::get_current_timestamp();
        let token = keys.issue("M1", ops(&["GET /payins/.*"]), now, 60).unwrap();
        let claims = keys.verify(&token, now).unwrap();
        assert_eq!((claims.sub.as_str(), claims.exp), ("M1", now + 60));
        let header = format!("Bearer {token}");
        assert_eq!(keys.subject(Some(&header)).as_deref(), Some("M1"));
        assert!(keys.authorize(Some(&header), "GET /payins/X", now).is_ok());
        assert_eq!(
            keys.authorize(Some(&header), "GET /payouts/X", now)
                .unwrap_err(),
            TokenError::Forbidden
        );
    }

    #[test]
    fn expired_foreign_and_missing_tokens_are_invalid() {
        let keys = TokenKeys::random();
        let now = jsonwebtoken::get_current_timestamp();
        let expired = keys.issue("M1", ops(&[".*"]), now - 120, 60).unwrap();
        assert_eq!(keys.verify(&expired, now).unwrap_err(), TokenError::Invalid);
        // The same token is valid by a clock two minutes behind.
        assert!(keys.verify(&expired, now - 120).is_ok());
        let foreign = TokenKeys::random()
            .issue("M1", ops(&[".*"]), now, 60)
            .unwrap();
        assert_eq!(keys.verify(&foreign, now).unwrap_err(), TokenError::Invalid);
        // Whose token it is shows through its expiry, not through a foreign signature.
        let expired_header = format!("Bearer {expired}");
        assert_eq!(keys.subject(Some(&expired_header)).as_deref(), Some("M1"));
        assert_eq!(keys.subject(Some(&format!("Bearer {foreign}"))), None);
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Basic abc"),
            Some("Bearer x.y.z"),
        ] {
            assert_eq!(
                keys.authorize(header, "GET /payins/X", now).unwrap_err(),
                TokenError::Invalid
            );
        }
    }
}
