//! Admission of callbacks (`server.callback_concurrency`): how many are handled at once, how long one more waits for
//! a slot, and how long one holding a slot may take to send its body.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerSettings;
use crate::http::error::BodyDeadline;
use crate::http::{error_response, AppState};

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

/// A callback's slot, held until its handler returns. Taken before the body is read
/// (an extractor of the request's head, which axum runs before the body's): a waiting
/// callback holds no body.
///
/// Lets a callback through once a slot is free, waiting at most the queue time (a
/// settlement burst queues briefly rather than being refused); past that, 503 at once,
/// so the platform retries later instead of a queue growing without bound. Slots go to
/// waiting callbacks first come, first served, and one that holds a slot must send its
/// whole body within `server.body_deadline_ms` ([`BodyDeadline`]).
pub struct CallbackSlot(
    /// Returned to the routes' slots when dropped.
    #[allow(dead_code)]
    OwnedSemaphorePermit,
);

impl FromRequestParts<AppState> for CallbackSlot {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let slots = &state.callback_slots;
        match tokio::time::timeout(slots.wait, slots.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => {
                let deadline = tokio::time::Instant::now() + slots.body_deadline;
                parts.extensions.insert(BodyDeadline(deadline));
                Ok(CallbackSlot(slot))
            }
            _ => {
                metrics::counter!("paymirror_http_shed_total").increment(1);
                Err(error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many callbacks in flight, retry later",
                ))
            }
        }
    }
}
