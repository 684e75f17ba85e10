use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::ApiError;
use crate::app::AppState;
use crate::tokens::{authenticate, Permission};

/// Lets the request through if it carries an active token with the permission its
/// method needs: `read` (or `write`) for GET, `write` for everything else.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let permissions = authenticate(&state.pool, &state.token_use, token)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let needed = match *request.method() {
        Method::GET | Method::HEAD => Permission::Read,
        _ => Permission::Write,
    };
    if !permissions.iter().any(|p| p.allows(needed)) {
        return Err(ApiError::Forbidden(needed.as_str()));
    }
    Ok(next.run(request).await)
}
