//! The two kinds of client of the slow_clients benchmark: a slow one trickling a
//! never-ending header, and an honest one posting callbacks back to back.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What happened to one slow client.
pub struct Slow {
    /// When the server closed the connection, counted from the connection attempt;
    /// None if it was still open when the run ended.
    pub closed_after: Option<Duration>,
    pub connect_failed: bool,
}

/// Sends a request line and then header bytes, one every `trickle`, never ending the
/// headers, until the server closes the connection or `end` comes.
pub async fn run_slow_client(address: String, trickle: Duration, end: Instant) -> Slow {
    let opened = Instant::now();
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return Slow {
            closed_after: None,
            connect_failed: true,
        };
    };
    let (mut reader, mut writer) = stream.split();
    let trickling = async {
        let head = b"POST /callbacks/payins HTTP/1.1\r\nhost: bench\r\nx-slow: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(trickle).await;
        }
        std::future::pending::<()>().await;
    };
    // The server closing shows as end of stream (or a reset) on the reading side.
    let closed = async {
        let mut buf = [0u8; 512];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let closed_after = tokio::select! {
        () = closed => Some(opened.elapsed()),
        () = trickling => None,
        () = tokio::time::sleep_until(end.into()) => None,
    };
    Slow {
        closed_after,
        connect_failed: false,
    }
}

/// Honest callbacks' outcomes and latencies.
#[derive(Default)]
pub struct Honest {
    pub latencies: Vec<Duration>,
    pub ok: usize,
    pub other_status: usize,
    pub errors: usize,
}

impl Honest {
    pub fn merge(&mut self, other: Honest) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.other_status += other.other_status;
        self.errors += other.errors;
    }

    /// The `p` quantile (0.0–1.0) of the latencies, nearest rank.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        self.latencies.sort_unstable();
        let last = self.latencies.len().checked_sub(1)?;
        let rank = (p * last as f64).round() as usize;
        self.latencies.get(rank.min(last)).copied()
    }
}

/// Posts callbacks for distinct payouts one after another until `end`.
pub async fn run_honest_worker(
    http: reqwest::Client,
    address: String,
    worker: u32,
    end: Instant,
) -> Honest {
    let url = format!("http://{address}/callbacks/payouts");
    let mut honest = Honest::default();
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let body = format!(r#"{{"idEntity": "BENCH-{worker}-{n}"}}"#);
        let sent = Instant::now();
        let answer = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        honest.latencies.push(sent.elapsed());
        match answer {
            Ok(r) if r.status() == 200 => honest.ok += 1,
            Ok(_) => honest.other_status += 1,
            Err(_) => honest.errors += 1,
        }
    }
    honest
}

/// What the hostile client's callbacks were answered.
#[derive(Default)]
pub struct Hostile {
    pub sent: usize,
    pub ok: usize,
    pub rejected: usize,
    pub failed: usize,
}

/// Posts a callback Postgres cannot store as received (a NUL in a string, which
/// `jsonb` refuses) every `every` until `end`, beside the honest workers.
pub async fn run_hostile_client(
    http: reqwest::Client,
    address: String,
    every: Duration,
    end: Instant,
) -> Hostile {
    let url = format!("http://{address}/callbacks/payins");
    let mut hostile = Hostile::default();
    while Instant::now() < end {
        let answer = http
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"idEntity":"B-1","note":"\u0000"}"#)
            .send()
            .await;
        hostile.sent += 1;
        match answer.map(|r| r.status().as_u16()) {
            Ok(200) => hostile.ok += 1,
            Ok(400..=499) => hostile.rejected += 1,
            _ => hostile.failed += 1,
        }
        tokio::time::sleep(every).await;
    }
    hostile
}
