//! Dead syncs: the list with their last errors, "retry" on each row and "retry all
//! since…" (write). Both reuse what the API does: a per-row retry schedules a sync
//! like a refresh, the bulk one is `queue::retry_dead_syncs`.

use std::str::FromStr;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::csrf;
use super::error::{bad_request, ConsoleError};
use super::layout::payment_href;
use super::layout::{csrf_field, page, when, Nav};
use super::payments::schedule_sync;
use super::session::Session;
use crate::domain::{PaymentId, PaymentKind};
use crate::http::AppState;
use crate::queue::{list_dead_syncs, retry_dead_syncs};

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    retried: Option<u64>,
}

/// `GET /console/dead-syncs`: the oldest deaths first, with their last errors.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let limit = i64::from(state.console.settings.page_size);
    let dead = list_dead_syncs(&state.pool, &session.merchant, None, limit).await?;
    let writer = session.can_write();
    let body = html! {
        @if let Some(n) = query.retried {
            p.notice #retried { (n) " dead " (if n == 1 { "sync is" } else { "syncs are" }) " pending again." }
        }
        @if writer {
            section.panel {
                form.filters method="post" action="/console/dead-syncs/retry-all" {
                    (csrf_field(&session))
                    label { "Retry all that died since (UTC; empty: all)"
                        input #since type="datetime-local" name="since" step="1"; }
                    button.danger #retry-all type="submit" { "Retry all since…" }
                }
            }
        }
        section.panel {
            table #dead-syncs {
                thead { tr {
                    th { "Kind" } th { "Id" } th { "Attempts" } th { "Failing since" } th { "Dead since" } th { "Last error" }
                    @if writer { th {} }
                } }
                tbody {
                    @for sync in &dead {
                        tr data-id=(sync.id) {
                            td { (sync.kind) }
                            td { a href=(payment_href(sync.kind, &sync.id)) { (sync.id) } }
                            td { (sync.attempts) }
                            td { (sync.failing_since.map(when).unwrap_or_else(|| "—".into())) }
                            td { (when(sync.dead_since)) }
                            td.error { (sync.last_error.as_deref().unwrap_or("—")) }
                            @if writer {
                                td {
                                    form.inline method="post" action="/console/dead-syncs/retry" {
                                        (csrf_field(&session))
                                        input type="hidden" name="kind" value=(sync.kind);
                                        input type="hidden" name="id" value=(sync.id);
                                        button.retry type="submit" { "Retry" }
                                    }
                                }
                            }
                        }
                    }
                    @if dead.is_empty() { tr.empty { td colspan="7" .muted { "No dead syncs." } } }
                }
            }
            @if dead.len() as i64 == limit {
                p.muted { "The " (limit) " oldest are shown; retry them to see the next." }
            }
        }
    };
    Ok(page("Dead syncs", Nav::DeadSyncs, &session, body).into_response())
}

#[derive(Deserialize)]
pub struct RetryOneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
}

/// `POST /console/dead-syncs/retry` (write): schedules one payment's sync now.
pub async fn retry_one(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<RetryOneForm>,
) -> Result<Response, ConsoleError> {
    csrf::check(&headers, &session.csrf, &form.csrf)?;
    session.require_write()?;
    let kind = PaymentKind::from_str(&form.kind)
        .map_err(|_| bad_request("kind: expected payin or payout"))?;
    let id =
        PaymentId::parse(&form.id).map_err(|e| bad_request(format!("invalid payment id: {e}")))?;
    schedule_sync(&state, &session.merchant, kind, &id).await?;
    tracing::info!(account = %session.account, %kind, %id, "dead sync retried from the console");
    Ok(Redirect::to("/console/dead-syncs?retried=1").into_response())
}

#[derive(Deserialize)]
pub struct RetryAllForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    since: String,
}

/// `POST /console/dead-syncs/retry-all` (write): every dead sync, or those that died
/// at or after `since`, pending again.
pub async fn retry_all(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<RetryAllForm>,
) -> Result<Response, ConsoleError> {
    csrf::check(&headers, &session.csrf, &form.csrf)?;
    session.require_write()?;
    let since = parse_since(&form.since)?;
    let retried = retry_dead_syncs(&state.pool, &session.merchant, since).await?;
    tracing::info!(account = %session.account, retried, "dead syncs retried from the console");
    Ok(Redirect::to(&format!("/console/dead-syncs?retried={retried}")).into_response())
}

/// Reads the form's time: empty is "all", else RFC 3339 or a `datetime-local` in UTC.
fn parse_since(raw: &str) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
    .map(|naive| Some(naive.and_utc()))
    .ok_or_else(|| bad_request("since: expected a date and time such as 2026-11-22T09:30"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_the_browser_picker_and_rfc_3339() {
        assert_eq!(parse_since(" ").ok(), Some(None));
        let picked = parse_since("2026-11-22T09:30").ok().flatten();
        assert_eq!(
            picked.map(|t| t.to_rfc3339()),
            Some("2026-11-22T09:30:00+00:00".into())
        );
        let exact = parse_since("2026-11-22T10:30:00+01:00").ok().flatten();
        assert_eq!(exact, picked);
        assert!(parse_since("last week").is_err());
    }
}
