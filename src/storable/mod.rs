//! JSON as Postgres `jsonb` can store it: what comes from outside (a callback body, a
//! platform answer) is read once into a `Value` with NUL made U+FFFD and numbers
//! `numeric` cannot hold kept as the text they were written as, so storing it can
//! never lose the rest.

mod body;
pub mod numeric;
mod written;

pub use body::parse_storable;
