//! The console's error answers: the pinned JSON error body (SPEC §2), like every route.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::{error_response, ApiError};

/// Every error a console handler can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A form field or query parameter that cannot mean anything: says which.
    #[error("{0}")]
    BadRequest(String),
    /// A forged or cross-site form, or a read session trying to act.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// Database trouble, answered as the API does (503 or an opaque, logged 500).
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for ConsoleError {
    fn from(e: sqlx::Error) -> Self {
        ConsoleError::Api(ApiError::from(e))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::BadRequest(m) => error_response(StatusCode::BAD_REQUEST, m),
            ConsoleError::Forbidden(m) => error_response(StatusCode::FORBIDDEN, m),
            ConsoleError::NotFound(m) => error_response(StatusCode::NOT_FOUND, m),
            ConsoleError::Api(e) => e.into_response(),
        }
    }
}

/// Returns a 400 saying what is wrong with the input.
pub fn bad_request(message: impl Into<String>) -> ConsoleError {
    ConsoleError::BadRequest(message.into())
}
