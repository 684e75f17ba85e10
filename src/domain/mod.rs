//! Domain types: everything past the HTTP edge works with these, never with raw strings.

mod kind;
mod payment_id;
mod status;

pub use kind::PaymentKind;
pub use payment_id::{PaymentId, PaymentIdError};
pub use status::PaymentStatus;
