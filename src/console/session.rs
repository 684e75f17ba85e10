//! Console sessions (`console_sessions`): opened by signing in with an API token, held
//! in an `HttpOnly; SameSite=Strict` cookie that carries only a random session id
//! (the database keeps its hash), and valid only while the token it was opened with
//! is its account's active token: a revocation or a new token ends it on every replica.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use rand::distr::{Alphanumeric, SampleString};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::error::ConsoleError;
use crate::config::SecureCookie;
use crate::domain::Merchants;
use crate::http::error_response;
use crate::http::AppState;
use crate::tokens::{hash, Grant, Permission};

/// The session cookie: a random id, never the API token.
pub const SESSION_COOKIE: &str = "paymirror_console";
/// The sign-in form's double-submit CSRF cookie, set before any session exists.
pub const SIGN_IN_COOKIE: &str = "paymirror_console_signin";
/// Where every console page lives, and the cookies' `Path`.
pub const BASE: &str = "/console";

/// A signed-in operator, re-read from the database on every request.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: String,
    pub account: String,
    pub permissions: Vec<Permission>,
    /// The merchants the session's token sees and this deployment serves, the
    /// default merchant first; never empty once extracted.
    pub merchants: Vec<Arc<str>>,
    /// The merchant every page of the session shows: the one chosen in the header if
    /// the token sees it, else the first of `merchants`.
    pub merchant: Arc<str>,
    /// The token every form of this session carries (synchronizer token).
    pub csrf: String,
}

impl Session {
    /// Returns whether this session may act (retry, refresh), not only look.
    pub fn can_write(&self) -> bool {
        self.permissions
            .iter()
            .any(|p| p.allows(&Permission::Write))
    }

    /// Answers 403 unless the session may act.
    pub fn require_write(&self) -> Result<(), ConsoleError> {
        if self.can_write() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "this console session's token lacks the `write` permission",
            ))
        }
    }
}

/// Returns a new random secret: 43 alphanumeric characters (about 256 bits).
pub fn new_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 43)
}

/// Opens a session for the token row `token_id`; returns the session id for the cookie.
pub async fn open_session(pool: &PgPool, token_id: i64, lasts: Duration) -> sqlx::Result<String> {
    let id = new_secret();
    sqlx::query(
        "insert into console_sessions (id_hash, token_id, csrf_secret, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(hash(&id))
    .bind(token_id)
    .bind(new_secret())
    .bind(lasts.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(id)
}

/// Returns the session `id` names if it has not expired and its token is still active.
pub async fn find_session(
    pool: &PgPool,
    served: &Merchants,
    id: &str,
) -> sqlx::Result<Option<Session>> {
    let id_hash = hash(id);
    let row: Option<SessionRow> = sqlx::query_as(
        "select t.account, t.permissions, s.csrf_secret, t.merchants, s.merchant_code
         from console_sessions s join api_tokens t on t.id = s.token_id
         where s.id_hash = $1 and s.expires_at > now() and t.active",
    )
    .bind(&id_hash)
    .fetch_optional(pool)
    .await?;
    let Some((account, permissions, csrf, scope, chosen)) = row else {
        return Ok(None);
    };
    let grant = Grant {
        permissions,
        merchants: scope,
    };
    let merchants: Vec<Arc<str>> = served
        .all()
        .iter()
        .filter(|code| grant.sees(code))
        .cloned()
        .collect();
    let merchant = chosen
        .and_then(|c| merchants.iter().find(|m| ***m == *c).cloned())
        .or_else(|| merchants.first().cloned());
    // A token that sees no merchant served here opens no console.
    Ok(merchant.map(|merchant| Session {
        id_hash,
        account,
        permissions: grant.permissions,
        merchants,
        merchant,
        csrf,
    }))
}

/// account, permissions, csrf secret, token scope, chosen merchant.
type SessionRow = (
    String,
    Vec<Permission>,
    String,
    Option<Vec<String>>,
    Option<String>,
);

/// Makes `merchant` the one the session shows; refused (false) unless it is one of
/// the session's merchants.
pub async fn choose_merchant(
    pool: &PgPool,
    session: &Session,
    merchant: &str,
) -> sqlx::Result<bool> {
    if !session.merchants.iter().any(|m| &**m == merchant) {
        return Ok(false);
    }
    sqlx::query(
        "update console_sessions set merchant_code = $2, updated_at = now() where id_hash = $1",
    )
    .bind(&session.id_hash)
    .bind(merchant)
    .execute(pool)
    .await?;
    Ok(true)
}

/// Returns whether the session is still valid (not expired, its token still active).
pub async fn is_valid(pool: &PgPool, session: &Session) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from console_sessions s join api_tokens t on t.id = s.token_id
           where s.id_hash = $1 and s.expires_at > now() and t.active)",
    )
    .bind(&session.id_hash)
    .fetch_one(pool)
    .await
}

/// Ends the session (sign-out).
pub async fn end_session(pool: &PgPool, session: &Session) -> sqlx::Result<()> {
    sqlx::query("delete from console_sessions where id_hash = $1")
        .bind(&session.id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes sessions that expired or whose token is no longer active; returns how many.
pub async fn prune_sessions(pool: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from console_sessions s using api_tokens t
         where t.id = s.token_id and (s.expires_at <= now() or not t.active)",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Returns the value of the cookie `name` the request carries, if any.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// Returns whether the request reached us over TLS, as far as `setting` lets us know.
pub fn is_secure(headers: &HeaderMap, setting: SecureCookie) -> bool {
    match setting {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")),
    }
}

/// Returns a `Set-Cookie` value scoped to the console; `max_age` zero deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    // The parts are ours: alphanumeric ids and fixed names.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    /// Resolves the session cookie; without a valid session a page read is sent to the
    /// sign-in form (and a stale cookie cleared), anything else is answered 401.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let presented = cookie(&parts.headers, SESSION_COOKIE);
        if let Some(id) = presented {
            match find_session(&state.pool, &state.merchants, id).await {
                Ok(Some(session)) => return Ok(session),
                Ok(None) => {}
                Err(e) => return Err(crate::http::ApiError::from(e).into_response()),
            }
        }
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(error_response(
                StatusCode::UNAUTHORIZED,
                "sign in to the console first (the session ended or never began)",
            ));
        }
        let mut answer = Redirect::to(BASE).into_response();
        if presented.is_some() {
            let secure = is_secure(&parts.headers, state.console.settings.secure_cookie);
            answer.headers_mut().insert(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", Duration::ZERO, secure),
            );
        }
        Err(answer)
    }
}

/// Ends expired and revoked sessions every `interval` until `cancel` fires.
pub async fn keep_sessions(pool: PgPool, interval: Duration, cancel: CancellationToken) {
    crate::background::every(interval, &cancel, || async {
        if let Err(e) = prune_sessions(&pool).await {
            tracing::warn!(error = %e, "could not prune console sessions");
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("paymirror_console=xyz; c"),
        );
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(cookie(&headers, "paymirror"), None);
    }

    #[test]
    fn the_cookie_is_strict_http_only_and_secure_only_behind_tls() {
        let mut headers = HeaderMap::new();
        assert!(!is_secure(&headers, SecureCookie::Auto));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(is_secure(&headers, SecureCookie::Auto));
        assert!(!is_secure(&headers, SecureCookie::Never));
        let value = set_cookie(SESSION_COOKIE, "abc", Duration::from_secs(60), true);
        assert_eq!(
            value.to_str().ok(),
            Some("paymirror_console=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=60; Secure")
        );
    }

    #[test]
    fn secrets_are_long_and_fresh() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
