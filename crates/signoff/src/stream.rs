//! `GET /api/events`: the stream that tells a signed-in page its session ended (the browser side
//! is `auth::live`). Each stream hears the [`Hub`](super::hub::Hub) and re-reads its session row
//! at its expiry and every [`RECHECK_INTERVAL`], so a missed notification delays the news but
//! never loses it.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::Stream;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tower_sessions::session::Id;

use super::{
    hub::{Full, Signal, Slot, Subscription},
    AuthSession,
};
use crate::{
    error::AppError,
    session::{self, Store},
    signoff::Signoff,
    wire::{EndReason, SessionEndedEvent},
};

/// How often an open stream re-reads its session even without news.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Comment lines that keep idle proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// After the listener reconnects, each stream re-reads its session within this spread (by its
/// handle), not all at the same moment: a thousand streams must not empty the pool at once.
const RESYNC_SPREAD_MS: u64 = 10_000;

/// `GET /api/events`: a `text/event-stream` for the signed-in session of the request.
///
/// * `ready` first (the page marks itself live),
/// * `session-ended` with [`SessionEndedEvent`] JSON when the session ends; then the stream ends,
/// * comment lines every 15 s to keep proxies from timing it out.
///
/// 401 without a live session: a revoked or expired cookie cannot open a stream. The request does
/// not count as activity (see `session::refresh_expiry`), so an open page never keeps an idle
/// session alive.
pub async fn stream(State(state): State<Signoff>, auth: AuthSession) -> Response {
    let (Some(user), Some(id)) = (auth.user.as_ref(), auth.session.id()) else {
        return AppError::not_signed_in().into_response();
    };
    let handle = session::handle(&id);
    // Subscribed before reading the row, so an end between the two is not missed.
    let Subscription {
        slot,
        news,
        closing,
        max_lifetime,
    } = match state.events.subscribe(&handle, user.id) {
        Ok(subscription) => subscription,
        Err(Full::Account) => {
            tracing::info!(user_id = user.id, "too many open event streams");
            return AppError::too_many_streams().into_response();
        }
        Err(Full::Server) => {
            tracing::warn!("the instance's budget of event streams is used up");
            return AppError::streams_full().into_response();
        }
    };
    let store = state.store.clone();
    let expiry = match store.expiry_of(&id).await {
        Ok(Some(expiry)) => expiry,
        Ok(None) => return AppError::not_signed_in().into_response(),
        Err(error) => {
            tracing::warn!(%error, "could not open an event stream");
            return AppError::unavailable().into_response();
        }
    };
    // Spread by up to a tenth (at most a minute), per session, so streams opened together do
    // not all reconnect together.
    let spread = (max_lifetime / 10).min(Duration::from_secs(60));
    let lifetime = max_lifetime + spread.mul_f64(jitter_ms(&handle) as f64 / 3_000.0);
    let watch = Watch {
        user_id: user.id,
        handle,
        id,
        ends_at: tokio::time::Instant::now() + lifetime,
        _slot: slot,
        expiry,
        store,
        news,
        closing,
    };
    let mut response = Sse::new(watch.into_stream())
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // nginx and some other proxies buffer responses by default, which would hold events back.
    response.headers_mut().insert(
        http::HeaderName::from_static("x-accel-buffering"),
        http::HeaderValue::from_static("no"),
    );
    response
}

/// One open stream's view of its session.
struct Watch {
    user_id: i64,
    id: Id,
    handle: String,
    /// When the stream ends of its own accord (`Hub::max_lifetime`, spread per session).
    ends_at: tokio::time::Instant,
    _slot: Slot,
    expiry: OffsetDateTime,
    store: Store,
    news: broadcast::Receiver<Signal>,
    closing: watch::Receiver<bool>,
}

impl Watch {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        let ready = Event::default()
            .event("ready")
            // The browser's own reconnection delay, spread so that a restart is not a stampede.
            .retry(Duration::from_millis(2_000 + jitter_ms(&self.handle)))
            .data("{}");
        let first = futures::stream::once(async move { Ok(ready) });
        let rest = futures::stream::unfold(Some(self), |watch| async move {
            let ended = watch?.next_end().await?;
            Some((Ok(ended_event(ended)), None))
        });
        futures::StreamExt::chain(first, rest)
    }

    /// Waits until the session ends and says why, or `None` when the server shuts down.
    async fn next_end(mut self) -> Option<SessionEndedEvent> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let until_expiry = (self.expiry - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO);
            let wait = until_expiry.min(RECHECK_INTERVAL);
            tokio::select! {
                _ = self.closing.changed() => return None,
                _ = tokio::time::sleep_until(self.ends_at) => return None,
                news = self.news.recv() => match news {
                    Ok(Signal::Ended(ended)) if ended.concerns(self.user_id, &self.handle) => {
                        return Some(SessionEndedEvent {
                            reason: ended.reason,
                            same_session: ended.by.as_deref() == Some(self.handle.as_str()),
                            provider: ended.provider,
                        });
                    }
                    Ok(Signal::Ended(_)) => continue,
                    Ok(Signal::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Every stream heard this at once: spread the re-reads out.
                        let delay = Duration::from_millis(resync_delay_ms(&self.handle));
                        tokio::select! {
                            _ = self.closing.changed() => return None,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            if let Some(reason) = self.reread().await {
                return Some(SessionEndedEvent {
                    reason,
                    same_session: false,
                    provider: None,
                });
            }
        }
    }

    /// Reads the session row again: `Some(reason)` if it is gone.
    async fn reread(&mut self) -> Option<EndReason> {
        match self.store.expiry_of(&self.id).await {
            Ok(Some(expiry)) => {
                // Other requests of the session (other tabs) may have extended it.
                self.expiry = expiry;
                None
            }
            Ok(None) if OffsetDateTime::now_utc() >= self.expiry => Some(EndReason::Expired),
            Ok(None) => Some(EndReason::Ended),
            Err(error) => {
                // The database is unavailable: that is not the session ending. Keep the stream,
                // try again at the next interval.
                tracing::debug!(%error, "could not re-read a streamed session");
                self.expiry = OffsetDateTime::now_utc() + RECHECK_INTERVAL;
                None
            }
        }
    }
}

fn ended_event(ended: SessionEndedEvent) -> Event {
    let data = serde_json::to_string(&ended).unwrap_or_else(|_| "{}".into());
    Event::default().event("session-ended").data(data)
}

/// 0–3 s, fixed per session: spreads reconnections without a random-number generator.
fn jitter_ms(handle: &str) -> u64 {
    let byte = u64::from_str_radix(handle.get(..2).unwrap_or("0"), 16).unwrap_or(0);
    byte * 3_000 / 255
}

/// 0–10 s, fixed per session (its handle is a hash, so these are spread evenly).
fn resync_delay_ms(handle: &str) -> u64 {
    let word = u64::from_str_radix(handle.get(2..6).unwrap_or("0"), 16).unwrap_or(0);
    word * RESYNC_SPREAD_MS / 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_three_seconds() {
        assert_eq!(jitter_ms("00ab"), 0);
        assert_eq!(jitter_ms("ffab"), 3_000);
        assert_eq!(jitter_ms(""), 0);
    }
}
