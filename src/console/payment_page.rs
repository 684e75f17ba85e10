//! One payment's page: its sync state with the last error and the "refresh now"
//! action, its status history as a timeline, the latest callbacks received verbatim
//! (older ones a page away), and its document. Documents and callbacks are hostile
//! input: all of it is escaped.

use maud::{html, Markup};
use serde_json::value::RawValue;

use super::layout::{csrf_field, payment_href, status, when};
use super::session::Session;
use crate::domain::JobState;
use crate::http::PaymentDocument;
use crate::store::{CallbackPage, CallbackRecord, HistoryEntry, PaymentRow};

/// Returns the body of a payment's page.
pub fn render(
    session: &Session,
    row: PaymentRow,
    history: &[HistoryEntry],
    callbacks: &CallbackPage<CallbackRecord>,
    refreshed: bool,
) -> Markup {
    let href = payment_href(row.kind, &row.id);
    let sync = row.sync_state.map(JobState::as_str).unwrap_or("—");
    html! {
        @if refreshed {
            p.notice #refreshed { "A sync is scheduled: it runs as soon as the platform's rate limit allows." }
        }
        div.split {
            section.panel #summary {
                h2 { "Sync and status" }
                dl.facts {
                    dt { "Status" } dd #status { (status(row.status.as_ref())) @if row.is_final { " (final)" } }
                    dt { "Sync state" } dd #sync-state class={ "sync-" (sync) } { (sync) }
                    dt { "Attempts" } dd #attempts { (row.sync_attempts.unwrap_or(0)) }
                    dt { "Last error" } dd #last-error .error { (row.sync_last_error.as_deref().unwrap_or("—")) }
                    dt { "First seen" } dd { (when(row.first_seen_at)) }
                    dt { "Last synced" } dd { (row.synced_at.map(when).unwrap_or_else(|| "never".into())) }
                }
                @if session.can_write() {
                    form method="post" action={ (href) "/refresh" } {
                        (csrf_field(session))
                        p { button #refresh type="submit" { "Refresh now" } }
                    }
                }
            }
            section.panel {
                h2 { "Status history" }
                @if history.is_empty() {
                    p.muted { "No status observed yet." }
                } @else {
                    ol.timeline #history {
                        @for entry in history {
                            li { (status(Some(&entry.status))) time { (when(entry.observed_at)) } }
                        }
                    }
                }
            }
        }
        (callbacks_panel(&href, &latest_heading(callbacks), callbacks))
        section.panel {
            h2 { "Document (as GET /v1/" (row.kind.plural()) "/" (row.id) " serves it)" }
            pre #document { (pretty_document(row)) }
        }
    }
}

/// The heading over the latest callbacks: all of them, or the latest of more.
fn latest_heading(callbacks: &CallbackPage<CallbackRecord>) -> String {
    match callbacks.next {
        None => format!("Callbacks received ({})", callbacks.items.len()),
        Some(_) => format!("The latest {} callbacks received", callbacks.items.len()),
    }
}

/// Returns a panel of the payment (at `href`)'s callbacks, newest first, with a link
/// to the page of older ones when there are more.
pub fn callbacks_panel(
    href: &str,
    heading: &str,
    callbacks: &CallbackPage<CallbackRecord>,
) -> Markup {
    html! {
        section.panel #callbacks {
            h2 { (heading) }
            @if callbacks.items.is_empty() {
                p.muted { "None on record (they are kept for inbox.retention_days)." }
            }
            @for callback in &callbacks.items {
                div.callback {
                    p { (when(callback.received_at)) " · " span.muted { (callback.outcome) } }
                    pre { (pretty_body(&callback.body)) }
                }
            }
            @if let Some(older) = callbacks.next {
                p.pager {
                    a #older-callbacks href={ (href) "/callbacks?before=" (older.cursor()) } { "Older callbacks →" }
                }
            }
        }
    }
}

/// Returns a callback's body pretty-printed (as stored, should it not parse).
fn pretty_body(body: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(body.get())
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| body.get().to_owned())
}

/// Returns the payment's API document, pretty-printed.
pub fn pretty_document(row: PaymentRow) -> String {
    let document = PaymentDocument::from(row);
    serde_json::to_string(&document)
        .ok()
        .and_then(|compact| serde_json::from_str::<serde_json::Value>(&compact).ok())
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| "the document could not be shown".into())
}
