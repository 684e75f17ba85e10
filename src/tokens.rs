//! API tokens for `/v1` (SPEC §3): 30 random characters, stored as SHA-256 hashes,
//! only the newest token of an account active, revocation final.

use chrono::{DateTime, Utc};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

pub const TOKEN_LEN: usize = 30;

/// What a token allows: `read` is GET, `write` adds POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Permission {
    Read,
    Write,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }

    /// Returns the permission a stored name stands for; `None` for a name this
    /// release does not know (it then grants nothing).
    pub fn from_name(name: &str) -> Option<Permission> {
        [Permission::Read, Permission::Write]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    /// Returns whether holding this permission allows what `needed` allows:
    /// `write` includes `read`.
    pub fn allows(self, needed: Permission) -> bool {
        self == needed || (self == Permission::Write && needed == Permission::Read)
    }
}

/// A token as `tokens list` shows it: never the token itself.
#[derive(Debug, sqlx::FromRow)]
pub struct TokenInfo {
    pub account: String,
    pub permissions: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub use_count: i64,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a token for `account`, deactivating its earlier ones, and returns it.
/// The token is only ever returned here; the database keeps its hash.
pub async fn create_token(
    pool: &PgPool,
    account: &str,
    permissions: &[Permission],
) -> anyhow::Result<String> {
    anyhow::ensure!(!account.trim().is_empty(), "the account name is empty");
    let mut names: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    if names.is_empty() {
        names.push(Permission::Read.as_str());
    }
    names.sort_unstable();
    names.dedup();
    let token = Alphanumeric.sample_string(&mut rand::rng(), TOKEN_LEN);
    let mut tx = pool.begin().await?;
    deactivate(&mut tx, account).await?;
    sqlx::query("insert into api_tokens (account, token_hash, permissions) values ($1, $2, $3)")
        .bind(account)
        .bind(hash(&token))
        .bind(&names)
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
        "select account, permissions, active, created_at, last_used_at, use_count
         from api_tokens order by account, created_at desc",
    )
    .fetch_all(pool)
    .await
}

/// Returns the permissions of an active token, recording its use, or `None` if the
/// token is unknown or deactivated.
pub async fn authenticate(pool: &PgPool, token: &str) -> sqlx::Result<Option<Vec<Permission>>> {
    if token.len() != TOKEN_LEN {
        return Ok(None);
    }
    let names: Option<Vec<String>> = sqlx::query_scalar(
        "update api_tokens set last_used_at = now(), use_count = use_count + 1
         where token_hash = $1 and active
         returning permissions",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(names.map(|names| {
        names
            .iter()
            .filter_map(|name| Permission::from_name(name))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_includes_read_and_unknown_names_grant_nothing() {
        assert!(Permission::Write.allows(Permission::Read));
        assert!(!Permission::Read.allows(Permission::Write));
        assert_eq!(Permission::from_name("write"), Some(Permission::Write));
        assert_eq!(Permission::from_name("admin"), None);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
