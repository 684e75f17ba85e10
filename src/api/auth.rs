//! Bearer-token auth for `/v1`: either a check of its own before the handler
//! ([`require_token`]), or, on the hot reads, the token hashed here
//! ([`present_token`]) and checked by the handler: from what this replica remembers
//! of it ([`remembered`]), else by the handler's own statement, in the same round
//! trip as its read ([`admit`]).

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::ApiError;
use crate::http::AppState;
use crate::tokens::{authenticate, Permission, Presented, Ticket};

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
/// method needs.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = presented(&request)?;
    check(&state, &token, needed(request.method())).await?;
    Ok(next.run(request).await)
}

/// Answers 401 unless the request carries a well-formed bearer token, which it
/// hands on (as [`Presented`]) for the handler to check with [`admit`].
pub async fn present_token(mut request: Request, next: Next) -> Result<Response, ApiError> {
    let token = presented(&request)?;
    request.extensions_mut().insert(token);
    Ok(next.run(request).await)
}

/// Checks the token, from what this replica remembers of it or else with a statement
/// of its own: 401 if it is not active, 403 if it lacks `needed`.
pub async fn check(
    state: &AppState,
    token: &Presented,
    needed: Permission,
) -> Result<(), ApiError> {
    let permissions = match remembered(state, token) {
        Some(permissions) => permissions,
        None => {
            let ticket = state.checked_tokens.ticket();
            let permissions = authenticate(&state.pool, &state.token_use, token)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            state
                .checked_tokens
                .keep(ticket, token.hash(), &permissions);
            permissions
        }
    };
    permit(&permissions, needed)
}

/// The token's permissions if this replica found it active lately and heard of no
/// change since ([`CheckedTokens`](crate::tokens::CheckedTokens)), its use noted;
/// `None`: the token must be read from the database.
pub fn remembered(state: &AppState, token: &Presented) -> Option<Vec<Permission>> {
    let permissions = state.checked_tokens.get(token.hash())?;
    token.grant(&state.token_use, Some(permissions))
}

/// Checks a token's permissions, remembered or read with
/// [`permissions_of`](crate::tokens::permissions_of): 401 if the token is not
/// active, 403 if it lacks `needed`. Permissions read since `ticket` was taken are
/// remembered.
pub fn admit(
    state: &AppState,
    token: &Presented,
    ticket: Ticket,
    caller: Option<Vec<Permission>>,
    needed: Permission,
) -> Result<(), ApiError> {
    let permissions = token
        .grant(&state.token_use, caller)
        .ok_or(ApiError::Unauthorized)?;
    state
        .checked_tokens
        .keep(ticket, token.hash(), &permissions);
    permit(&permissions, needed)
}

/// 403 unless one of `permissions` allows `needed`.
pub fn permit(permissions: &[Permission], needed: Permission) -> Result<(), ApiError> {
    if permissions.iter().any(|p| p.allows(&needed)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(needed))
    }
}
