//! The one place that renders error answers: `{"name", "message", "code", "status"}` (SPEC §2).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tokens::Permission;

/// Every error an HTTP handler can answer with.
///
/// Internal errors are logged with their cause chain and answered with an opaque message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token lacks the `{0}` permission")]
    Forbidden(Permission),
    #[error("{0}")]
    NotFound(String),
    #[error("the service is temporarily unavailable, retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // A lost connection is worth retrying: the next one is pinged first (db::needs_ping).
        if crate::db::note_failure(&e) {
            return ApiError::Unavailable(e.into());
        }
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => ApiError::Unavailable(e.into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %format_args!("{cause:#}"), "answering 503")
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %format_args!("{cause:#}"), "answering 500")
            }
            _ => {}
        }
        error_response(self.status(), self.to_string())
    }
}

/// Every error answer's body (SPEC §2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The HTTP reason phrase, e.g. `Not Found`.
    name: &'static str,
    /// What went wrong, never internals.
    message: String,
    /// Always 0.
    code: i32,
    /// The HTTP status again.
    status: u16,
}

/// The error answers every `/v1` route may give, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ErrorAnswers {
    /// A parameter or the body is invalid.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the permission (`write` for POST).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Unknown payment or route.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The database is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Renders the pinned error body for `status` with `message`.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        name: status.canonical_reason().unwrap_or("Error"),
        message: message.into(),
        code: 0,
        status: status.as_u16(),
    };
    (status, axum::Json(body)).into_response()
}

/// Rewrites any error answer that did not come from [`ApiError`] (axum's own 404/405,
/// tower-http's 413 and 408) into the pinned body, so every route answers alike.
pub async fn render_foreign_errors(request: Request, next: Next) -> Response {
    render_foreign(next.run(request).await)
}

/// [`render_foreign_errors`] on an answer already made.
pub fn render_foreign(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        return error_response(status, default_message(status));
    }
    response
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this route",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected a JSON body",
        s if s.is_server_error() => "the service failed to answer",
        _ => "the request was not accepted",
    }
}

/// When the body of a request must have arrived (read by
/// [`RawBody`](crate::http::error::RawBody), which answers 408 past it).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// The request body as bytes, whose rejections answer in the pinned error body: 413 over
/// the route's limit, 408 when the client stalls longer than `server.body_read_timeout_ms`
/// between two pieces of the body or has not sent it all by its [`BodyDeadline`], 400
/// when it breaks off.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let deadline = req.extensions().get::<BodyDeadline>().copied();
        let read = Bytes::from_request(req, state);
        let read = match deadline {
            Some(BodyDeadline(at)) => match tokio::time::timeout_at(at, read).await {
                Ok(read) => read,
                Err(_) => {
                    return Err(error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        "the request body did not arrive in time",
                    ))
                }
            },
            None => read.await,
        };
        read.map(RawBody).map_err(reject_body)
    }
}

fn reject_body(rejection: BytesRejection) -> Response {
    if crate::http::stall::stalled(&rejection) {
        return error_response(
            StatusCode::REQUEST_TIMEOUT,
            "the request body arrived too slowly",
        );
    }
    error_response(rejection.status(), rejection.body_text())
}

/// `axum::extract::Path` whose rejections answer in the pinned error body.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|r: PathRejection| error_response(r.status(), r.body_text()))
    }
}

/// `axum::extract::Query` whose rejections answer in the pinned error body.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|r: QueryRejection| error_response(r.status(), r.body_text()))
    }
}
