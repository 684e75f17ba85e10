//! [`Merchants`]: the merchant codes one deployment serves.

use std::sync::Arc;

/// The merchant codes this deployment serves, the default merchant first (SPEC §4).
/// Cheap to clone. Every code a request names is looked up here, so a code that
/// reaches the database, a log line or a metric label always comes from the
/// configuration, never from the request's bytes.
#[derive(Debug, Clone)]
pub struct Merchants(Arc<[Arc<str>]>);

impl Merchants {
    /// `codes` must not be empty; the first is the default merchant.
    pub fn new(codes: Vec<Arc<str>>) -> Merchants {
        assert!(
            !codes.is_empty(),
            "a deployment serves at least one merchant"
        );
        Merchants(codes.into())
    }

    /// The merchant meant when a request names none.
    pub fn default_code(&self) -> &Arc<str> {
        &self.0[0]
    }

    /// The configured code equal to `code`, if any.
    pub fn get(&self, code: &str) -> Option<&Arc<str>> {
        self.0.iter().find(|c| &***c == code)
    }

    /// Every code, the default first.
    pub fn all(&self) -> &[Arc<str>] {
        &self.0
    }

    /// Whether this deployment serves more than one merchant.
    pub fn several(&self) -> bool {
        self.0.len() > 1
    }
}
