//! Who hears that a session ended: the hub that tells the open event streams (`stream.rs`) of
//! every instance. The browser side is `auth::live`.
//!
//! Publishing goes through the database that all instances share: with PostgreSQL, a
//! `NOTIFY` on [`CHANNEL`], which every instance (this one included) `LISTEN`s to and hands to
//! its own streams; with SQLite, the one process hands it over in memory. Nothing here is the
//! session truth: a stream also re-reads its session row at its expiry and every
//! `RECHECK_INTERVAL`, so a missed notification delays the news but never loses it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::{db::Database, wire::EndReason};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "signoff_sessions_ended";
/// Events buffered per stream before it is told to re-read instead (see `Lagged`).
const BUFFER: usize = 1024;
/// Open streams allowed per session (its tabs in one browser) and per user (all devices), on each
/// instance. One more is answered 429; a page that gets it retries later, and the tab channel
/// still reaches it from the browser's other tabs.
pub const STREAMS_PER_SESSION: usize = 8;
/// Open streams allowed per user (all devices), on each instance.
pub const STREAMS_PER_USER: usize = 32;
/// The default of `EVENT_STREAM_MAX_LIFETIME`: a stream ends after this long (plus up to a
/// tenth more, at most a minute, per session) and the page opens a new one. No connection is
/// held forever, and a session's stream is re-authorised periodically.
pub const STREAM_MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Which sessions ended, and why: what one instance tells all of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsEnded {
    /// Whose sessions.
    pub user_id: i64,
    /// The one session that ended (its public handle), or `None` for all of the user's.
    pub session: Option<String>,
    /// A session spared from "all" (the one that changed the password).
    pub except: Option<String>,
    /// The session whose request ended them, if any.
    pub by: Option<String>,
    /// Why they ended.
    pub reason: EndReason,
    /// The display name of the provider that ended them (back-channel logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl SessionsEnded {
    /// One session of the user ended, by the request of session `by` (if it had one).
    pub fn one(user_id: i64, session: String, by: Option<String>, reason: EndReason) -> Self {
        Self {
            user_id,
            session: Some(session),
            except: None,
            by,
            reason,
            provider: None,
        }
    }

    /// One session, ended by the provider `name` it was signed in through.
    pub fn by_provider(user_id: i64, session: String, name: String) -> Self {
        Self {
            provider: Some(name),
            ..Self::one(user_id, session, None, EndReason::ProviderLogout)
        }
    }

    /// A session signed in with a way in (a provider, a passkey) ended because session
    /// `caller` removed that way in from the account; `name` is the way in's, for the notice.
    /// `reason`: `ProviderUnlinked` or `PasskeyRemoved`.
    pub fn way_in_removed(
        user_id: i64,
        session: String,
        caller: Option<String>,
        reason: EndReason,
        name: String,
    ) -> Self {
        Self {
            provider: Some(name),
            ..Self::one(user_id, session, caller, reason)
        }
    }

    /// Every session of the user ended except `caller`'s, whose request ended them (signing
    /// out everywhere ends the caller separately; a password change keeps it).
    pub fn all_but(user_id: i64, caller: Option<String>, reason: EndReason) -> Self {
        Self {
            user_id,
            session: None,
            except: caller.clone(),
            by: caller,
            reason,
            provider: None,
        }
    }

    pub(crate) fn concerns(&self, user_id: i64, handle: &str) -> bool {
        self.user_id == user_id
            && self.session.as_deref().is_none_or(|one| one == handle)
            && self.except.as_deref() != Some(handle)
    }
}

/// What a stream hears from the hub.
#[derive(Clone, Debug)]
pub(crate) enum Signal {
    Ended(SessionsEnded),
    /// Notifications may have been missed (the listener reconnected): re-read every session.
    Resync,
}

/// Fans session ends out to the open streams of every instance. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Hub {
    db: Database,
    max_lifetime: Duration,
    /// Open streams this instance holds at most, all users together (`EVENT_STREAM_MAX_TOTAL`):
    /// streams last minutes and accounts are free, so without a budget of their own a few dozen
    /// accounts could take every connection slot that ordinary requests need.
    max_streams: usize,
    local: broadcast::Sender<Signal>,
    /// Becomes `true` when the server shuts down, so open streams end and shutdown can finish.
    closing: watch::Sender<bool>,
    /// Open streams on this instance, per session handle and per user.
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One stream's subscription to the hub; its slot is given back when it is dropped.
pub(crate) struct Subscription {
    pub(crate) slot: Slot,
    pub(crate) news: broadcast::Receiver<Signal>,
    pub(crate) closing: watch::Receiver<bool>,
    /// How long the stream stays open (before its per-session spread).
    pub(crate) max_lifetime: Duration,
}

/// The count of every open stream on this instance, beside the per-session and per-user ones.
const ALL_STREAMS: &str = "all";

