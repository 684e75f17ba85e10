//! JSON answers serialised into a buffer sized up front.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;

/// Bytes to reserve per payment document of a page: most are under 1 KiB.
pub const DOCUMENT_BYTES: usize = 1024;

/// A JSON answer with room for `.1` bytes reserved before serialising: `axum::Json`
/// starts at 128 bytes and grows by copying, about ten times for a page of 100
/// payments (some 60 KiB).
pub struct SizedJson<T>(pub T, pub usize);

impl<T: Serialize> IntoResponse for SizedJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(self.1);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(e.into()).into_response(),
        }
    }
}

/// A JSON answer already written out (stored documents spliced together).
pub struct RawJson(pub Vec<u8>);

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}
