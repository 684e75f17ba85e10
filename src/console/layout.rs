//! The page skeleton every console page shares (head, navigation, sign-out) and
//! the small pieces pages repeat: the CSRF field, times, statuses, a payment's address.

use axum::response::Html;
use chrono::{DateTime, Utc};

use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use maud::{html, Markup, DOCTYPE};

use super::assets::{SCRIPT_PATH, STYLESHEET_PATH};
use super::session::Session;

/// The navigation's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Payments,
    DeadSyncs,
    Changes,
}

const ENTRIES: [(Nav, &str, &str); 4] = [
    (Nav::Overview, "/console", "Overview"),
    (Nav::Payments, "/console/payments", "Payments"),
    (Nav::DeadSyncs, "/console/dead-syncs", "Dead syncs"),
    (Nav::Changes, "/console/changes", "Change feed"),
];

/// Returns a whole page for a signed-in operator.
pub fn page(title: &str, current: Nav, session: &Session, body: Markup) -> Html<String> {
    let access = if session.can_write() {
        "read & write"
    } else {
        "read only"
    };
    document(
        title,
        html! {
            header.top {
                span.brand { "paymirror console" }
                nav {
                    @for (nav, href, label) in ENTRIES {
                        a href=(href) class=[(nav == current).then_some("current")] { (label) }
                    }
                }
                @if session.merchants.len() > 1 {
                    form.inline #merchant-choice method="post" action="/console/merchant" {
                        (csrf_field(session))
                        label for="merchant" { "Merchant" }
                        select #merchant name="merchant" {
                            @for code in &session.merchants {
                                option value=(code) selected[*code == session.merchant] { (code) }
                            }
                        }
                        button.quiet type="submit" #show-merchant { "Show" }
                    }
                } @else {
                    span #merchant-only { (session.merchant) }
                }
                div.who {
                    span #who { (session.account) " · " (access) }
                    form.inline method="post" action="/console/sign-out" {
                        (csrf_field(session))
                        button.quiet type="submit" #sign-out { "Sign out" }
                    }
                }
            }
            main { h1 { (title) } (body) }
        },
    )
}

/// Returns a page with the head and nothing else around `body` (the sign-in form).
pub fn document(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="same-origin";
                    title { (title) " · paymirror" }
                    link rel="stylesheet" href=(STYLESHEET_PATH);
                    script src=(SCRIPT_PATH) defer {}
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

/// The hidden field that carries the session's CSRF token in every form.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Returns a time as operators read it: to the second, in UTC.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Returns a status with the class that colours it.
pub fn status(status: Option<&PaymentStatus>) -> Markup {
    match status.map(PaymentStatus::as_str) {
        Some(s) => html! { span class={ "status status-" (s.to_ascii_lowercase()) } { (s) } },
        None => html! { span.muted { "not synced yet" } },
    }
}

/// Returns seconds as a short duration: `42 s`, `7 min`, `3.5 h`.
pub fn duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// The console's address of a payment (a [`PaymentId`] is `[A-Za-z0-9_-]`: safe in a path).
pub fn payment_href(kind: PaymentKind, id: &PaymentId) -> String {
    format!("/console/payments/{kind}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0.4), "0 s");
        assert_eq!(duration(300.0), "5 min");
        assert_eq!(duration(12_600.0), "3.5 h");
    }

    #[test]
    fn statuses_are_escaped() {
        let markup = status(Some(&PaymentStatus::parse("<b>X"))).into_string();
        assert!(markup.contains("&lt;b&gt;X"), "{markup}");
    }
}
