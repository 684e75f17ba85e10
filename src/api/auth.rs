//! Bearer-token auth for `/v1` ([`require_token`]): the token is judged first (401,
//! 403) from what this replica remembers of it or else from its row, then the
//! merchants the request is about are resolved from `?merchant=` and the token's
//! scope, and handed to the handler as a [`Caller`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::is_valid_code;
use crate::http::ApiError;
use crate::http::AppState;
use crate::tokens::{authenticate, Grant, Permission, Presented};

/// The query parameter naming the merchants a request is about (SPEC §4).
pub const MERCHANT_PARAM: &str = "merchant";

/// Who is asking, and about which merchants: what [`require_token`] hands on.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Served by this deployment and seen by the token; never empty.
    merchants: Vec<Arc<str>>,
}

impl Caller {
    /// The one merchant a request about one payment (or one merchant's syncs) means;
    /// 400 if it named several.
    pub fn merchant(&self) -> Result<&Arc<str>, ApiError> {
        match self.merchants.as_slice() {
            [one] => Ok(one),
            _ => Err(ApiError::BadRequest(
                "this route takes one merchant code in merchant, not several".into(),
            )),
        }
    }

    /// Every merchant a list or the change feed covers.
    pub fn merchants(&self) -> &[Arc<str>] {
        &self.merchants
    }
}

/// Returns the permission a request with this method needs: `read` (or `write`)
/// for GET, `write` for everything else.
fn needed(method: &Method) -> Permission {
    match *method {
        Method::GET | Method::HEAD => Permission::Read,
        _ => Permission::Write,
    }
}

/// Returns the presented bearer token, or 401 if there is none that could be valid.
fn presented(request: &Request) -> Result<Presented, ApiError> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .and_then(Presented::parse)
        .ok_or(ApiError::Unauthorized)
}

/// Lets the request through if it carries an active token with the permission its
/// method needs, and hands on its [`Grant`] (which [`Caller`] reads).
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = presented(&request)?;
    let grant = check(&state, &token, needed(request.method())).await?;
    request.extensions_mut().insert(grant);
    Ok(next.run(request).await)
}

/// The merchants a request names (or means), resolved against the token's grant:
/// an extractor, so that a method a route does not have is a 405 before it.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let grant = parts
            .extensions
            .get::<Grant>()
            .ok_or(ApiError::Unauthorized)?;
        let merchants = scope(state, grant, parts.uri.query())?;
        Ok(Caller { merchants })
    }
}

/// Checks the token, from what this replica remembers of it or else from its row:
/// 401 if it is not active, 403 if it lacks `needed`.
pub async fn check(
    state: &AppState,
    token: &Presented,
    needed: Permission,
) -> Result<Grant, ApiError> {
    let remembered = state.checked_tokens.get(token.hash());
    let grant = match token.grant(&state.token_use, remembered) {
        Some(grant) => grant,
        None => {
            let ticket = state.checked_tokens.ticket();
            let grant = authenticate(&state.pool, &state.token_use, token)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            state.checked_tokens.keep(ticket, token.hash(), &grant);
            grant
        }
    };
    if grant.permissions.iter().any(|p| p.allows(&needed)) {
        Ok(grant)
    } else {
        Err(ApiError::Forbidden(needed))
    }
}

/// The merchants a request is about: those `?merchant=` names (comma-separated), or
/// without it the default merchant (the token's only merchant, for a token scoped to
/// one). A code not served here, or not seen by the token, is 404, as if it did not
/// exist; only configured codes are handed on, never the request's bytes.
fn scope(state: &AppState, grant: &Grant, query: Option<&str>) -> Result<Vec<Arc<str>>, ApiError> {
    let mut named: Option<String> = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == MERCHANT_PARAM {
            if named.is_some() {
                return Err(ApiError::BadRequest(
                    "merchant is given twice: name several merchants in one, separated by commas"
                        .into(),
                ));
            }
            named = Some(value.into_owned());
        }
    }
    let served = |code: &str| {
        state
            .merchants
            .get(code)
            .filter(|_| grant.sees(code))
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("no merchant {code} is served here")))
    };
    let Some(named) = named else {
        return match grant.merchants.as_deref() {
            Some([only]) => Ok(vec![served(only)?]),
            Some(scoped)
                if !scoped
                    .iter()
                    .any(|c| **c == **state.merchants.default_code()) =>
            {
                Err(ApiError::BadRequest(
                    "this token sees several merchants, not the default one: name them in merchant"
                        .into(),
                ))
            }
            _ => Ok(vec![state.merchants.default_code().clone()]),
        };
    };
    let mut merchants: Vec<Arc<str>> = Vec::new();
    for code in named.split(',') {
        if !is_valid_code(code) {
            return Err(ApiError::BadRequest(
                "merchant must be merchant codes (1-64 ASCII letters, digits, '-' or '_') separated by commas".into(),
            ));
        }
        let code = served(code)?;
        if !merchants.contains(&code) {
            merchants.push(code);
        }
    }
    Ok(merchants)
}

/// `?merchant=` as documented on every `/v1` route (read by [`require_token`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct MerchantParam {
    /// A merchant code this deployment serves; without it, the default merchant (or
    /// the token's only merchant, for a token scoped to one). Lists and the change
    /// feed take several, separated by commas. A code not served here, or not seen by
    /// the token, is 404.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64})*$")]
    merchant: Option<String>,
}
