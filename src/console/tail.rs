//! The change-feed tail: the newest status changes, then each new one as it commits,
//! pushed as server-sent events (woken by [`ChangeSignal`](crate::store::ChangeSignal),
//! like `GET /v1/changes?wait=`) to a table the page's script keeps on top.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{bad_request, ConsoleError};
use super::layout::payment_href;
use super::layout::{page, status, when, Nav};
use super::session::{is_valid, Session};
use crate::http::AppState;
use crate::store::{latest_changes, list_changes, Change};

/// Changes the overview's tail starts with.
pub const TAIL_ROWS: i64 = 10;
/// Changes the change-feed page starts with.
const PAGE_ROWS: i64 = 50;
/// Changes read per query while catching up.
const BATCH: i64 = 100;
/// A quiet stream re-checks its session this often: a revoked token ends it.
const RECHECK: Duration = Duration::from_secs(20);

/// Returns the tail panel: `changes` newest first, following the feed after them.
pub fn tail_panel(changes: &[Change]) -> Markup {
    let after = changes.iter().map(|c| c.position).max().unwrap_or(0);
    html! {
        section.panel #tail {
            h2 { "Latest status changes " span.muted data-stream-state { "(connecting…)" } }
            table #changes data-stream={ "/console/changes/stream?after=" (after) } {
                thead { tr { th { "Observed" } th { "Kind" } th { "Id" } th { "From" } th { "To" } } }
                tbody {
                    @for change in changes {
                        tr {
                            td { (when(change.observed_at)) }
                            td { (change.kind) }
                            td { a href=(payment_href(change.kind, &change.id)) { (change.id) } }
                            td {
                                @match &change.previous_status {
                                    Some(previous) => (status(Some(previous))),
                                    None => span.muted { "—" },
                                }
                            }
                            td { (status(Some(&change.status))) }
                        }
                    }
                    @if changes.is_empty() { tr.empty { td colspan="5" .muted { "No status change yet." } } }
                }
            }
        }
    }
}

/// `GET /console/changes`: the newest changes, updating live.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, ConsoleError> {
    let changes = latest_changes(&state.pool, &session.merchant, PAGE_ROWS).await?;
    Ok(page("Change feed", Nav::Changes, &session, tail_panel(&changes)).into_response())
}

#[derive(Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    after: Option<String>,
}

/// `GET /console/changes/stream?after=<position>`: every change after the position as
/// an event named `change` (id: its position, so a reconnecting `EventSource` resumes
/// with `Last-Event-ID`). Ends when the session does or the process stops.
pub async fn stream(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ConsoleError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let after = match resume.or(query.after) {
        None => 0,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_request("after: not a position this console gave"))?,
    };
    let tail = Tail {
        state,
        session,
        after,
        ready: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let change = tail.next_change().await?;
        let event = Event::default()
            .event("change")
            .id(change.position.to_string())
            .json_data(&change)
            .unwrap_or_else(|_| Event::default().comment("unserialisable change"));
        Some((Ok(event), tail))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// One client's position in the feed.
struct Tail {
    state: AppState,
    session: Session,
    after: i64,
    ready: VecDeque<Change>,
}

impl Tail {
    /// Returns the next change, waiting for one to commit; `None` ends the stream.
    async fn next_change(&mut self) -> Option<Change> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Some(change);
            }
            let signal = self.state.changes.clone();
            // Enabled before the query, so a change committing in between still wakes us.
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !is_valid(&self.state.pool, &self.session)
                .await
                .unwrap_or(false)
            {
                return None;
            }
            let pool = &self.state.pool;
            match list_changes(pool, &[&*self.session.merchant], self.after, BATCH).await {
                Ok(changes) if !changes.is_empty() => {
                    self.after = changes
                        .iter()
                        .map(|c| c.position)
                        .max()
                        .unwrap_or(self.after);
                    self.ready.extend(changes);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "console tail could not read the change feed");
                    return None;
                }
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(RECHECK) => {}
                () = signal.stopping() => return None,
            }
        }
    }
}
