//! API tokens for `/v1` (SPEC §3): 30 random characters, stored as SHA-256 hashes,
//! only the newest token of an account active, revocation final.

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::background::{every, Merge, Pending};

mod checked;
mod permission;

pub use checked::{CheckedTokens, Ticket, CHANNEL as CHANGES_CHANNEL};
pub use permission::Permission;

pub const TOKEN_LEN: usize = 30;

/// A token as `tokens list` shows it: never the token itself.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenInfo {
    pub account: String,
    pub permissions: Vec<Permission>,
    /// The merchant codes the token may see; `None`: every merchant.
    pub merchants: Option<Vec<String>>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: i64,
}

/// Returns the SHA-256 of a secret as lowercase hex: what the database keeps instead of it.
pub fn hash(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// Creates a token for `account`, deactivating its earlier ones, and returns it.
/// The token is only ever returned here; the database keeps its hash.
pub async fn create_token(
    pool: &PgPool,
    account: &str,
    permissions: &[Permission],
    merchants: &[String],
) -> anyhow::Result<String> {
    anyhow::ensure!(!account.trim().is_empty(), "the account name is empty");
    if let Some(unknown) = permissions
        .iter()
        .find(|p| matches!(p, Permission::Unknown(_)))
    {
        anyhow::bail!("`{unknown}` is not a permission this release grants");
    }
    let mut names: Vec<&str> = permissions.iter().map(Permission::as_str).collect();
    if names.is_empty() {
        names.push(Permission::Read.as_str());
    }
    names.sort_unstable();
    names.dedup();
    let mut scope = merchants.to_vec();
    scope.sort_unstable();
    scope.dedup();
    let scope = (!scope.is_empty()).then_some(scope);
    let token = Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LEN);
    let mut tx = pool.begin().await?;
    deactivate(&mut tx, account).await?;
    sqlx::query(
        "insert into api_tokens (account, token_hash, permissions, merchants)
         values ($1, $2, $3, $4)",
    )
    .bind(account)
    .bind(hash(&token))
    .bind(&names)
    .bind(&scope)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Deactivates the account's token for good; returns how many were active.
pub async fn revoke_tokens(pool: &PgPool, account: &str) -> anyhow::Result<u64> {
    let mut conn = pool.acquire().await?;
    Ok(deactivate(&mut conn, account).await?)
}

async fn deactivate(conn: &mut sqlx::PgConnection, account: &str) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "update api_tokens set active = false, updated_at = now() where account = $1 and active",
    )
    .bind(account)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Returns every token's account, permissions and use, newest first.
pub async fn list_tokens(pool: &PgPool) -> sqlx::Result<Vec<TokenInfo>> {
    sqlx::query_as(
        "select account, permissions, merchants, active, created_at, last_used_at, use_count
         from api_tokens order by account, created_at desc",
    )
    .fetch_all(pool)
    .await
}

/// A bearer token as presented: well formed and hashed, not yet checked.
#[derive(Clone)]
pub struct Presented {
    hash: String,
}

impl Presented {
    /// Returns the token hashed, or `None` if it cannot be one (wrong length).
    pub fn parse(token: &str) -> Option<Presented> {
        (token.len() == TOKEN_LEN).then(|| Presented { hash: hash(token) })
    }

    /// The hash the database keeps for this token.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Returns the grant read from the database or remembered (`None`: no active
    /// token has this hash), and notes the use of a valid token in `usage`.
    pub fn grant(&self, usage: &UsageLog, grant: Option<Grant>) -> Option<Grant> {
        let grant = grant?;
        usage.record(self.hash.clone());
        Some(grant)
    }
}

/// What an active token allows: its permissions, and the merchants it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permissions: Vec<Permission>,
    /// The merchant codes the token may see; `None`: every merchant.
    pub merchants: Option<Vec<String>>,
}

