//! The platform client: tokens, the process-wide rate limit, `GET /payins|payouts/{id}`,
//! and the classes of error a fetch can end in.

mod budget;
mod client;
mod document;
mod limiter;
mod token;

pub use budget::SharedBudget;
pub use client::{FetchError, PlatformClient};
pub use document::{FailureReason, Money, PaymentSnapshot, PlatformPayment};
pub use limiter::{RateLimiter, Reservation, WINDOW};