/// Which cap refused a stream.
pub(crate) enum Full {
    /// This session's or this user's: 429, the page backs off.
    Account,
    /// The instance's budget for streams: 503, the page retries later; ordinary requests still
    /// have their slots.
    Server,
}

/// One open stream's place in the counts; given back when the stream ends.
pub(crate) struct Slot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    keys: [String; 3],
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            if let Some(count) = open.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl Hub {
    /// `max_lifetime`: how long a stream stays open before it ends and the page opens a new one
    /// (`EVENT_STREAM_MAX_LIFETIME`, [`STREAM_MAX_LIFETIME`] by default). `max_streams`: how
    /// many may be open at once on this instance (`EVENT_STREAM_MAX_TOTAL`).
    pub fn new(db: &Database, max_lifetime: Duration, max_streams: usize) -> Self {
        Self {
            max_lifetime,
            max_streams,
            db: db.clone(),
            local: broadcast::channel(BUFFER).0,
            closing: watch::channel(false).0,
            open: Arc::default(),
        }
    }

    /// A new stream's place and ears: its slot in the counts, the news of ended sessions and
    /// the shutdown signal, or which cap is full. Subscribed before the stream reads its session
    /// row, so an end between the two is not missed.
    pub(crate) fn subscribe(&self, handle: &str, user_id: i64) -> Result<Subscription, Full> {
        let slot = self.open_slot(handle, user_id)?;
        Ok(Subscription {
            slot,
            news: self.local.subscribe(),
            closing: self.closing.subscribe(),
            max_lifetime: self.max_lifetime,
        })
    }

    /// Takes a place for one more stream of this session and user, or says which cap is full.
    fn open_slot(&self, handle: &str, user_id: i64) -> Result<Slot, Full> {
        let keys = [
            format!("session:{handle}"),
            format!("user:{user_id}"),
            ALL_STREAMS.to_owned(),
        ];
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = |key: &str| open.get(key).copied().unwrap_or(0);
        if count(&keys[0]) >= STREAMS_PER_SESSION || count(&keys[1]) >= STREAMS_PER_USER {
            return Err(Full::Account);
        }
        if count(ALL_STREAMS) >= self.max_streams {
            return Err(Full::Server);
        }
        for key in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        drop(open);
        Ok(Slot {
            open: Arc::clone(&self.open),
            keys,
        })
    }

    /// Tells every instance. Never fails the request that ended the sessions: they are already
    /// gone from the database, and streams that miss this find out at their next re-read.
    pub async fn publish(&self, ended: SessionsEnded) {
        match &self.db {
            Database::Sqlite(_) => {
                let _ = self.local.send(Signal::Ended(ended));
            }
            Database::Postgres(pool) => {
                let Ok(payload) = serde_json::to_string(&ended) else {
                    return;
                };
                let sent = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await;
                if let Err(error) = sent {
                    tracing::warn!(%error, "could not notify other instances of ended sessions");
                }
            }
        }
    }

    /// Ends every open stream (server shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Relays PostgreSQL notifications to this instance's streams, for as long as the process
    /// runs; reconnects when the connection drops and then tells every stream to re-read its
    /// session, because notifications sent meanwhile are lost. With SQLite there is nothing to
    /// relay and this returns at once.
    pub async fn relay(self) {
        let Database::Postgres(pool) = &self.db else {
            return;
        };
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut listener = match listen(pool).await {
                Ok(listener) => listener,
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for ended sessions; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            backoff = Duration::from_millis(250);
            let _ = self.local.send(Signal::Resync);
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        match serde_json::from_str::<SessionsEnded>(notification.payload()) {
                            Ok(ended) => {
                                let _ = self.local.send(Signal::Ended(ended));
                            }
                            Err(error) => {
                                tracing::warn!(%error, "ignored a malformed notification")
                            }
                        }
                    }
                    // Reconnected (eagerly) after losing the connection: catch up.
                    Ok(None) => {
                        tracing::info!("listener reconnected; streams re-read their sessions");
                        let _ = self.local.send(Signal::Resync);
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(error) => {
                        tracing::warn!(%error, "lost the listener connection; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(session: Option<&str>, except: Option<&str>) -> SessionsEnded {
        SessionsEnded {
            user_id: 7,
            session: session.map(str::to_owned),
            except: except.map(str::to_owned),
            by: None,
            reason: EndReason::Revoked,
            provider: None,
        }
    }

    #[test]
    fn an_end_concerns_exactly_the_sessions_it_names() {
        assert!(ended(Some("a"), None).concerns(7, "a"));
        assert!(!ended(Some("a"), None).concerns(7, "b"));
        assert!(!ended(Some("a"), None).concerns(8, "a"), "another user's");
        assert!(ended(None, None).concerns(7, "b"));
        assert!(ended(None, Some("a")).concerns(7, "b"));
        assert!(!ended(None, Some("a")).concerns(7, "a"), "the spared one");
    }
}