impl Grant {
    /// Whether the token may see merchant `code`'s payments.
    pub fn sees(&self, code: &str) -> bool {
        self.merchants
            .as_ref()
            .is_none_or(|m| m.iter().any(|c| c == code))
    }
}

/// Returns what an active token allows, or `None` if the token is unknown or
/// deactivated, and notes its use in `usage`.
///
/// Replicas remember what they read here until the database announces a change
/// ([`CheckedTokens`]); the use (last use, count) is written later by
/// [`UsageLog::flush`], so readers never queue on the row's lock.
pub async fn authenticate(
    pool: &PgPool,
    usage: &UsageLog,
    token: &Presented,
) -> sqlx::Result<Option<Grant>> {
    Ok(identify(pool, usage, token)
        .await?
        .map(|identity| identity.grant))
}

/// The active token a request presented: its row, account and grant.
#[derive(Debug, Clone)]
pub struct Identity {
    pub token_id: i64,
    pub account: String,
    pub grant: Grant,
}

/// Like [`authenticate`], also returning which token row it is (the console's sessions
/// name it, so that revoking or replacing the token ends them).
pub async fn identify(
    pool: &PgPool,
    usage: &UsageLog,
    token: &Presented,
) -> sqlx::Result<Option<Identity>> {
    /// id, account, permissions, merchants.
    type TokenRow = (i64, String, Vec<Permission>, Option<Vec<String>>);
    let row: Option<TokenRow> = sqlx::query_as(
        "select id, account, permissions, merchants from api_tokens
         where token_hash = $1 and active",
    )
    .bind(token.hash())
    .fetch_optional(pool)
    .await?;
    let Some((token_id, account, permissions, merchants)) = row else {
        return Ok(None);
    };
    let grant = Grant {
        permissions,
        merchants,
    };
    let Some(grant) = token.grant(usage, Some(grant)) else {
        return Ok(None);
    };
    Ok(Some(Identity {
        token_id,
        account,
        grant,
    }))
}

/// Uses of one token not yet written: how many, and the last.
#[derive(Debug, Clone, Copy, Default)]
struct Uses {
    count: i64,
    last: DateTime<Utc>,
}

impl Merge for Uses {
    fn merge(&mut self, other: Uses) {
        self.count += other.count;
        self.last = self.last.max(other.last);
    }
}

/// Token use not yet written, per token hash.
#[derive(Clone, Default)]
pub struct UsageLog {
    pending: Pending<String, Uses>,
}

impl UsageLog {
    fn record(&self, token_hash: String) {
        self.pending.update(token_hash, |uses| {
            uses.count += 1;
            uses.last = Utc::now();
        });
    }

    /// Adds the uses recorded so far to the tokens' rows, in one statement; returns
    /// how many tokens were touched. Uses that cannot be written are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool) -> sqlx::Result<usize> {
        self.pending
            .flush(async |taken| {
                let hashes: Vec<&str> = taken.iter().map(|(h, _)| h.as_str()).collect();
                let counts: Vec<i64> = taken.iter().map(|(_, u)| u.count).collect();
                let lasts: Vec<DateTime<Utc>> = taken.iter().map(|(_, u)| u.last).collect();
                sqlx::query(
                    "update api_tokens t set use_count = t.use_count + u.n,
                       last_used_at = greatest(t.last_used_at, u.last), updated_at = now()
                     from unnest($1::text[], $2::int8[], $3::timestamptz[]) as u(h, n, last)
                     where t.token_hash = u.h",
                )
                .bind(&hashes)
                .bind(&counts)
                .bind(&lasts)
                .execute(pool)
                .await
                .map(|_| ())
            })
            .await
    }

    /// Flushes every `interval` until `cancel` fires, then once more.
    pub async fn run(self, pool: PgPool, interval: std::time::Duration, cancel: CancellationToken) {
        let flush = || async {
            if let Err(e) = self.flush(&pool).await {
                tracing::warn!(error = %e, "could not record API token use; keeping it for the next try");
            }
        };
        every(interval, &cancel, flush).await;
        flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
