//! Load generation with `wrk`: a Lua script per run (distinct callback ids, or
//! existing payment ids, cycling), and its `done()` hook printing one result line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::process::Command;

/// How the load is shaped: wrk's `-t`, `-c`, `-d`, and how many ids cycle.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    pub ids: u32,
}

/// The requests one run sends.
#[derive(Debug, Clone)]
pub enum Requests {
    /// `POST {path}` with `{"idEntity": "BENCH-<i>"}`, i cycling over the ids.
    Callbacks { path: &'static str },
    /// `GET {prefix}<i>`, i cycling over the ids (`/v1/payins/P-` → `P-1` … `P-n`).
    ById { prefix: &'static str },
    /// `GET {path}`, always the same.
    Fixed { path: &'static str },
}

impl Requests {
    /// The request as a table shows it.
    pub fn describe(&self) -> String {
        match self {
            Requests::Callbacks { path } => format!("POST {path}"),
            Requests::ById { prefix } => format!("GET {prefix}…"),
            Requests::Fixed { path } => format!("GET {path}"),
        }
    }
}

/// What wrk measured in one run. Latencies are wrk's, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub requests: u64,
    pub duration: Duration,
    /// Answers with a status of 400 or more (wrk's "Non-2xx or 3xx responses").
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// Answers below 400 (every route here answers 2xx on success).
    pub fn ok(&self) -> u64 {
        self.requests.saturating_sub(self.non_2xx)
    }
}

/// Fails with an explanation unless `wrk` can be started.
pub async fn ensure_wrk() -> anyhow::Result<()> {
    match Command::new("wrk").arg("-v").output().await {
        Ok(_) => Ok(()),
        Err(e) => anyhow::bail!(
            "wrk is needed to generate the load and could not be started ({e}).\n\
             Install it (Debian/Ubuntu: `apt-get update && apt-get install -y wrk`) and run again."
        ),
    }
}

/// Runs wrk against `base` with `requests` shaped by `shape`; `bearer` becomes an
/// `Authorization` header.
pub async fn run_wrk(
    base: &str,
    requests: &Requests,
    shape: Shape,
    bearer: Option<&str>,
) -> anyhow::Result<Measured> {
    let script = ScriptFile::write(&lua_script(requests, shape))?;
    let mut wrk = Command::new("wrk");
    wrk.arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{}s", shape.duration.as_secs().max(1)))
        // Long enough that no answer of a struggling server drops out of the latencies.
        .args(["--timeout", "30s", "-s"])
        .arg(&script.0);
    if let Some(token) = bearer {
        wrk.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let output = wrk.arg(base).output().await.context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_result(&stdout).with_context(|| format!("no result line in wrk's output:\n{stdout}"))
}

/// The script: one id sequence per wrk thread (interleaved, so threads never repeat
/// each other), and `done()` printing one `BENCH-RESULT` line.
fn lua_script(requests: &Requests, shape: Shape) -> String {
    let (preamble, path, body) = match requests {
        Requests::Callbacks { path } => (
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"",
            format!("'{path}'"),
            r#"'{"idEntity":"BENCH-' .. i .. '"}'"#,
        ),
        Requests::ById { prefix } => ("wrk.method = \"GET\"", format!("'{prefix}' .. i"), "nil"),
        Requests::Fixed { path } => ("wrk.method = \"GET\"", format!("'{path}'"), "nil"),
    };
    let (threads, ids) = (shape.threads, shape.ids);
    format!(
        r#"-- written by examples/bench for one run
local threads, ids, next_tid, n = {threads}, {ids}, 0, 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
{preamble}
function request()
  local i = (n * threads + (tid or 0)) % ids + 1
  n = n + 1
  return wrk.format(nil, {path}, nil, {body})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH-RESULT %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#
    )
}

fn parse_result(stdout: &str) -> anyhow::Result<Measured> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-RESULT "))
        .context("missing BENCH-RESULT")?;
    let r: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(r.len() == 7, "expected 7 numbers, got {r:?}");
    Ok(Measured {
        requests: r[0] as u64,
        duration: Duration::from_micros(r[1] as u64),
        non_2xx: r[2] as u64,
        socket_errors: r[3] as u64,
        p50_us: r[4],
        p99_us: r[5],
        max_us: r[6],
    })
}

/// A script in the temporary directory, removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn write(text: &str) -> anyhow::Result<ScriptFile> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("paymirror-bench-{}-{n}.lua", std::process::id()));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(ScriptFile(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
