//! A raw HTTP/1.1 client over TCP: sends bytes exactly as given (no path normalisation,
//! no header checks), and reads back either an answer or a closed connection.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a test waits for the server to answer or close.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the server did with a request.
#[derive(Debug)]
pub enum Answer {
    Response {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// The connection closed (or was reset) before any answer.
    Closed,
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Response { status, .. } => Some(*status),
            Answer::Closed => None,
        }
    }

    /// The pinned error body `{"name","message","code","status"}`, checked against the status.
    pub fn assert_pinned_error(&self) {
        let Answer::Response {
            status,
            content_type,
            body,
        } = self
        else {
            panic!("expected an answer, the connection was closed");
        };
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_slice(body).expect("error body is JSON");
        assert_eq!(body["status"], *status, "{body}");
        assert_eq!(body["code"], 0, "{body}");
        let reason = reqwest::StatusCode::from_u16(*status)
            .ok()
            .and_then(|s| s.canonical_reason());
        assert_eq!(body["name"].as_str(), reason, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// `METHOD path` with the given headers and body, closing the connection after it.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes` to `address` (`127.0.0.1:PORT`) and reads until the server closes.
pub async fn exchange(address: &str, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    // The server may answer (413, 431) and close before taking every byte: then the
    // write fails and the answer is still there to read.
    let _ = stream.write_all(bytes).await;
    read_answer(&mut stream).await
}

/// Reads until the server closes the connection, and parses what came.
pub async fn read_answer(stream: &mut (impl AsyncRead + Unpin)) -> Answer {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    parse(&received)
}

fn parse(received: &[u8]) -> Answer {
    let Some(split) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer::Closed;
    };
    let head = String::from_utf8_lossy(&received[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let content_type = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.trim().to_owned());
    Answer::Response {
        status,
        content_type,
        body: received[split + 4..].to_vec(),
    }
}
