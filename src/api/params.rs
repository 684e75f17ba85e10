//! Query parameters shared by the list routes, parsed once with clear 400s.

use chrono::{DateTime, Utc};

use super::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Returns the page size: `DEFAULT_LIMIT` when absent; one outside 1–`MAX_LIMIT` is
/// refused, as the OpenAPI document says (not silently capped).
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::parse::<i64>) {
        None => Ok(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}"
        ))),
    }
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
        for bad in ["0", "-1", "ten", "", "1001", "5000"] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_are_rfc_3339() {
        assert!(parse_time(Some("2026-11-21T10:00:00+01:00"), "since").is_ok_and(|t| t.is_some()));
        assert!(parse_time(None, "since").is_ok_and(|t| t.is_none()));
        assert!(parse_time(Some("yesterday"), "since").is_err());
    }
}
