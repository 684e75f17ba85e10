//! The overview: the queue by state, the oldest due sync, dead syncs, the platform
//! budget and its outage or pause, the last 24 hours per minute, and the live tail.

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use maud::{html, Markup};

use super::chart::{line_chart, Series};
use super::error::ConsoleError;
use super::layout::{duration, page, when, Nav};
use super::session::Session;
use super::tail::{tail_panel, TAIL_ROWS};
use crate::domain::JobState;
use crate::http::AppState;
use crate::ops::{list_minutes, sample_minute, Minute};
use crate::platform::{budget_state, WINDOW};
use crate::queue::{queue_depth, QueueDepth};
use crate::store::latest_changes;

/// Minutes the charts cover.
const CHART_MINUTES: usize = 24 * 60;

/// Renders the overview for a signed-in operator.
pub async fn render(state: &AppState, session: &Session) -> Result<Response, ConsoleError> {
    let merchant = &session.merchant;
    // This replica's counts are shown at once; other replicas' within their flush interval.
    if let Err(e) = state.console.tally.flush(&state.pool).await {
        tracing::warn!(error = %e, "could not record the console's counts before the overview");
    }
    let retention = state.console.settings.stats_retention;
    if let Err(e) = sample_minute(&state.pool, merchant, retention).await {
        tracing::warn!(error = %e, "could not sample the queue depth for the console");
    }
    let depth = queue_depth(&state.pool, merchant).await?;
    let budget = if state.console.shared_budget {
        budget_state(&state.pool, merchant, WINDOW).await?
    } else {
        None
    };
    let now = Utc::now();
    let end = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let start = end - TimeDelta::minutes(CHART_MINUTES as i64 - 1);
    let minutes = list_minutes(&state.pool, merchant, start).await?;
    let changes = latest_changes(&state.pool, merchant, TAIL_ROWS).await?;
    let in_minute = |at: DateTime<Utc>| {
        minutes
            .iter()
            .find(|m| m.minute == at)
            .map_or((0, 0), |m| (m.platform_requests, m.platform_throttled))
    };
    let own = state.console.platform(merchant);
    let platform = PlatformFigures {
        last_minute: in_minute(end - TimeDelta::minutes(1)),
        this_minute: in_minute(end),
        max_rps: own.map_or(0, |p| p.max_rps),
        in_window: budget.as_ref().map(|b| b.counted),
        paused_until: budget.and_then(|b| b.paused_until),
        outage: own.is_some_and(|p| p.client.in_outage()),
    };
    let body = html! {
        (queue_cards(&depth))
        (platform_cards(&platform))
        section.panel { (charts(&minutes, start)) }
        (tail_panel(&changes))
    };
    Ok(page("Overview", Nav::Overview, session, body).into_response())
}

fn count(depth: &QueueDepth, state: JobState) -> i64 {
    depth
        .by_state
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |(_, n)| *n)
}

fn queue_cards(depth: &QueueDepth) -> Markup {
    let dead = count(depth, JobState::Dead);
    html! {
        div.cards #queue {
            div.card { div.label { "Pending syncs" } div.value #pending { (count(depth, JobState::Pending)) } }
            div.card { div.label { "Running syncs" } div.value #running { (count(depth, JobState::Running)) } }
            div.card.alert[dead > 0] {
                div.label { "Dead syncs" }
                div.value #dead { (dead) }
                div.note { a href="/console/dead-syncs" { "see and retry" } }
            }
            div.card {
                div.label { "Oldest due sync" }
                div.value #oldest-due {
                    @if depth.oldest_due_secs > 0.0 { (duration(depth.oldest_due_secs)) " late" } @else { "none due" }
                }
                div.note { a href="/console/payments?sync=pending" { "pending payments" } }
            }
        }
    }
}

/// Requests and 429s of every replica: the last full minute, and this one so far.
struct PlatformFigures {
    last_minute: (i64, i64),
    this_minute: (i64, i64),
    max_rps: u32,
    in_window: Option<i32>,
    paused_until: Option<DateTime<Utc>>,
    outage: bool,
}

fn platform_cards(p: &PlatformFigures) -> Markup {
    let (requests, throttled) = p.last_minute;
    let (requests_now, throttled_now) = p.this_minute;
    let rate = requests as f64 / 60.0;
    html! {
        div.cards #platform {
            div.card {
                div.label { "Platform requests, last minute" }
                div.value #platform-requests { (requests) }
                div.note { (format!("{rate:.1}")) "/s of max_rps " (p.max_rps) " · " (requests_now) " so far this minute" }
            }
            div.card.alert[throttled > 0] {
                div.label { "429s, last minute" }
                div.value #platform-throttled { (throttled) }
                div.note { (throttled_now) " so far this minute" }
            }
            @if let Some(n) = p.in_window {
                div.card {
                    div.label { "Budget in use now" }
                    div.value { (n) " / " (p.max_rps) }
                    div.note { "requests in the shared 1 s window" }
                }
            }
            div.card.alert[p.outage || p.paused_until.is_some()] {
                div.label { "Platform client" }
                div.value #platform-state {
                    @if p.outage { "outage: probing" }
                    @else if p.paused_until.is_some() { "paused" }
                    @else { "answering" }
                }
                div.note {
                    @if let Some(until) = p.paused_until { "until " (when(until)) } @else { "this replica's breaker; pauses are shared" }
                }
            }
        }
    }
}

/// The four charts: callbacks, platform fetches (and 429s), status changes, queue depth.
fn charts(minutes: &[Minute], start: DateTime<Utc>) -> Markup {
    let mut callbacks = vec![Some(0); CHART_MINUTES];
    let mut fetches = vec![Some(0); CHART_MINUTES];
    let mut throttled = vec![Some(0); CHART_MINUTES];
    let mut changes = vec![Some(0); CHART_MINUTES];
    let mut pending = vec![None; CHART_MINUTES];
    let mut dead = vec![None; CHART_MINUTES];
    for m in minutes {
        let Ok(i) = usize::try_from((m.minute - start).num_minutes()) else {
            continue;
        };
        if i >= CHART_MINUTES {
            continue;
        }
        callbacks[i] = Some(m.callbacks);
        fetches[i] = Some(m.platform_fetches);
        throttled[i] = Some(m.platform_throttled);
        changes[i] = Some(m.status_changes);
        pending[i] = m.queue_pending;
        dead[i] = m.queue_dead;
    }
    let one = |label, values| vec![Series { label, values }];
    html! {
        div.charts {
            (line_chart("callbacks", "Callbacks received per minute", &one("callbacks", callbacks), CHART_MINUTES))
            (line_chart("fetches", "Platform fetches per minute", &[
                Series { label: "fetches", values: fetches },
                Series { label: "429s", values: throttled },
            ], CHART_MINUTES))
            (line_chart("changes", "Status changes per minute", &one("changes", changes), CHART_MINUTES))
            (line_chart("queue", "Queue depth (sampled each minute)", &[
                Series { label: "pending", values: pending },
                Series { label: "dead", values: dead },
            ], CHART_MINUTES))
        }
    }
}
