//! The request body's read timeout: a body that stalls longer than
//! `server.body_read_timeout_ms` between two of its pieces ends in [`BodyStalled`],
//! which [`RawBody`](crate::http::error::RawBody) answers 408.
//!
//! tower-http's `RequestBodyTimeoutLayer` does the same but starts a timer before each
//! read of the body, even when the body is already there: a callback, whose whole body
//! arrives with its headers, set and cleared two timers of the runtime's wheel for
//! nothing (about 1,400 of its 70,000 instructions, `scripts/callback-instructions.sh`).
//! [`TimedBody`] reads first and starts its timer only when the body makes it wait.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::BoxError;
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;
use tower::{Layer, Service};

/// The layer of [`StallTimeout`].
#[derive(Debug, Clone, Copy)]
pub struct StallTimeoutLayer {
    limit: Duration,
}

impl StallTimeoutLayer {
    /// A body may keep the request waiting at most `limit` for each of its pieces.
    pub fn new(limit: Duration) -> Self {
        StallTimeoutLayer { limit }
    }
}

impl<S> Layer<S> for StallTimeoutLayer {
    type Service = StallTimeout<S>;

    fn layer(&self, inner: S) -> StallTimeout<S> {
        StallTimeout {
            inner,
            limit: self.limit,
        }
    }
}

/// Gives each request's body a [`TimedBody`].
#[derive(Debug, Clone)]
pub struct StallTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<Request<B>> for StallTimeout<S>
where
    S: Service<Request<TimedBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limit = self.limit;
        self.inner
            .call(request.map(|body| TimedBody::new(body, limit)))
    }
}

/// A body that fails with [`BodyStalled`] when it keeps its reader waiting longer than
/// its limit for the next piece. The wait is timed from the first read that found
/// nothing, so a body that is already there costs no timer.
pub struct TimedBody<B> {
    body: B,
    limit: Duration,
    /// Running while the reader waits for the next piece; boxed so that the body
    /// needs no pinning of its own (a stall is the rare case).
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    pub fn new(body: B, limit: Duration) -> Self {
        TimedBody {
            body,
            limit,
            waiting: None,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The body kept its reader waiting longer than `server.body_read_timeout_ms`.
#[derive(Debug, Clone, Copy)]
pub struct BodyStalled;

impl fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body stalled past its read timeout")
    }
}

impl Error for BodyStalled {}

/// Whether a body stalled ([`BodyStalled`]) somewhere in the error's cause chain.
pub fn stalled(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyStalled>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use tokio::sync::mpsc;

    use super::*;

    const LIMIT: Duration = Duration::from_secs(1);

    /// A body whose pieces are sent by the test, one channel message each.
    struct Sent(mpsc::Receiver<Bytes>);

    impl HttpBody for Sent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|piece| piece.map(|b| Ok(Frame::data(b))))
        }
    }

    fn sent() -> (mpsc::Sender<Bytes>, TimedBody<Sent>) {
        let (tx, rx) = mpsc::channel(8);
        (tx, TimedBody::new(Sent(rx), LIMIT))
    }

    /// Reads the body whole, as `RawBody` does.
    async fn read(body: TimedBody<Sent>) -> Result<Bytes, axum::Error> {
        axum::body::to_bytes(Body::new(body), usize::MAX).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_already_there_is_read_whole() {
        let (tx, body) = sent();
        for piece in ["{\"idEntity\":", "\"P-1\"}"] {
            tx.send(Bytes::from(piece)).await.expect("sent");
        }
        drop(tx);
        let read = read(body).await.expect("read");
        assert_eq!(read, Bytes::from("{\"idEntity\":\"P-1\"}"));
    }

    #[tokio::test(start_paused = true)]
    async fn pieces_each_within_the_limit_are_read_however_long_it_all_takes() {
        let (tx, body) = sent();
        let sender = tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(LIMIT * 9 / 10).await;
                tx.send(Bytes::from_static(b"x")).await.expect("sent");
            }
        });
        let started = tokio::time::Instant::now();
        let read = read(body).await.expect("read");
        assert_eq!(read, Bytes::from_static(b"xxxxx"));
        assert!(started.elapsed() > LIMIT * 4, "{:?}", started.elapsed());
        sender.await.expect("sender");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_past_the_limit_is_body_stalled() {
        let (tx, body) = sent();
        tx.send(Bytes::from_static(b"{")).await.expect("sent");
        let started = tokio::time::Instant::now();
        let failed = tokio::time::timeout(LIMIT * 10, read(body))
            .await
            .expect("ended by the limit, not the test's bound")
            .expect_err("stalled");
        assert!(stalled(&failed), "{failed}");
        assert_eq!(started.elapsed(), LIMIT);
        drop(tx);
    }
}
