//! Admission of callbacks: how many are handled at once, how long one more waits for
//! a slot, and how long one holding a slot may take to send its body.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

use crate::config::ServerSettings;
use crate::http::error::BodyDeadline;
use crate::http::error_response;

/// The callback routes' slots: how many run at once, how long one more waits, and
/// how long a callback holding one may take to send its body.
#[derive(Clone)]
pub struct CallbackSlots {
    slots: Arc<Semaphore>,
    wait: Duration,
    body_deadline: Duration,
}

impl CallbackSlots {
    pub fn new(settings: &ServerSettings) -> Self {
        CallbackSlots {
            slots: Arc::new(Semaphore::new(settings.callback_concurrency)),
            wait: settings.callback_queue,
            body_deadline: settings.body_deadline,
        }
    }
}

/// Lets a callback through once a slot is free, waiting at most the queue time (a
/// settlement burst queues briefly rather than being refused); past that, 503 at once,
/// so the platform retries later instead of a queue growing without bound. Runs before
/// the body is read: a waiting callback holds no body. Slots go to waiting callbacks
/// first come, first served, and one that holds a slot must send its whole body within
/// `server.body_deadline_ms` ([`BodyDeadline`]).
pub async fn limit_callbacks(
    State(slots): State<CallbackSlots>,
    mut request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(slots.wait, slots.slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => {
            let deadline = tokio::time::Instant::now() + slots.body_deadline;
            request.extensions_mut().insert(BodyDeadline(deadline));
            let response = next.run(request).await;
            drop(slot);
            response
        }
        _ => {
            metrics::counter!("paymirror_http_shed_total").increment(1);
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many callbacks in flight, retry later",
            )
        }
    }
}
