//! Sign-out that reaches every open page at once, with no reload.
//!
//! Two paths, because they reach different places:
//!
//! * **Other tabs of this browser** share the cookie, so they share the session. The tab that
//!   signs in or out says so on a `BroadcastChannel`; the others update their user signal in the
//!   same event-loop turn, without asking the server.
//! * **Other devices** hold other sessions. Each signed-in page keeps a server-sent-events stream
//!   open (`GET /api/events`, opened with gloo-net's `EventSource`). When the server ends a
//!   session (revoked, signed out everywhere, password changed, expired) it pushes
//!   `session-ended` to that session's streams. The server side is `ssr::events`.
//!
//! The stream is only a messenger: it never extends a session (the server does not count it as
//! activity), a cookie whose session is gone cannot open one (401), and when it breaks the page
//! asks `GET /api/me` before reconnecting, with exponential backoff, so a dead session is noticed
//! rather than retried forever.

pub use super::tabs::tell_other_tabs;
pub use super::wire::{EndReason, SessionEndedEvent, TabMessage, EVENTS_PATH, TAB_CHANNEL};

/// Starts following the session in the browser: the tab channel and, while signed in, the
/// event stream. Call once, in the component that owns [`AuthState`](super::state::AuthState).
pub fn follow(auth: super::state::AuthState) {
    #[cfg(feature = "browser")]
    client::follow(auth);
    #[cfg(not(feature = "browser"))]
    let _ = auth;
}

#[cfg(feature = "browser")]
mod client {
    use std::time::Duration;

    use futures::{
        future::{AbortHandle, Abortable},
        StreamExt,
    };
    use gloo_net::eventsource::futures::EventSource;
    use leptos::{prelude::*, task::spawn_local};
    use wasm_bindgen::{prelude::Closure, JsCast};

    use crate::{
        current_user,
        state::AuthState,
        tabs,
        wire::{EndReason, SessionEndedEvent, TabMessage, EVENTS_PATH},
    };

    /// The longest wait between reconnection attempts.
    const MAX_BACKOFF_MS: u32 = 30_000;

    pub(super) fn follow(auth: AuthState) {
        listen_to_other_tabs(auth);
        recheck_when_restored(auth);

        // One stream while signed in; a new one when the session is renewed. Dropping the task
        // (abort) drops the EventSource, which closes the connection.
        let signed_in = Memo::new(move |_| matches!(auth.user.get(), Some(Ok(Some(_)))));
        Effect::new(move |previous: Option<Option<AbortHandle>>| {
            let _ = auth.renewals.get();
            if let Some(Some(task)) = previous {
                task.abort();
            }
            if !signed_in.get() {
                set_status("off");
                return None;
            }
            let (task, registration) = AbortHandle::new_pair();
            spawn_local(async move {
                let _ = Abortable::new(follow_stream(auth), registration).await;
            });
            Some(task)
        });
    }

    fn listen_to_other_tabs(auth: AuthState) {
        tabs::open(move |message| match message {
            TabMessage::SignedOut(reason) => auth.ended_elsewhere(reason, true),
            // Signed in there: this tab shares the cookie, so ask who it is now (it may be
            // someone else than this page shows).
            TabMessage::SignedIn => spawn_local(recheck(auth)),
            TabMessage::Renewed => auth.renewals.update(|n| *n += 1),
        });
    }

    /// Asks the server who this browser is signed in as, and makes the page agree: signed
    /// out, someone else, or (after a renewal elsewhere) the same user on a new stream.
    async fn recheck(auth: AuthState) {
        let shown = match auth.user.get_untracked() {
            Some(Ok(user)) => user,
            // Still loading or failed to load: that view asks by itself.
            _ => return,
        };
        match (current_user().await, shown) {
            (Ok(None), Some(_)) => auth.ended_elsewhere(EndReason::Ended, false),
            (Ok(Some(user)), None) => auth.user.set(Some(Ok(Some(user)))),
            (Ok(Some(user)), Some(was)) if user.id != was.id => auth.switched_to(user),
            // Same user: the session may have a new id (and another way in), so listen again.
            (Ok(Some(user)), Some(was)) => {
                if user != was {
                    auth.user.set(Some(Ok(Some(user))));
                }
                auth.renewals.update(|n| *n += 1);
            }
            (Ok(None), None) | (Err(_), _) => {}
        }
    }

