//! The pairs: a paymirror route and its yardstick under the same load, run in
//! alternation (paymirror, yardstick, paymirror, yardstick, …) so that whatever else
//! the machine is doing falls on both alike.

use std::sync::Arc;

use sqlx::PgPool;

use crate::batches::{Batches, Source, Tally};
use crate::database::count_rows;
use crate::load::{run_wrk, Measured, Requests, Shape};
use crate::memory::{Rss, Sample};

/// A pair, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PairName {
    /// `POST /callbacks/payins` vs a naive one-INSERT-per-request receiver.
    Naive,
    /// `POST /callbacks/payins` vs a bare group-commit receiver.
    GroupCommit,
    /// `GET /v1/payins/{id}` vs one bare select by id.
    ById,
    /// `GET /v1/payins?limit=100` vs one bare select of 100 documents.
    Page,
    /// paymirror's `GET /healthz` vs a bare no-op route: the HTTP ceiling.
    Noop,
}

impl PairName {
    pub const ALL: [PairName; 5] = [
        PairName::Naive,
        PairName::GroupCommit,
        PairName::ById,
        PairName::Page,
        PairName::Noop,
    ];
}

impl std::fmt::Display for PairName {
    /// The name `--only` takes (`group-commit`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// One side of a pair: where it listens and what it is sent.
pub struct Side {
    pub who: &'static str,
    /// The process whose memory a run records (`None`: this one).
    pub pid: Option<u32>,
    pub base: String,
    pub requests: Requests,
    pub bearer: Option<String>,
    /// The table that must hold a row for every 2xx answer (ingest sides).
    pub ledger: Option<&'static str>,
    /// Where its group-commit writer's batches are counted (ingest sides that batch).
    pub batches: Option<Source>,
}

pub struct Pair {
    /// The pair as the tables show it: its name, and the database it ran on.
    pub label: String,
    pub paymirror: Side,
    pub yardstick: Side,
}

/// Where everything listens, and paymirror's API token.
pub struct Endpoints {
    pub paymirror: String,
    /// paymirror's own process, as deployed (`None`: in this process).
    pub paymirror_pid: Option<u32>,
    pub token: String,
    pub naive: String,
    pub group_commit: String,
    /// The bare group commit's count of its batches.
    pub group_commit_tally: Arc<Tally>,
    pub reads: String,
    pub noop: String,
}

const CALLBACKS: Requests = Requests::Callbacks {
    path: "/callbacks/payins",
};
const BY_ID: Requests = Requests::ById {
    prefix: "/v1/payins/P-",
};
const PAGE: Requests = Requests::Fixed {
    path: "/v1/payins?limit=100",
};

/// The pair `name`, pointed at the running apps.
pub fn pair(name: PairName, at: &Endpoints) -> Pair {
    let paymirror = |requests: Requests, bearer: bool, ledger: Option<&'static str>| Side {
        who: "paymirror",
        pid: at.paymirror_pid,
        base: at.paymirror.clone(),
        requests,
        bearer: bearer.then(|| at.token.clone()),
        ledger,
        batches: ledger.map(|_| Source::Metrics(at.paymirror.clone())),
    };
    let yardstick = |who, base: &str, requests, ledger, batches| Side {
        who,
        pid: None,
        base: base.to_owned(),
        requests,
        bearer: None,
        ledger,
        batches,
    };
    let (paymirror, yardstick) = match name {
        PairName::Naive => (
            paymirror(CALLBACKS, false, Some("callbacks_on_record")),
            yardstick(
                "naive receiver",
                &at.naive,
                CALLBACKS,
                Some("bench_naive"),
                None,
            ),
        ),
        PairName::GroupCommit => (
            paymirror(CALLBACKS, false, Some("callbacks_on_record")),
            yardstick(
                "group-commit receiver",
                &at.group_commit,
                CALLBACKS,
                Some("bench_group_commit"),
                Some(Source::Tally(at.group_commit_tally.clone())),
            ),
        ),
        PairName::ById => (
            paymirror(BY_ID, true, None),
            yardstick("bare select by id", &at.reads, BY_ID, None, None),
        ),
        PairName::Page => (
            paymirror(PAGE, true, None),
            yardstick("bare page of 100", &at.reads, PAGE, None, None),
        ),
        PairName::Noop => (
            paymirror(Requests::Fixed { path: "/healthz" }, false, None),
            yardstick(
                "bare no-op route",
                &at.noop,
                Requests::Fixed { path: "/noop" },
                None,
                None,
            ),
        ),
    };
    Pair {
        label: name.to_string(),
        paymirror,
        yardstick,
    }
}

/// Rows written during a run against the 2xx answers wrk received.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub rows: i64,
    pub answered_ok: u64,
}

impl Committed {
    /// Every 2xx had its row committed (rows may exceed it: requests still in
    /// flight when wrk stopped commit without wrk counting their answers).
    pub fn holds(&self) -> bool {
        u64::try_from(self.rows).is_ok_and(|rows| rows >= self.answered_ok)
    }
}

/// One wrk run of one side.
pub struct Run {
    pub round: u32,
    pub is_paymirror: bool,
    pub measured: Measured,
    pub rss: Rss,
    pub committed: Option<Committed>,
    /// The side's writer batches during the run (sides that batch).
    pub batches: Option<Batches>,
}

/// Runs a warm-up of each side (unreported), then `rounds` rounds of paymirror
/// followed by its yardstick.
pub async fn run_pair(
    pair: &Pair,
    pool: &PgPool,
    shape: Shape,
    rounds: u32,
    warmup: Shape,
) -> anyhow::Result<Vec<Run>> {
    if !warmup.duration.is_zero() {
        for side in [&pair.paymirror, &pair.yardstick] {
            eprintln!("  warm-up: {} {}", side.who, side.requests.describe());
            run_wrk(&side.base, &side.requests, warmup, side.bearer.as_deref()).await?;
        }
    }
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for (is_paymirror, side) in [(true, &pair.paymirror), (false, &pair.yardstick)] {
            let run = measure(side, pool, shape, round, is_paymirror).await?;
            eprintln!(
                "  round {round}: {:<22} {:>9.0} req/s, p99 {:.1} ms",
                side.who,
                run.measured.per_second(),
                run.measured.p99_us / 1000.0
            );
            runs.push(run);
        }
    }
    Ok(runs)
}

/// One run of one side, with its memory and, for ingest, its committed rows.
async fn measure(
    side: &Side,
    pool: &PgPool,
    shape: Shape,
    round: u32,
    is_paymirror: bool,
) -> anyhow::Result<Run> {
    let rows_before = match side.ledger {
        Some(table) => count_rows(pool, table).await?,
        None => 0,
    };
    let batches_before = match &side.batches {
        Some(source) => source.read().await,
        None => None,
    };
    let sample = Sample::start(side.pid);
    let measured = run_wrk(&side.base, &side.requests, shape, side.bearer.as_deref()).await?;
    let rss = sample.finish();
    let batches = match (&side.batches, batches_before) {
        (Some(source), Some(before)) => source.read().await.map(|after| after.since(before)),
        _ => None,
    };
    let committed = match side.ledger {
        Some(table) => Some(Committed {
            rows: count_rows(pool, table).await? - rows_before,
            answered_ok: measured.ok(),
        }),
        None => None,
    };
    Ok(Run {
        round,
        is_paymirror,
        measured,
        rss,
        committed,
        batches,
    })
}
