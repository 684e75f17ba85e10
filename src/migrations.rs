//! The embedded migrations, and applying them at start-up when several replicas start
//! at once: one applies them while the others wait for it.
//!
//! They run on a connection of their own, not the pool's: without the pool's
//! `statement_timeout` (a migration on a large table may need minutes), with a
//! `lock_timeout` of `database.migration_lock_wait_secs` instead, which bounds both the
//! wait for another replica's migration and a migration's wait for a table lock.
//! The lock is sqlx's own advisory lock (same key), so a replica of an older release
//! that migrates through sqlx waits for this one, and the other way round.

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

use crate::config::DatabaseSettings;

/// How often a replica waiting for another's migration says so.
const WAITING_NOTE: Duration = Duration::from_secs(5);

/// Migrations, embedded in the binary.
///
/// A rolling deploy runs the previous release beside this one, after this one may
/// have applied migrations the previous one does not know: those are ignored, not
/// an error. The rule that makes this safe: a migration stays backward compatible
/// for one release (add columns, tables and indexes; drop or rename only in the
/// release after the last one that used them).
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies every embedded migration not applied yet. Waits for a replica that is
/// migrating (saying so every few seconds) for up to `database.migration_lock_wait_secs`,
/// then fails naming the key.
pub async fn migrate(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let wait = settings.migration_lock_wait;
    let lock_timeout = format!("{}ms", wait.as_millis());
    let options = settings
        .connect_options()?
        .options([("statement_timeout", "0"), ("lock_timeout", &lock_timeout)]);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .context("connecting to the database to migrate it")?;
    let database: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&mut conn)
        .await?;
    let lock = lock_id(&database);
    take_lock(&mut conn, lock, wait).await?;
    let mut migrator = migrator();
    migrator.set_locking(false);
    let applied = migrator.run_direct(&mut conn).await;
    let released = sqlx::query("select pg_advisory_unlock($1)")
        .bind(lock)
        .execute(&mut conn)
        .await;
    applied.context("migrating the database")?;
    released?;
    let _ = conn.close().await;
    Ok(())
}

/// Waits for the migration lock, noting every few seconds that another replica holds it.
async fn take_lock(conn: &mut PgConnection, lock: i64, wait: Duration) -> anyhow::Result<()> {
    let started = tokio::time::Instant::now();
    let locked = sqlx::query("select pg_advisory_lock($1)")
        .bind(lock)
        .execute(&mut *conn);
    tokio::pin!(locked);
    let mut note = tokio::time::interval_at(started + WAITING_NOTE, WAITING_NOTE);
    loop {
        tokio::select! {
            locked = &mut locked => {
                return match locked {
                    Ok(_) => Ok(()),
                    Err(e) if is_lock_timeout(&e) => Err(anyhow::anyhow!(
                        "another replica held the migration lock for longer than database.migration_lock_wait_secs \
                         (PAYMIRROR__DATABASE__MIGRATION_LOCK_WAIT_SECS = {}); is a migration stuck?",
                        wait.as_secs()
                    )),
                    Err(e) => Err(e).context("taking the migration lock"),
                };
            }
            _ = note.tick() => tracing::info!(
                waited_secs = started.elapsed().as_secs(),
                "waiting for another replica to finish migrating the database"
            ),
        }
    }
}

/// Whether Postgres gave up waiting for a lock (`lock_not_available`).
fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}

/// The key of sqlx's migration lock for `database` (sqlx-postgres' `generate_lock_id`),
/// so that replicas of releases that let sqlx take the lock exclude this one too.
pub fn lock_id(database: &str) -> i64 {
    const CRC_IEEE: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    0x3d32ad9e * i64::from(CRC_IEEE.checksum(database.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_sqlx_s_own() {
        // sqlx-postgres 0.8: 0x3d32ad9e * crc32("paymirror").
        assert_eq!(
            lock_id("paymirror"),
            0x3d32ad9e * i64::from(0x997e_584f_u32)
        );
    }
}
