//! paymirror: a merchant-side mirror of payment statuses, fed by the platform's
//! anemic callbacks and kept authoritative by fetching each payment's state.

pub mod domain;
pub mod simulator;
