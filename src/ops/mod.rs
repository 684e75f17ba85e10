//! What the service counts: the catalogue of every Prometheus metric it exports
//! ([`metrics`]), and the per-minute figures behind the console's charts ([`minutes`]).

pub mod metrics;
pub mod minutes;

pub use metrics::{keep_up, metrics_handle};
pub use minutes::{keep_minutes, list_minutes, sample_minute, Minute, Tally, Written};
