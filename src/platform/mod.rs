//! The platform client: tokens, the process-wide rate limit, `GET /payins|payouts/{id}`,
//! and the classes of error a fetch can end in.

mod breaker;
mod budget;
mod business;
mod client;
mod document;
mod fields;
mod limiter;
mod surrogates;
mod token;

pub use budget::{budget_state, resume, BudgetState, SharedBudget};
pub use business::{code_label, BusinessError, BusinessErrors};
pub use client::{FetchError, PlatformClient, Slot, MAX_ANSWER_BYTES, MAX_PAUSE};
pub use document::{FailureReason, PaymentSnapshot, PlatformPayment};
pub use fields::{InvalidAnswer, Money};
pub use limiter::{RateLimiter, Reservation, Sent, WINDOW};
