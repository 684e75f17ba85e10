//! Durations read from the keys that name their unit: `*_ms` in milliseconds, `*_secs`
//! in seconds, `*_hours` and `*_days`; each a whole number, as the keys always were.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A whole number of milliseconds.
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A whole number of seconds.
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// A whole number of hours.
pub fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|h| Duration::from_secs(h.saturating_mul(3600)))
}

/// A whole number of days.
pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|days| Duration::from_secs(days.saturating_mul(86_400)))
}

/// A list of whole numbers of seconds.
pub fn secs_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<u64>::deserialize(d).map(|list| list.into_iter().map(Duration::from_secs).collect())
}
