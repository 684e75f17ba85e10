//! Cross-site request forgery defences for every console POST: the form must carry
//! the expected token (compared in constant time), and the browser's own provenance
//! headers (`Sec-Fetch-Site`, `Origin`), when sent, must say the form came from here.
//! `SameSite=Strict` cookies are a third layer, not the only one.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::error::ConsoleError;

/// Answers 403 unless `presented` equals `expected` and the request is same-origin.
/// An empty expected token never matches.
pub fn check(headers: &HeaderMap, expected: &str, presented: &str) -> Result<(), ConsoleError> {
    if !same_origin(headers) {
        return Err(ConsoleError::Forbidden(
            "this form was not sent from the console's own pages",
        ));
    }
    if !tokens_match(expected, presented) {
        return Err(ConsoleError::Forbidden(
            "the form's CSRF token is missing or wrong; reload the page and try again",
        ));
    }
    Ok(())
}

/// Compares without an early exit, so timing tells nothing of where they differ.
fn tokens_match(expected: &str, presented: &str) -> bool {
    !expected.is_empty()
        && expected.len() == presented.len()
        && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Returns false when the browser says the request came from another site:
/// `Sec-Fetch-Site` other than `same-origin`, or an `Origin` whose host is not the
/// `Host` (or `X-Forwarded-Host`) the request was sent to. Absent headers (old
/// browsers, scripts) leave the decision to the token.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" {
            return false;
        }
    }
    let served_as = text(header::HeaderName::from_static("x-forwarded-host"))
        .or(text(header::HOST))
        .and_then(|h| h.split(',').next())
        .map(str::trim);
    // Every Origin header sent must name us (a browser sends one).
    headers.get_all(header::ORIGIN).iter().all(|origin| {
        let host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        // "null" and other opaque origins name no host: refused.
        matches!((host, served_as), (Some(o), Some(s)) if o.eq_ignore_ascii_case(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_token_must_match_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn cross_site_provenance_is_refused() {
        let ok = headers(&[
            ("host", "10.0.0.1:8080"),
            ("origin", "http://10.0.0.1:8080"),
        ]);
        assert!(check(&ok, "t", "t").is_ok());
        assert!(check(&headers(&[]), "t", "t").is_ok());
        for bad in [
            headers(&[("host", "10.0.0.1:8080"), ("origin", "http://evil.example")]),
            headers(&[("host", "10.0.0.1:8080"), ("origin", "null")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(check(&bad, "t", "t").is_err(), "{bad:?}");
        }
        let proxied = headers(&[
            ("host", "paymirror:8080"),
            ("x-forwarded-host", "ops.example.com"),
            ("origin", "https://ops.example.com"),
        ]);
        assert!(check(&proxied, "t", "t").is_ok());
    }
}
