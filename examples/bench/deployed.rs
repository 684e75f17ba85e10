//! paymirror as a merchant runs it: the release binary as a process of its own
//! (`paymirror serve`), on its default configuration (`info` logs, sync on, the
//! default pool), syncing from `paymirror simulator`, another process. Its stderr
//! goes to a pipe this program drains, as a container runtime's log driver would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The secret the simulator and paymirror share.
const SECRET: &str = "bench-secret";

/// What a process wrote to stderr, counted as it was drained.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogTally {
    pub lines: u64,
    pub bytes: u64,
}

/// A process started from the release binary, and the task draining its stderr.
pub struct Process {
    child: Child,
    pub base: String,
    pub pid: u32,
    drained: JoinHandle<LogTally>,
}

/// The release binary: `$PAYMIRROR_BIN`, else `target/release/paymirror` (built by
/// `cargo build --release`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PAYMIRROR_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/paymirror"),
        PathBuf::from,
    );
    anyhow::ensure!(
        path.is_file(),
        "no release binary at {}: run `cargo build --release` first (or set PAYMIRROR_BIN)",
        path.display()
    );
    Ok(path)
}

/// Starts `paymirror simulator` for `merchant` on a free port (10 requests a second,
/// as the platform allows).
pub async fn start_simulator(binary: &Path, merchant: &str) -> anyhow::Result<Process> {
    let port = free_port()?;
    let mut command = Command::new(binary);
    command
        .arg("simulator")
        .env("SIMULATOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIMULATOR_MERCHANT_CODE", merchant)
        .env("SIMULATOR_SECRET", SECRET);
    let base = format!("http://127.0.0.1:{port}");
    start(command, base, "/_sim/payments").await
}

/// Starts `paymirror serve` on a free port against `database_url`, syncing from
/// `platform`: every other setting is the compiled default (it runs in an empty
/// directory, so no `config/` file applies, and no `PAYMIRROR__*` of this shell),
/// unless `extra_env` sets it.
pub async fn start_paymirror(
    binary: &Path,
    database_url: &str,
    platform: &str,
    merchant: &str,
    extra_env: &[(String, String)],
) -> anyhow::Result<Process> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("paymirror-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("a working directory for paymirror")?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("PAYMIRROR__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PAYMIRROR__PLATFORM__BASE_URL", platform)
        .env("PAYMIRROR__PLATFORM__MERCHANT_CODE", merchant)
        .env("PAYMIRROR__PLATFORM__SECRET", SECRET)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    let base = format!("http://127.0.0.1:{port}");
    start(command, base, "/readyz").await
}

async fn start(mut command: Command, base: String, ready: &str) -> anyhow::Result<Process> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().context("starting the release binary")?;
    let pid = child.id().context("the process has no id")?;
    let drained = tokio::spawn(drain(child.stderr.take()));
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answered = http.get(format!("{base}{ready}")).send().await;
        if answered.is_ok_and(|a| a.status().is_success()) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{base} exited with {status} before it was ready");
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{base} not ready within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Process {
        child,
        base,
        pid,
        drained,
    })
}

/// Reads stderr line by line until it closes, counting what it read.
async fn drain(stderr: Option<tokio::process::ChildStderr>) -> LogTally {
    let mut tally = LogTally::default();
    let Some(stderr) = stderr else {
        return tally;
    };
    let mut lines = BufReader::with_capacity(64 * 1024, stderr);
    let mut line = Vec::new();
    while let Ok(read) = lines.read_until(b'\n', &mut line).await {
        if read == 0 {
            break;
        }
        tally.lines += 1;
        tally.bytes += read as u64;
        line.clear();
    }
    tally
}

impl Process {
    /// Stops the process as an orchestrator does (SIGTERM, SIGKILL after 15 s) and
    /// returns what it logged.
    pub async fn stop(mut self) -> anyhow::Result<LogTally> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            self.child.wait().await?;
        }
        Ok(self.drained.await.unwrap_or_default())
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
