//! Query parameters shared by the list routes, parsed once with clear 400s.

use axum::http::HeaderValue;
use chrono::{DateTime, Utc};

use super::error::ApiError;
use crate::store::CallbackPosition;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Returns the page size: `DEFAULT_LIMIT` when absent; one outside 1–`MAX_LIMIT` is
/// refused, as the OpenAPI document says (not silently capped).
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::parse::<i64>) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(bad_limit()),
    }
}

fn bad_limit() -> ApiError {
    ApiError::BadRequest(format!(
        "limit must be a whole number from 1 to {MAX_LIMIT}"
    ))
}

/// Parses an optional `cursor` naming a callback's position (one a page of callbacks
/// gave); anything else is a 400.
pub fn parse_callback_cursor(raw: Option<&str>) -> Result<Option<CallbackPosition>, ApiError> {
    raw.map(|cursor| {
        CallbackPosition::from_cursor(cursor)
            .ok_or_else(|| ApiError::BadRequest("the cursor is not one this API returned".into()))
    })
    .transpose()
}

/// Returns the `Link` header naming the next page: `path` with the request's query
/// (`raw_query`, every parameter kept) and its `cursor` set to `cursor`.
pub fn next_page_link(
    path: &str,
    raw_query: Option<&str>,
    cursor: &str,
) -> Result<HeaderValue, ApiError> {
    let kept = form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name != "cursor");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .append_pair("cursor", cursor)
        .finish();
    HeaderValue::try_from(format!("<{path}?{query}>; rel=\"next\""))
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Parses an optional RFC 3339 time given as parameter `name`.
pub fn parse_time(raw: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_rejects_what_is_outside_its_bounds() {
        assert_eq!(parse_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(parse_limit(Some("7")).ok(), Some(7));
        assert_eq!(parse_limit(Some("1000")).ok(), Some(MAX_LIMIT));
        for bad in ["0", "-1", "1.5", "ten", "", "1001", "5000"] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_page_keeps_every_other_parameter_and_replaces_the_cursor() {
        let link = |query| {
            next_page_link("/v1/payins/A-1/callbacks", query, "cb1.1.2.3")
                .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
                .unwrap_or_default()
        };
        assert_eq!(
            link(None),
            r#"</v1/payins/A-1/callbacks?cursor=cb1.1.2.3>; rel="next""#
        );
        assert_eq!(
            link(Some("limit=5&cursor=cb0.0.1.0&merchant=M%202&%63ursor=x")),
            r#"</v1/payins/A-1/callbacks?limit=5&merchant=M+2&cursor=cb1.1.2.3>; rel="next""#
        );
    }

    #[test]
    fn times_are_rfc_3339() {
        assert!(parse_time(Some("2026-11-21T10:00:00+01:00"), "since").is_ok_and(|t| t.is_some()));
        assert!(parse_time(None, "since").is_ok_and(|t| t.is_none()));
        assert!(parse_time(Some("yesterday"), "since").is_err());
    }
}
