//! What the demo observes: the mirror compared with the simulator, and the
//! summary a person reads at the end.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use sqlx::PgPool;

use crate::domain::{PaymentId, PaymentKind, PaymentStatus};
use crate::simulator::{SimStats, Simulator};

/// The event of an ordinary status-change callback; anything else is "unknown".
const STATUS_CHANGE: &str = "payment.statusChange";

/// One payment whose stored status differs from the simulator's.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub kind: PaymentKind,
    pub id: PaymentId,
    pub simulator: PaymentStatus,
    /// `None`: not stored, or stored without a status yet.
    pub stored: Option<PaymentStatus>,
}

/// The mirror compared with the simulator at one moment.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub total: usize,
    /// Payments the simulator holds in a final status.
    pub final_in_simulator: usize,
    /// Payments whose stored status equals the simulator's final status.
    pub mirrored_final: usize,
    pub matching: usize,
    pub mismatches: Vec<Mismatch>,
}

impl Comparison {
    /// Returns true once every payment is final and stored as the simulator has it.
    pub fn consistent(&self) -> bool {
        self.final_in_simulator == self.total && self.matching == self.total
    }
}

/// Compares every simulator payment (the simulator holds only this run's) with
/// the row stored under the run's id prefix.
/// Compares every merchant's payments of the run with the simulator's.
pub async fn compare(
    pool: &PgPool,
    merchants: &[String],
    prefix: &str,
    simulator: &Simulator,
) -> sqlx::Result<Comparison> {
    let mut all = Comparison::default();
    for merchant in merchants {
        let one = compare_one(pool, merchant, prefix, simulator).await?;
        all.total += one.total;
        all.final_in_simulator += one.final_in_simulator;
        all.mirrored_final += one.mirrored_final;
        all.matching += one.matching;
        all.mismatches.extend(one.mismatches);
    }
    Ok(all)
}

async fn compare_one(
    pool: &PgPool,
    merchant_code: &str,
    prefix: &str,
    simulator: &Simulator,
) -> sqlx::Result<Comparison> {
    let rows: Vec<(PaymentKind, PaymentId, Option<PaymentStatus>)> = sqlx::query_as(
        "select kind, id, status from payments where merchant_code = $1 and id like $2",
    )
    .bind(merchant_code)
    .bind(format!("{prefix}-%"))
    .fetch_all(pool)
    .await?;
    let stored: HashMap<(PaymentKind, PaymentId), Option<PaymentStatus>> = rows
        .into_iter()
        .map(|(kind, id, status)| ((kind, id), status))
        .collect();
    let mut comparison = Comparison::default();
    for (kind, id, status) in simulator.payments_as(merchant_code) {
        // The simulator speaks the platform's text; parsed, it compares as the mirror's rows do.
        let status = PaymentStatus::parse(&status);
        let key = (kind, id);
        let mirrored = stored.get(&key).cloned().flatten();
        let is_final = status.is_final();
        comparison.total += 1;
        comparison.final_in_simulator += usize::from(is_final);
        if mirrored.as_ref() == Some(&status) {
            comparison.matching += 1;
            comparison.mirrored_final += usize::from(is_final);
        } else {
            comparison.mismatches.push(Mismatch {
                kind,
                id: key.1,
                simulator: status,
                stored: mirrored,
            });
        }
    }
    Ok(comparison)
}

/// Callbacks paymirror stored for this run: all of them, and those with an
/// event other than a status change.
pub async fn count_callbacks(
    pool: &PgPool,
    merchant_code: &str,
    prefix: &str,
) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "select count(*), count(*) filter (where body->>'event' is distinct from $3)
         from callbacks_on_record where merchant_code = $1 and payment_id like $2",
    )
    .bind(merchant_code)
    .bind(format!("{prefix}-%"))
    .bind(STATUS_CHANGE)
    .fetch_one(pool)
    .await
}

/// Everything the demo measured, for the summary and for tests.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub prefix: String,
    /// Payments the demo meant to create; fewer exist if it timed out while creating them.
    pub planned: usize,
    /// Payments created on the simulator, by kind.
    pub payins: usize,
    pub payouts: usize,
    /// The simulator's status of each payment at the end, counted.
    pub by_status: BTreeMap<String, usize>,
    pub callbacks_received: i64,
    /// Received callbacks with an event other than `payment.statusChange`.
    pub unknown_event_callbacks: i64,
    /// Status-change callbacks beyond one per status change (duplicates, redeliveries).
    pub repeated_callbacks: i64,
    pub simulator: SimStats,
    /// From the simulator's last callback to the first check that found everything consistent.
    pub last_callback_to_consistent: Option<Duration>,
    pub comparison: Comparison,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl DemoReport {
    pub fn payments(&self) -> usize {
        self.payins + self.payouts
    }

    /// Returns true if every planned payment was created and its stored status
    /// equals the simulator's.
    pub fn all_match(&self) -> bool {
        self.payments() == self.planned
            && self.comparison.matching == self.planned
            && self.comparison.mismatches.is_empty()
    }
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.simulator;
        let throttled = s.by_status.get(&429).copied().unwrap_or(0);
        let mut by_count: Vec<_> = self.by_status.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let statuses: Vec<String> = by_count
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        writeln!(f, "paymirror demo — summary (run {})", self.prefix)?;
        let (payins, payouts) = (self.payins, self.payouts);
        let total = self.payments();
        write!(
            f,
            "  payments            {total} ({payins} payins, {payouts} payouts)"
        )?;
        if total < self.planned {
            write!(
                f,
                " — only {total} of {} planned were created",
                self.planned
            )?;
        }
        writeln!(f)?;
        writeln!(f, "  by status           {}", statuses.join(" · "))?;
        writeln!(
            f,
            "  callbacks received  {} (duplicates {}, unknown events {}; simulator sent {})",
            self.callbacks_received,
            self.repeated_callbacks,
            self.unknown_event_callbacks,
            s.callbacks_sent
        )?;
        writeln!(
            f,
            "  platform requests   {} (tokens {}, 429s {throttled}, peak {} in one second)",
            s.requests, s.tokens_issued, s.peak_requests_per_second
        )?;
        for (merchant, m) in &s.per_merchant {
            writeln!(
                f,
                "    merchant {merchant:<14} {} requests (tokens {}, 429s {}, peak {} in one second)",
                m.requests,
                m.tokens_issued,
                m.throttled_by_window + m.throttled_injected,
                m.peak_requests_per_second
            )?;
        }
        match self.last_callback_to_consistent {
            Some(d) => writeln!(f, "  last callback → consistent   {:.2} s", d.as_secs_f64())?,
            None => writeln!(f, "  last callback → consistent   never (not consistent)")?,
        }
        writeln!(
            f,
            "  wall time           {:.1} s",
            self.elapsed.as_secs_f64()
        )?;
        let verdict = if self.all_match() {
            "✔ all match"
        } else if self.timed_out {
            "✘ timed out with mismatches"
        } else {
            "✘ mismatches"
        };
        write!(
            f,
            "  stored == simulator  {}/{total}  {verdict}",
            self.comparison.matching
        )?;
        for m in self.comparison.mismatches.iter().take(10) {
            let stored = m.stored.as_ref().map_or("(none)", PaymentStatus::as_str);
            write!(
                f,
                "\n    {} {}: simulator {}, stored {stored}",
                m.kind, m.id, m.simulator
            )?;
        }
        if self.comparison.mismatches.len() > 10 {
            write!(
                f,
                "\n    … and {} more",
                self.comparison.mismatches.len() - 10
            )?;
        }
        Ok(())
    }
}
