//! Payments: search by id, filter by kind, status and sync state, page through them;
//! one payment's document, status timeline, latest callbacks and sync state, its
//! older callbacks page by page, and its "refresh now" action.

use std::str::FromStr;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{bad_request, ConsoleError};
use super::layout::{page, payment_href, status, when, Nav};
use super::session::Session;
use super::{csrf, payment_page};
use crate::domain::JobState;
use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::http::AppState;
use crate::queue::{enqueue_syncs, Priority};
use crate::store::{self, CallbackPosition, PaymentRow, Search, Towards};

/// Callbacks a payment's page shows, the latest; older ones are a page away.
const LATEST_CALLBACKS: i64 = 20;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sync: String,
    #[serde(default)]
    before: String,
}

/// Parses the filter form; anything it cannot mean is a 400 that says which field.
fn parse_search(query: &ListQuery, limit: i64) -> Result<Search, ConsoleError> {
    let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
    let id_prefix = given(&query.q)
        .map(|q| {
            word(&q, PaymentId::MAX_LEN, b"_-")
                .then_some(q)
                .ok_or_else(|| {
                    bad_request("search by id: an id has only letters, digits, `_` and `-`")
                })
        })
        .transpose()?;
    let kind = given(&query.kind)
        .map(|k| PaymentKind::from_str(&k))
        .transpose()
        .map_err(|_| bad_request("kind: expected payin or payout"))?;
    // Any status the platform may invent is searchable; only its shape is checked.
    let status = given(&query.status)
        .map(|s| {
            word(&s, 40, b"_")
                .then(|| PaymentStatus::parse(&s.to_ascii_uppercase()))
                .ok_or_else(|| bad_request("status: expected a status such as SUCCESS"))
        })
        .transpose()?;
    let sync_state = given(&query.sync)
        .map(|s| JobState::from_str(&s))
        .transpose()
        .map_err(|_| bad_request("sync: expected idle, pending, running or dead"))?;
    let before = given(&query.before)
        .map(|b| {
            b.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad_request("before: not a page this console linked to"))
        })
        .transpose()?;
    Ok(Search {
        id_prefix,
        kind,
        status,
        sync_state,
        before,
        limit,
    })
}

/// `GET /console/payments`: a page of payments, the latest change first.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let limit = i64::from(state.console.settings.page_size);
    let search = parse_search(&query, limit)?;
    let rows = store::search_payments(&state.pool, &session.merchant, &search).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.position))
        .flatten();
    let body = html! {
        (filter_form(&query))
        section.panel {
            table #payments {
                thead { tr { th { "Kind" } th { "Id" } th { "Status" } th { "Amount" } th { "Sync" } th { "Changed" } } }
                tbody {
                    @for row in &rows { (payment_row(row)) }
                    @if rows.is_empty() { tr.empty { td colspan="6" .muted { "No payment matches." } } }
                }
            }
            @if let Some(position) = next {
                p.pager {
                    a #next-page href={ "/console/payments?q=" (query.q.trim()) "&kind=" (query.kind.trim())
                        "&status=" (query.status.trim()) "&sync=" (query.sync.trim()) "&before=" (position) } { "Older changes →" }
                }
            }
        }
    };
    Ok(page("Payments", Nav::Payments, &session, body).into_response())
}

/// Returns whether `text` is at most `max` ASCII letters, digits and `extra` bytes.
fn word(text: &str, max: usize, extra: &[u8]) -> bool {
    text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn filter_form(query: &ListQuery) -> Markup {
    let option = |value: &str, current: &str| {
        html! { option value=(value) selected[value == current.trim()] { @if value.is_empty() { "any" } @else { (value) } } }
    };
    html! {
        form.filters method="get" action="/console/payments" {
            label { "Id starts with" input #q type="search" name="q" value=(query.q) placeholder="order id"; }
            label { "Kind" select name="kind" { @for k in ["", "payin", "payout"] { (option(k, &query.kind)) } } }
            label { "Status" select name="status" {
                @for s in ["", "PROCESSING", "SUCCESS", "FAILED", "REFUSED"] { (option(s, &query.status)) }
            } }
            label { "Sync" select name="sync" {
                @for s in ["", "idle", "pending", "running", "dead"] { (option(s, &query.sync)) }
            } }
            button #search type="submit" { "Search" }
        }
    }
}

fn payment_row(row: &PaymentRow) -> Markup {
    let sync = row.sync_state.map(JobState::as_str).unwrap_or("—");
    html! {
        tr {
            td { (row.kind) }
            td { a.payment-link href=(payment_href(row.kind, &row.id)) { (row.id) } }
            td { (status(row.status.as_ref())) }
            td { (amount(row)) }
            td class={ "sync-" (sync) } { (sync) }
            td { (when(row.updated_at)) }
        }
    }
}

fn amount(row: &PaymentRow) -> String {
    match (&row.amount, &row.currency_code) {
        (Some(a), Some(c)) => format!("{a} {c}"),
        (Some(a), None) => a.to_string(),
        _ => "—".into(),
    }
}

/// Parses `{kind}/{id}` of a payment's address.
fn parse_target(kind: &str, id: &str) -> Result<(PaymentKind, PaymentId), ConsoleError> {
    let kind = PaymentKind::from_str(kind)
        .map_err(|_| ConsoleError::NotFound("no such payment kind".into()))?;
    let id = PaymentId::parse(id).map_err(|e| bad_request(format!("invalid payment id: {e}")))?;
    Ok((kind, id))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    refreshed: Option<String>,
}

/// `GET /console/payments/{kind}/{id}`: everything paymirror knows of one payment.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, ConsoleError> {
    let (kind, id) = parse_target(&kind, &id)?;
    let merchant = &session.merchant;
    let row = find_known(&state, merchant, kind, &id).await?;
    let history = store::list_history(&state.pool, merchant, kind, &id).await?;
    let callbacks = store::list_callbacks(
        &state.pool,
        merchant,
        kind,
        &id,
        None,
        Towards::Older,
        LATEST_CALLBACKS,
    )
    .await?;
    let body = payment_page::render(
        &session,
        row,
        &history,
        &callbacks,
        query.refreshed.is_some(),
    );
    Ok(page(&format!("{kind} {id}"), Nav::Payments, &session, body).into_response())
}

/// Returns the payment, or a 404 if paymirror never heard of it.
async fn find_known(
    state: &AppState,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> Result<PaymentRow, ConsoleError> {
    store::find_payment(&state.pool, merchant, kind, id)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("no {kind} with id {id} is known")))
}

