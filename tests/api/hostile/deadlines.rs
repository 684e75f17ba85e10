//! Edges with deadlines: a callback's whole body must arrive within
//! `server.body_deadline_ms` however it trickles, so a crowd of trickling bodies cannot
//! keep the slots from honest callbacks; and shutdown ends within
//! `server.shutdown_grace_ms` even beside a client that never reads its answer.

use std::time::Duration;

use futures_util::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::raw::read_answer;
use super::slow::{honest_callbacks, open_callback, socket_address, spawn};
use crate::helpers::TestDatabase;
use crate::replica::Replica;

/// As many trickling bodies as the default `server.callback_concurrency`.
const TRICKLERS: usize = 1024;
/// How often a trickling client sends one more byte: well within the stall timeout.
const TRICKLE: Duration = Duration::from_millis(500);

/// Sends one body byte every [`TRICKLE`] until the server answers; returns its status.
async fn trickle(stream: TcpStream) -> Option<u16> {
    let (mut reader, mut writer) = stream.into_split();
    let crawl = async {
        while writer.write_all(b" ").await.is_ok() {
            tokio::time::sleep(TRICKLE).await;
        }
    };
    tokio::select! {
        answer = read_answer(&mut reader) => answer.status(),
        () = crawl => None,
    }
}

#[tokio::test]
async fn honest_callbacks_get_200_beside_1024_trickling_bodies() {
    let app = spawn(|s| {
        assert_eq!(s.server.callback_concurrency, TRICKLERS);
        s.server.body_deadline = Duration::from_millis(2000);
        s.server.callback_queue = Duration::from_millis(3000);
    })
    .await;
    let address = socket_address(&app);

    // Each holds a slot once hyper sends it `100 Continue`: then every slot is taken.
    let tricklers = join_all((0..TRICKLERS).map(|_| open_callback(&address, 1000))).await;
    let trickling: Vec<_> = tricklers
        .into_iter()
        .map(|stream| tokio::spawn(trickle(stream)))
        .collect();
    let honest = honest_callbacks(&app, 50).await;

    assert!(honest.iter().all(|s| *s == 200), "{honest:?}");
    for trickler in trickling {
        assert_eq!(trickler.await.expect("joins"), Some(408));
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from callbacks_on_record")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(stored, 50, "only the honest callbacks are stored");
}

#[tokio::test]
async fn sigterm_beside_a_client_that_never_reads_exits_0_within_the_grace() {
    let db = TestDatabase::create().await;
    let grace = Duration::from_secs(2);
    let mut replica = Replica::start(&db, &[("PAYMIRROR__SERVER__SHUTDOWN_GRACE_MS", "2000")]);
    replica.wait_ready(Duration::from_secs(30)).await;

    // Pipelined requests for a 40 KiB document, whose answers are never read (and a
    // small receive buffer): the replica's writes to this connection block once the
    // socket buffers are full, which takes it milliseconds. Nothing the test can
    // observe says when, so it gives it a second.
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("a small receive buffer");
    let address = replica
        .address
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let mut greedy = socket.connect(address).await.expect("connects");
    let request = b"GET /openapi.json HTTP/1.1\r\nhost: test\r\n\r\n";
    for _ in 0..2000 {
        greedy.write_all(request).await.expect("requests sent");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let pid = replica.process.id().expect("a pid").to_string();
    let signalled = Instant::now();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(grace * 5, replica.process.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still running {:?} after SIGTERM:\n{}",
                grace * 5,
                replica.logs()
            )
        })
        .expect("status");
    let took = signalled.elapsed();

    assert!(status.success(), "{status}:\n{}", replica.logs());
    assert!(
        took < grace + Duration::from_secs(1),
        "exited {took:?} after SIGTERM, grace {grace:?}"
    );
    drop(greedy);
}