    /// A page restored from the back/forward cache shows what it showed when it was left; the
    /// session may have ended since (elsewhere, or by time), and its event stream was closed
    /// meanwhile. So check again at once when the page comes back (`pageshow` with `persisted`).
    fn recheck_when_restored(auth: AuthState) {
        let on_pageshow = Closure::<dyn FnMut(web_sys::PageTransitionEvent)>::new(
            move |event: web_sys::PageTransitionEvent| {
                if event.persisted() {
                    spawn_local(recheck(auth));
                }
            },
        );
        let _ = window()
            .add_event_listener_with_callback("pageshow", on_pageshow.as_ref().unchecked_ref());
        // The listener lives as long as the page.
        on_pageshow.forget();
    }

    /// How one connection ended.
    enum Outcome {
        /// The server said the session ended.
        Ended(SessionEndedEvent),
        /// The connection was refused or closed; `opened` if it had said `ready` first.
        Lost { opened: bool },
    }

    /// Keeps a stream open for as long as the session lives, reconnecting with backoff.
    async fn follow_stream(auth: AuthState) {
        let mut backoff_ms = 1_000;
        loop {
            set_status("connecting");
            match listen_once().await {
                Outcome::Ended(event) if event.reason != EndReason::Ended => {
                    set_status("off");
                    auth.ended_elsewhere_by(event.reason, event.same_session, event.provider);
                    return;
                }
                // The server cannot say why: ask, at once.
                Outcome::Ended(_) => {}
                Outcome::Lost { opened } => {
                    if opened {
                        backoff_ms = 1_000;
                    }
                    set_status("reconnecting");
                    sleep(backoff_ms).await;
                    backoff_ms = (backoff_ms * 2).min(MAX_BACKOFF_MS);
                }
            }
            // Is the session still alive? Only then open another stream.
            match current_user().await {
                Ok(None) => {
                    set_status("off");
                    auth.ended_elsewhere(EndReason::Ended, false);
                    return;
                }
                Ok(Some(user)) => {
                    // Signed in as someone else meanwhile (another tab signed in over it)?
                    if auth.user.get_untracked() != Some(Ok(Some(user.clone()))) {
                        auth.user.set(Some(Ok(Some(user))));
                    }
                }
                // The server or its database is unavailable: keep the page as it is, retry.
                Err(_) => {}
            }
        }
    }

    async fn listen_once() -> Outcome {
        let Ok(mut source) = EventSource::new(EVENTS_PATH) else {
            return Outcome::Lost { opened: false };
        };
        let (Ok(ready), Ok(ended)) = (source.subscribe("ready"), source.subscribe("session-ended"))
        else {
            return Outcome::Lost { opened: false };
        };
        let mut events = futures::stream::select(ready, ended);
        let mut opened = false;
        while let Some(event) = events.next().await {
            match event {
                Ok((kind, _)) if kind == "ready" => {
                    opened = true;
                    set_status("connected");
                }
                Ok((_, message)) => {
                    let data = message.data().as_string().unwrap_or_default();
                    let event = serde_json::from_str(&data).unwrap_or(SessionEndedEvent {
                        reason: EndReason::Ended,
                        same_session: false,
                        provider: None,
                    });
                    return Outcome::Ended(event);
                }
                // Refused (401, 503) or closed by the server. While the browser is reconnecting
                // on its own (network blip, server restart), gloo-net reports nothing.
                Err(_) => return Outcome::Lost { opened },
            }
        }
        Outcome::Lost { opened }
    }

    /// `data-live` on `<body>`: "connecting", "connected", "reconnecting" or "off". For people
    /// debugging, and for the end-to-end tests, which wait for "connected".
    fn set_status(status: &str) {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-live", status);
        }
    }

    async fn sleep(ms: u32) {
        let (done, wait) = futures::channel::oneshot::channel::<()>();
        set_timeout(
            move || {
                let _ = done.send(());
            },
            Duration::from_millis(u64::from(ms)),
        );
        let _ = wait.await;
    }
}
