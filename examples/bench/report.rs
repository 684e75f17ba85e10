//! The figures, printed as Markdown tables (ready for BENCHMARKS.md): every run,
//! then per pair the means over rounds and the ratio paymirror / yardstick.

use crate::load::{Measured, Shape};
use crate::memory::mib;
use crate::pairs::{Pair, Run};

/// The machine, as far as this process can tell: CPU model, cores, memory.
pub fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .map_or("? GiB".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    format!("{model}, {cores} cores available, {memory} RAM")
}

/// The load shape in wrk's words.
pub fn describe_shape(shape: Shape, rounds: u32) -> String {
    format!(
        "wrk -t{} -c{} -d{}s, {} ids cycling, {rounds} round(s) per side, interleaved",
        shape.threads,
        shape.connections,
        shape.duration.as_secs(),
        shape.ids
    )
}

/// Every run: rate, latencies, errors, committed rows (ingest) and this process's RSS.
pub fn print_runs(results: &[(Pair, Vec<Run>)]) {
    println!("\n### Every run\n");
    println!("| pair | round | side | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | rows committed / 2xx | RSS before → peak → after (MiB) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (pair, runs) in results {
        for run in runs {
            let side = side_of(pair, run);
            let m = &run.measured;
            let committed = run.committed.map_or("—".into(), |c| {
                let mark = if c.holds() { "✓" } else { "✗ LOST" };
                format!("{} / {} {mark}", c.rows, c.answered_ok)
            });
            let peak_note = if run.rss.peak_is_this_run { "" } else { "*" };
            println!(
                "| {} | {} | {} {} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} → {}{peak_note} → {} |",
                pair.label,
                run.round,
                side.who,
                side.requests.describe(),
                m.per_second(),
                m.p50_us / 1000.0,
                m.p99_us / 1000.0,
                m.max_us / 1000.0,
                m.non_2xx,
                m.socket_errors,
                committed,
                mib(run.rss.before_kib),
                mib(run.rss.peak_kib),
                mib(run.rss.after_kib),
            );
        }
    }
}

/// The ingest runs whose side batches: how many batches a second, how large, and the
/// mean time to store one, which every callback of the batch waited through.
pub fn print_batches(results: &[(Pair, Vec<Run>)]) {
    let batched: Vec<(&Pair, &Run, crate::batches::Batches)> = results
        .iter()
        .flat_map(|(pair, runs)| runs.iter().map(move |run| (pair, run)))
        .filter_map(|(pair, run)| run.batches.map(|b| (pair, run, b)))
        .collect();
    if batched.is_empty() {
        return;
    }
    println!("\n### Group-commit batches (ingest runs)\n");
    println!("| pair | round | side | batches/s | callbacks per batch | ms to store a batch | share of the run spent storing |");
    println!("|---|---|---|---|---|---|---|");
    for (pair, run, b) in batched {
        let seconds = run.measured.duration.as_secs_f64().max(f64::EPSILON);
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.3} | {:.0} % |",
            pair.label,
            run.round,
            side_of(pair, run).who,
            b.batches / seconds,
            b.callbacks_per_batch(),
            b.ms_per_batch(),
            100.0 * b.seconds / seconds
        );
    }
}

/// Per pair: means over the rounds of each side, and paymirror / yardstick (the ratio
/// of the means, with the range of the per-round ratios).
pub fn print_summary(results: &[(Pair, Vec<Run>)]) {
    println!(
        "\n### Summary (means over rounds; ratio of mean req/s, per-round range in brackets)\n"
    );
    println!(
        "| pair | side | req/s | p50 ms | p99 ms | non-2xx (all rounds) | paymirror / yardstick |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (pair, runs) in results {
        let ours: Vec<&Measured> = sides(runs, true);
        let theirs: Vec<&Measured> = sides(runs, false);
        let (a, b) = (mean(&ours), mean(&theirs));
        let per_round: Vec<f64> = ours
            .iter()
            .zip(&theirs)
            .map(|(x, y)| x.per_second() / y.per_second())
            .collect();
        let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let high = per_round.iter().copied().fold(0.0, f64::max);
        let ratio = format!("**{:.2}×** ({low:.2}–{high:.2})", a.rate / b.rate);
        for (side, m, ratio) in [
            (&pair.paymirror, a, ratio.as_str()),
            (&pair.yardstick, b, ""),
        ] {
            println!(
                "| {} | {} {} | {:.0} | {:.2} | {:.2} | {} | {ratio} |",
                pair.label,
                side.who,
                side.requests.describe(),
                m.rate,
                m.p50_ms,
                m.p99_ms,
                m.non_2xx
            );
        }
    }
}

/// paymirror's ingest runs: was every 200 committed, and how much memory was used.
pub fn print_ingest_checks(results: &[(Pair, Vec<Run>)]) -> bool {
    let ingest: Vec<&Run> = results
        .iter()
        .flat_map(|(_, runs)| runs)
        .filter(|r| r.is_paymirror && r.committed.is_some())
        .collect();
    if ingest.is_empty() {
        return true;
    }
    let every_commit = results
        .iter()
        .flat_map(|(_, runs)| runs)
        .filter_map(|r| r.committed)
        .all(|c| c.holds());
    let peak = ingest.iter().map(|r| r.rss.peak_kib).max().unwrap_or(0);
    let non_2xx: u64 = ingest.iter().map(|r| r.measured.non_2xx).sum();
    println!(
        "\npaymirror ingest over {} runs: peak RSS of paymirror {} MiB; non-2xx {non_2xx}; \
         every 2xx committed (rows ≥ 2xx, every ingest run of both sides): {}",
        ingest.len(),
        mib(peak),
        if every_commit { "yes" } else { "NO" }
    );
    every_commit
}

fn side_of<'a>(pair: &'a Pair, run: &Run) -> &'a crate::pairs::Side {
    if run.is_paymirror {
        &pair.paymirror
    } else {
        &pair.yardstick
    }
}

fn sides(runs: &[Run], paymirror: bool) -> Vec<&Measured> {
    runs.iter()
        .filter(|r| r.is_paymirror == paymirror)
        .map(|r| &r.measured)
        .collect()
}

/// Means of a side's runs (non-2xx summed).
#[derive(Clone, Copy)]
struct Means {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn mean(runs: &[&Measured]) -> Means {
    let n = runs.len().max(1) as f64;
    let avg = |f: fn(&Measured) -> f64| runs.iter().map(|m| f(m)).sum::<f64>() / n;
    Means {
        rate: avg(Measured::per_second),
        p50_ms: avg(|m| m.p50_us / 1000.0),
        p99_ms: avg(|m| m.p99_us / 1000.0),
        non_2xx: runs.iter().map(|m| m.non_2xx).sum(),
    }
}
