//! [`listen`]: one LISTEN connection per process for every channel paymirror hears.
//!
//! sqlx's `PgListener` holds a pooled connection for as long as it lives. One per
//! consumer (the sync workers of each merchant, the change feed, the token cache)
//! took a pool slot each; one connection for all of them takes one.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// What a [`Hearer`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Listening (again): anything may have happened while not listening.
    Connected,
    /// A notice on the hearer's channel.
    Notice,
    /// The connection was lost: notices sent from now until `Connected` are lost.
    Lost,
    /// The process is stopping: nothing more will be heard.
    Stopped,
}

/// A consumer of one channel's notices; every hearer is told `Connected`, `Lost`
/// and `Stopped`.
pub trait Hearer: Send + Sync {
    fn heard(&self, heard: Heard);
}

/// How long to wait before listening again after the connection was lost.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// Listens on every channel of `hearers` through one connection until `cancel`
/// fires, telling each hearer what it hears; reconnects after a lost connection.
pub async fn listen(
    pool: PgPool,
    hearers: Vec<(&'static str, std::sync::Arc<dyn Hearer>)>,
    cancel: CancellationToken,
) {
    let tell_all = |heard: Heard| hearers.iter().for_each(|(_, h)| h.heard(heard));
    let channels: Vec<&str> = hearers.iter().map(|(c, _)| *c).collect();
    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => break,
            connected = connect(&pool, &channels) => connected,
        };
        match connected {
            Ok(mut listener) => {
                tell_all(Heard::Connected);
                loop {
                    let notice = tokio::select! {
                        () = cancel.cancelled() => break,
                        notice = listener.try_recv() => notice,
                    };
                    match notice {
                        Ok(Some(notice)) => hearers
                            .iter()
                            .filter(|(channel, _)| *channel == notice.channel())
                            .for_each(|(_, h)| h.heard(Heard::Notice)),
                        Ok(None) | Err(_) => {
                            tell_all(Heard::Lost);
                            tracing::warn!("lost the connection that listens for notices (syncs due, changes, API token changes); listening again");
                            break;
                        }
                    }
                }
                if cancel.is_cancelled() {
                    break;
                }
            }
            Err(e) => {
                tell_all(Heard::Lost);
                tracing::warn!(error = %e, "cannot listen for notices (syncs due, changes, API token changes); trying again");
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(RELISTEN_AFTER) => {}
        }
    }
    tell_all(Heard::Stopped);
}

async fn connect(pool: &PgPool, channels: &[&str]) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all(channels.iter().copied()).await?;
    Ok(listener)
}
