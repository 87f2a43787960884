//! The tab channel: how a tab tells the app's other tabs in this browser that it signed in, out,
//! or renewed its session (a `BroadcastChannel` named `wire::TAB_CHANNEL`). They share the
//! cookie, so they share the session; `live` decides what a tab does with a message.

use super::wire::TabMessage;

/// Tells the app's other tabs in this browser. Does nothing on the server, or before `open`.
pub fn tell_other_tabs(message: TabMessage) {
    #[cfg(feature = "browser")]
    channel::post(message);
    #[cfg(not(feature = "browser"))]
    let _ = message;
}

/// Opens this tab's end of the channel and hands every well-formed message from the other tabs
/// to `on_message`. Call once per page.
#[cfg(feature = "browser")]
pub fn open(on_message: impl FnMut(TabMessage) + 'static) {
    channel::open(on_message);
}

#[cfg(feature = "browser")]
mod channel {
    use std::cell::RefCell;

    use wasm_bindgen::{prelude::Closure, JsCast};

    use super::TabMessage;
    use crate::wire::TAB_CHANNEL;

    thread_local! {
        /// This tab's end of the channel (the browser runs the app on one thread).
        static CHANNEL: RefCell<Option<web_sys::BroadcastChannel>> = const { RefCell::new(None) };
    }

    pub(super) fn post(message: TabMessage) {
        CHANNEL.with(|channel| {
            if let Some(channel) = channel.borrow().as_ref() {
                let _ = channel.post_message(&message.encode().into());
            }
        });
    }

    pub(super) fn open(mut on_message: impl FnMut(TabMessage) + 'static) {
        let Ok(channel) = web_sys::BroadcastChannel::new(TAB_CHANNEL) else {
            // No BroadcastChannel (very old browser): the event stream still reaches this tab.
            return;
        };
        let handler = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(message) = event
                    .data()
                    .as_string()
                    .as_deref()
                    .and_then(TabMessage::decode)
                {
                    on_message(message);
                }
            },
        );
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        // The handler lives as long as the page, like the channel.
        handler.forget();
        CHANNEL.with(|slot| *slot.borrow_mut() = Some(channel));
    }
}
