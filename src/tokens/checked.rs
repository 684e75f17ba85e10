//! [`CheckedTokens`]: the tokens this replica found active, kept in memory until the
//! database announces that a token changed.
//!
//! Reading the token's row on every request cost a quarter of Postgres's time per
//! read by id. Instead a replica keeps what it read and forgets all of it when the
//! `api_tokens` triggers notify [`CHANNEL`] (a token deactivated, re-permissioned or
//! deleted, by any release or by hand), when its listening connection is lost (a
//! notice could have been missed), and after [`MAX_AGE`] in any case. While it is not
//! listening, nothing is kept and every request reads the database, as before.
//!
//! A revocation therefore takes effect on every replica as soon as its notice
//! arrives, milliseconds after the revoking transaction commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Grant;
use crate::db::notices::{Heard, Hearer};

/// The channel the `api_tokens` triggers notify.
pub const CHANNEL: &str = "paymirror_api_tokens";

/// How long a checked token is trusted without a fresh read, whatever was heard.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// How many tokens are kept at most; past it, all are forgotten and read again.
const CAPACITY: usize = 10_000;

/// The tokens this replica found active (by hash), shared by its handlers.
#[derive(Clone, Default)]
pub struct CheckedTokens {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Bumped whenever everything is forgotten: a read begun before cannot be kept.
    generation: u64,
    listening: bool,
    tokens: HashMap<String, (Grant, Instant)>,
}

/// Taken before reading a token's row; [`CheckedTokens::keep`] keeps what was read
/// only if nothing was forgotten since.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl CheckedTokens {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map is consistent after every statement under the lock: a panic
        // elsewhere cannot leave it half-written.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What a token found active less than [`MAX_AGE`] ago and not changed since
    /// (as far as this replica has heard) allows.
    pub fn get(&self, token_hash: &str) -> Option<Grant> {
        let inner = self.lock();
        if !inner.listening {
            return None;
        }
        inner
            .tokens
            .get(token_hash)
            .filter(|(_, at)| at.elapsed() < MAX_AGE)
            .map(|(grant, _)| grant.clone())
    }

    /// To take before reading a token's row from the database.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Keeps a token read active since `ticket` was taken, unless everything was
    /// forgotten in between (the read may predate the change that caused it) or
    /// this replica is not listening.
    pub fn keep(&self, ticket: Ticket, token_hash: &str, grant: &Grant) {
        let mut inner = self.lock();
        if !inner.listening || inner.generation != ticket.0 {
            return;
        }
        if inner.tokens.len() >= CAPACITY && !inner.tokens.contains_key(token_hash) {
            inner.tokens.clear();
        }
        inner
            .tokens
            .insert(token_hash.to_owned(), (grant.clone(), Instant::now()));
    }

    /// Forgets every token; `listening` says whether changes will be heard from now on.
    fn forget_all(&self, listening: bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.listening = listening;
        inner.tokens.clear();
    }
}

impl Hearer for CheckedTokens {
    /// Forgets every token on a notice, on listening (again) and on losing the
    /// connection; keeps tokens only while listening.
    fn heard(&self, heard: Heard) {
        self.forget_all(matches!(heard, Heard::Connected | Heard::Notice));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Permission;

    fn read() -> Grant {
        Grant {
            permissions: vec![Permission::Read],
            merchants: None,
        }
    }

    fn listening() -> CheckedTokens {
        let tokens = CheckedTokens::default();
        tokens.forget_all(true);
        tokens
    }

    #[test]
    fn a_token_is_kept_only_while_listening() {
        let tokens = CheckedTokens::default();
        let ticket = tokens.ticket();
        tokens.keep(ticket, "h", &read());
        assert_eq!(tokens.get("h"), None, "not listening yet");

        let tokens = listening();
        let ticket = tokens.ticket();
        tokens.keep(ticket, "h", &read());
        assert_eq!(tokens.get("h"), Some(read()));
        tokens.forget_all(false);
        assert_eq!(tokens.get("h"), None);
    }

    #[test]
    fn a_read_begun_before_a_change_is_not_kept() {
        let tokens = listening();
        let ticket = tokens.ticket();
        // A revocation is heard while the row is being read.
        tokens.forget_all(true);
        tokens.keep(ticket, "h", &read());
        assert_eq!(tokens.get("h"), None);
    }

    #[test]
    fn a_change_forgets_every_token() {
        let tokens = listening();
        let ticket = tokens.ticket();
        tokens.keep(ticket, "a", &read());
        tokens.keep(ticket, "b", &read());
        tokens.forget_all(true);
        assert_eq!(tokens.get("a"), None);
        assert_eq!(tokens.get("b"), None);
    }
}