#[derive(Deserialize)]
pub struct CallbacksQuery {
    #[serde(default)]
    before: String,
}

/// `GET /console/payments/{kind}/{id}/callbacks?before=<cursor>`: a page of the
/// payment's callbacks received before the position the previous page linked to (or
/// the latest, without one), newest first, linking to the next older page.
pub async fn callbacks(
    State(state): State<AppState>,
    session: Session,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<CallbacksQuery>,
) -> Result<Response, ConsoleError> {
    let (kind, id) = parse_target(&kind, &id)?;
    let before = Some(query.before.trim())
        .filter(|b| !b.is_empty())
        .map(|b| {
            CallbackPosition::from_cursor(b)
                .ok_or_else(|| bad_request("before: not a page this console linked to"))
        })
        .transpose()?;
    find_known(&state, &session.merchant, kind, &id).await?;
    let limit = i64::from(state.console.settings.page_size);
    let callbacks = store::list_callbacks(
        &state.pool,
        &session.merchant,
        kind,
        &id,
        before,
        Towards::Older,
        limit,
    )
    .await?;
    let href = payment_href(kind, &id);
    let body = html! {
        p { a #back href=(href) { "← " (kind) " " (id) } }
        (payment_page::callbacks_panel(&href, "Older callbacks received", &callbacks))
    };
    let title = format!("Callbacks of {kind} {id}");
    Ok(page(&title, Nav::Payments, &session, body).into_response())
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/payments/{kind}/{id}/refresh` (write): schedules a sync now, as the
/// API's refresh does, and shows the payment again.
pub async fn refresh(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ConsoleError> {
    csrf::check(&headers, &session.csrf, &form.csrf)?;
    session.require_write()?;
    let (kind, id) = parse_target(&kind, &id)?;
    schedule_sync(&state, &session.merchant, kind, &id).await?;
    tracing::info!(account = %session.account, %kind, %id, "sync scheduled from the console");
    Ok(Redirect::to(&format!("{}?refreshed=1", payment_href(kind, &id))).into_response())
}

/// Schedules a sync of one payment now at manual priority, reviving a dead one.
pub async fn schedule_sync(
    state: &AppState,
    merchant: &str,
    kind: PaymentKind,
    id: &PaymentId,
) -> Result<(), ConsoleError> {
    let mut tx = state.pool.begin().await?;
    enqueue_syncs(&mut tx, merchant, &[(kind, id.clone())], Priority::Manual).await?;
    Ok(tx.commit().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str, kind: &str, status: &str, sync: &str, before: &str) -> ListQuery {
        ListQuery {
            q: q.into(),
            kind: kind.into(),
            status: status.into(),
            sync: sync.into(),
            before: before.into(),
        }
    }

    #[test]
    fn the_filter_form_becomes_a_search_and_says_which_field_is_wrong() {
        let search = parse_search(&query(" TST-", "payouts", "success", "dead", "42"), 50)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(search.id_prefix.as_deref(), Some("TST-"));
        assert_eq!(search.kind, Some(PaymentKind::Payout));
        assert_eq!(
            search.status.as_ref().map(PaymentStatus::as_str),
            Some("SUCCESS")
        );
        assert_eq!(search.sync_state, Some(JobState::Dead));
        assert_eq!(search.before, Some(42));
        let empty = parse_search(&ListQuery::default(), 50).unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.id_prefix.is_none() && empty.kind.is_none() && empty.before.is_none());
        for (bad, field) in [
            (query("a b", "", "", "", ""), "search by id"),
            (query("", "card", "", "", ""), "kind"),
            (query("", "", "<b>", "", ""), "status"),
            (query("", "", "", "asleep", ""), "sync"),
            (query("", "", "", "", "-3"), "before"),
        ] {
            let message = parse_search(&bad, 50).err().map(|e| e.to_string());
            assert!(message.is_some_and(|m| m.starts_with(field)), "{field}");
        }
    }
}
