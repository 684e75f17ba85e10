//! The platform's error answer, `{"description"}`, as every simulated route gives it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Returns the platform's error answer: `status` with `{"description"}`.
pub fn describe(status: StatusCode, description: &str) -> Response {
    (status, Json(json!({ "description": description }))).into_response()
}
