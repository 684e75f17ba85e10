//! `paymirror serve` as a process of its own, as a deployment runs it: for tests of
//! start-up, signals and whole-process limits.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::helpers::{free_port, serve_command, TestDatabase};

/// One `paymirror serve` process, killed when dropped, with what it logged.
pub struct Replica {
    pub address: String,
    pub process: Child,
    logs: Arc<Mutex<String>>,
}

impl Replica {
    /// Starts `paymirror serve` on `db` and a free port, with the project's
    /// configuration, `info` logs, no platform behind it and `env` on top.
    pub fn start(db: &TestDatabase, env: &[(&str, &str)]) -> Replica {
        let port = free_port();
        let mut process = serve_command(db, port, "http://127.0.0.1:9")
            .env_remove("PAYMIRROR_CONFIG_DIR")
            .env("PAYMIRROR__LOG__LEVEL", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("paymirror serve starts");
        let logs = Arc::new(Mutex::new(String::new()));
        for output in [
            process
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn Send + Unpin + tokio::io::AsyncRead>),
            process
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn Send + Unpin + tokio::io::AsyncRead>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(output).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut logs) = logs.lock() {
                        logs.push_str(&line);
                        logs.push('\n');
                    }
                }
            });
        }
        Replica {
            address: format!("http://127.0.0.1:{port}"),
            process,
            logs,
        }
    }

    /// Everything the process printed so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until `GET /readyz` answers 200, failing the test (with the logs) after
    /// `timeout` or if the process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.address);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.process.try_wait() {
                panic!("serve exited ({status}):\n{}", self.logs());
            }
            if let Ok(answer) = http.get(&url).send().await {
                if answer.status() == 200 {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not ready within {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the logs contain `text`, failing the test with the logs after `timeout`.
    pub async fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.logs().contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{text}` within {timeout:?} in:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
