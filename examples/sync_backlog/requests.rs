//! What the platform saw, from the simulator's request log.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use paymirror::simulator::RecordedRequest;

/// What the platform saw: fetches, tokens and how they spread over time and replicas.
#[derive(Debug, Default)]
pub struct Requests {
    pub total: usize,
    pub tokens: usize,
    /// `GET /payins/…` answered 200.
    pub fetches_ok: usize,
    /// First to last `GET /payins/…` answered 200.
    pub fetch_span: Duration,
    /// First to last request of any kind.
    pub request_span: Duration,
    /// Payment fetches answered with something else than 200, by status.
    pub fetches_failed: BTreeMap<u16, usize>,
    pub payments_fetched: usize,
    /// Payments answered 200 more than once.
    pub fetched_repeatedly: usize,
    /// A few of those, for a look at why.
    pub repeated_examples: Vec<String>,
    /// Payment fetches per bearer token, most first: one token per replica here.
    pub by_token: Vec<usize>,
}

/// Returns the figures of the simulator's request log.
pub fn count_requests(log: &[RecordedRequest]) -> Requests {
    let mut r = Requests {
        total: log.len(),
        request_span: span(log.iter().map(|q| q.at)),
        ..Requests::default()
    };
    let fetches: Vec<&RecordedRequest> = log
        .iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/payins/"))
        .collect();
    r.tokens = log.iter().filter(|q| q.path == "/auth-tokens").count();
    let ok: Vec<&&RecordedRequest> = fetches.iter().filter(|q| q.status == 200).collect();
    r.fetches_ok = ok.len();
    r.fetch_span = span(ok.iter().map(|q| q.at));
    let mut per_payment: HashMap<&str, usize> = HashMap::new();
    for q in &ok {
        *per_payment.entry(q.path.as_str()).or_default() += 1;
    }
    r.payments_fetched = per_payment.len();
    let mut repeated: Vec<&str> = per_payment
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(path, _)| path.trim_start_matches("/payins/"))
        .collect();
    repeated.sort_unstable_by_key(|id| (id.len(), *id));
    r.fetched_repeatedly = repeated.len();
    r.repeated_examples = repeated.iter().take(5).map(|id| id.to_string()).collect();
    let mut per_token: HashMap<Option<&str>, usize> = HashMap::new();
    for q in &fetches {
        if q.status != 200 {
            *r.fetches_failed.entry(q.status).or_default() += 1;
        }
        *per_token.entry(q.authorization.as_deref()).or_default() += 1;
    }
    r.by_token = per_token.into_values().collect();
    r.by_token.sort_unstable_by(|a, b| b.cmp(a));
    r
}

/// Returns the time from the earliest to the latest instant (zero for fewer than two).
fn span(times: impl Iterator<Item = Instant>) -> Duration {
    let (min, max) = times.fold((None::<Instant>, None::<Instant>), |(lo, hi), t| {
        (
            Some(lo.map_or(t, |l| l.min(t))),
            Some(hi.map_or(t, |h| h.max(t))),
        )
    });
    match (min, max) {
        (Some(lo), Some(hi)) => hi.duration_since(lo),
        _ => Duration::ZERO,
    }
}
