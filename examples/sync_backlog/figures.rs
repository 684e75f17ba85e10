//! What one run measured: the simulator's figures and the timestamps paymirror
//! stored (on the database's clock).

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::PgPool;

use paymirror::simulator::SimStats;

use crate::requests::Requests;

/// Seconds from a payment's first accepted callback to the sync that stored its final status.
#[derive(Debug, Default)]
pub struct Lag {
    pub payments: i64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Returns the callback → stored lag over every payment stored with a final status.
///
/// The end is the history row of the final status, written in the same transaction
/// as the sync that first stored it: `payments.synced_at` would move on to a later
/// re-fetch of the same payment.
pub async fn measure_lag(pool: &PgPool, merchant_code: &str) -> sqlx::Result<Lag> {
    let (payments, p50, p99, max) = sqlx::query_as(
        "with first_callback as (
           select kind, payment_id, min(created_at) as at from callbacks_on_record
           where merchant_code = $1 and outcome = 'accepted'
           group by kind, payment_id
         ), stored_final as (
           select h.kind, h.payment_id, min(h.observed_at) as at
           from payment_status_history h
           join payments p on p.merchant_code = h.merchant_code and p.kind = h.kind and p.id = h.payment_id
           where h.merchant_code = $1 and p.final and h.status = p.status
           group by h.kind, h.payment_id
         ), lag as (
           select extract(epoch from s.at - c.at)::float8 as secs
           from first_callback c join stored_final s using (kind, payment_id)
         )
         select count(*), percentile_cont(0.5) within group (order by secs),
                percentile_cont(0.99) within group (order by secs), max(secs)
         from lag",
    )
    .bind(merchant_code)
    .fetch_one(pool)
    .await?;
    Ok(Lag {
        payments,
        p50,
        p99,
        max,
    })
}

/// What paymirror stored: accepted callbacks and syncs that gave up.
pub async fn count_stored(pool: &PgPool, merchant_code: &str) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "select (select count(*) from callbacks_on_record where merchant_code = $1 and outcome = 'accepted'),
                (select count(*) from sync_jobs where merchant_code = $1 and state = 'dead')",
    )
    .bind(merchant_code)
    .fetch_one(pool)
    .await
}

/// Everything one run measured.
#[derive(Debug)]
pub struct Figures {
    pub payments: usize,
    pub replicas: u32,
    pub max_rps: u32,
    /// Payments stored with the simulator's final status when the run ended.
    pub stored: usize,
    pub created_in: Duration,
    /// From the first payment's creation to the check that found all stored.
    pub wall: Duration,
    pub requests: Requests,
    pub sim: SimStats,
    pub lag: Lag,
    pub callbacks_stored: i64,
    pub dead: i64,
}

impl Figures {
    /// Returns the label and value of every line of the report, in order.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let r = &self.requests;
        let fetch_rate = per_second(r.fetches_ok, r.fetch_span);
        let request_rate = per_second(r.total, r.request_span);
        let throttled = self.sim.by_status.get(&429).copied().unwrap_or(0);
        let s = &self.sim;
        vec![
            ("fetches/s achieved", format!("{fetch_rate:.2}")),
            (
                "  fetches answered 200",
                format!(
                    "{} in {:.1} s (first→last)",
                    r.fetches_ok,
                    r.fetch_span.as_secs_f64()
                ),
            ),
            (
                "platform requests",
                format!("{} (tokens {})", r.total, r.tokens),
            ),
            (
                "  requests/s",
                format!("{request_rate:.2} (first→last request)"),
            ),
            (
                "  used of budget",
                format!("{:.1} %", 100.0 * request_rate / f64::from(self.max_rps)),
            ),
            (
                "peak in any 1 s window",
                format!(
                    "{} received · {} admitted",
                    s.peak_requests_per_second, s.peak_admitted_per_second
                ),
            ),
            (
                "429s received",
                format!(
                    "{throttled} (by the window {}, injected {})",
                    s.throttled_by_window, s.throttled_injected
                ),
            ),
            (
                "fetches not answered 200",
                describe_counts(&r.fetches_failed),
            ),
            ("callback → stored p50", secs(self.lag.p50)),
            ("callback → stored p99", secs(self.lag.p99)),
            (
                "callback → stored max",
                format!(
                    "{} (over {} payments)",
                    secs(self.lag.max),
                    self.lag.payments
                ),
            ),
            (
                "payments fetched",
                format!(
                    "{} · more than once: {}{}",
                    r.payments_fetched,
                    r.fetched_repeatedly,
                    examples(&r.repeated_examples)
                ),
            ),
            (
                "fetches per replica token",
                r.by_token
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(" · "),
            ),
            (
                "callbacks",
                format!(
                    "sent {} · delivered {} · stored {} · given up {}",
                    s.callbacks_sent,
                    s.callbacks_delivered,
                    self.callbacks_stored,
                    s.callbacks_given_up
                ),
            ),
            ("dead syncs", self.dead.to_string()),
            (
                "backlog created in",
                format!("{:.2} s", self.created_in.as_secs_f64()),
            ),
            (
                "wall time",
                format!("{:.1} s (creation → all stored)", self.wall.as_secs_f64()),
            ),
            (
                "stored == simulator",
                format!(
                    "{}/{}{}",
                    self.stored,
                    self.payments,
                    if self.complete() {
                        " ✔"
                    } else {
                        " ✘ timed out"
                    }
                ),
            ),
        ]
    }

    /// Returns true if every payment ended up stored with its final status.
    pub fn complete(&self) -> bool {
        self.stored == self.payments
    }

    pub fn title(&self) -> String {
        let plural = if self.replicas == 1 { "" } else { "s" };
        format!(
            "{} payments · {} replica{plural} sharing the budget · max_rps {}",
            self.payments, self.replicas, self.max_rps
        )
    }
}

fn per_second(count: usize, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count as f64 / span.as_secs_f64()
    }
}

/// Returns ` (A, B, …)` for a non-empty list of ids.
fn examples(ids: &[String]) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(
            " ({}{})",
            ids.join(", "),
            if ids.len() == 5 { ", …" } else { "" }
        )
    }
}

fn secs(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.2} s"))
}

fn describe_counts(counts: &BTreeMap<u16, usize>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(status, n)| format!("{status}: {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}
