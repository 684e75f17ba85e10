//! [`JobState`]: where a payment's sync stands.

use std::fmt;
use std::str::FromStr;

/// Where a payment's sync stands (the `sync_jobs.state` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Nothing to do until a callback, a refresh or a reconciliation.
    Idle,
    /// A fetch is due at `run_at`.
    Pending,
    /// Leased to one worker until `lease_until`.
    Running,
    /// Gave up after its retry bound; visible and retryable.
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Idle,
        JobState::Pending,
        JobState::Running,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Idle => "idle",
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Dead => "dead",
        }
    }
}

impl utoipa::PartialSchema for JobState {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_enum(&["idle", "pending", "running", "dead"])
    }
}

impl utoipa::ToSchema for JobState {}

impl FromStr for JobState {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown sync state `{raw}`"))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::domain::text_column!(JobState);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_and_others_are_refused() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        assert!("Dead".parse::<JobState>().is_err());
    }
}
