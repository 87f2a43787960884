//! The page's sign-in state: who is signed in, the notice to show, the stream's renewals, and
//! what a native form post landed with. One [`AuthState`] per page, shared through context; the
//! forms, the live client and the Security section all change it through its methods, so what
//! happens to the page at sign-in and sign-out is written here once.

use std::{future::Future, pin::Pin, sync::Arc};

use leptos::prelude::*;

use super::{
    current_user, tabs,
    wire::{EndReason, TabMessage, User},
};
use crate::{
    error::{AppError, ErrorCode},
    landing::Landing,
};

type UserResult = Result<Option<User>, AppError>;

/// The one source of truth in the browser for who is signed in, shared through context.
#[derive(Clone, Copy)]
pub struct AuthState {
    /// Loaded on the server while rendering (so the first paint is already right), then set
    /// directly by sign-in and sign-out: those never navigate or reload.
    pub user: Resource<UserResult>,
    /// A short polite message for screen readers and eyes ("You signed out.").
    pub notice: RwSignal<Option<String>>,
    /// Bumped when the session continues under a new id, so the event stream reopens with it.
    pub renewals: RwSignal<u32>,
    /// What a form posted without JavaScript came back with (`crate::landing`). Read on the
    /// server while rendering; the browser gets it with the page.
    pub landing: Resource<Landing>,
}

impl AuthState {
    pub(crate) fn new() -> Self {
        Self {
            user: Resource::new_blocking(|| (), |_| current_user()),
            notice: RwSignal::new(None),
            renewals: RwSignal::new(0),
            landing: Resource::new_blocking(|| (), |_| read_landing()),
        }
    }

    // The two below are called by the browser client (`live`), not by the server build.
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn is_signed_in(&self) -> bool {
        matches!(self.user.get_untracked(), Some(Ok(Some(_))))
    }

    /// The message a native post of one of `forms` (their endpoints) landed with, if any.
    /// Tracked: call it inside the view.
    pub(crate) fn landed_error(&self, forms: &[&str]) -> Option<String> {
        self.landing
            .get()
            .and_then(|landing| landing.error)
            .filter(|error| forms.contains(&error.endpoint.as_str()))
            .map(|error| error.message)
    }

    /// This tab signed in: show the user, and tell the other tabs (they share the cookie).
    pub(crate) fn signed_in(&self, user: User) {
        self.notice.set(None);
        self.user.set(Some(Ok(Some(user))));
        tabs::tell_other_tabs(TabMessage::SignedIn);
    }

    /// This tab ended the session: show the signed-out page, and tell the other tabs at once.
    pub(crate) fn ended_here(&self, reason: EndReason, notice: &str) {
        self.signed_out(notice);
        tabs::tell_other_tabs(TabMessage::SignedOut(reason));
    }

    /// The session was ended by another tab, another device, or time. Only the first word
    /// counts: a page already signed out keeps its notice.
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn ended_elsewhere(&self, reason: EndReason, same_browser: bool) {
        self.ended_elsewhere_by(reason, same_browser, None);
    }

    /// [`Self::ended_elsewhere`], by the provider named (back-channel logout).
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn ended_elsewhere_by(
        &self,
        reason: EndReason,
        same_browser: bool,
        provider: Option<String>,
    ) {
        if self.is_signed_in() {
            self.signed_out(&reason.notice_from(same_browser, provider.as_deref()));
        }
    }

    /// This tab's session continues under a new id (password changed here).
    pub(crate) fn renewed(&self) {
        self.renewals.update(|n| *n += 1);
        tabs::tell_other_tabs(TabMessage::Renewed);
    }

    /// Another request of this browser signed in as `user` over this page's session (another
    /// tab, a form post): nothing of the previous user stays, and the page shows the new one.
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn switched_to(&self, user: User) {
        self.signed_out(EndReason::Replaced.notice(true));
        self.user.set(Some(Ok(Some(user))));
        // The page stays signed in, so its stream would stay on the replaced session: reopen it.
        self.renewals.update(|n| *n += 1);
    }

    /// Resets to the signed-out page. Everything the signed-in page held (the sessions and
    /// activity resources, form contents) belongs to components that unmount here and are
    /// dropped with them; what the server rendered into the page for hydration is erased too.
    pub(crate) fn signed_out(&self, notice: &str) {
        self.notice.set(Some(notice.to_owned()));
        self.user.set(Some(Ok(None)));
        // What the page landed with is used up; the providers it offers stay.
        self.landing.update(|landing| {
            if let Some(landing) = landing {
                *landing = Landing {
                    providers: std::mem::take(&mut landing.providers),
                    ..Landing::default()
                };
            }
        });
        forget_server_rendered_data();
    }
}

/// The landing of this page render: on the server, read from the request. A client-side-rendered
/// app (which always has JavaScript) lands with nothing, and asks for the providers.
async fn read_landing() -> Landing {
    #[cfg(feature = "ssr")]
    return crate::landing::take();
    #[cfg(feature = "csr")]
    return Landing {
        providers: super::oidc::list_providers().await.unwrap_or_default(),
        ..Landing::default()
    };
    #[cfg(not(any(feature = "ssr", feature = "csr")))]
    Landing::default()
}

/// The server-rendered page carries its data twice more, for hydration: in its inline scripts
/// and in `window.__RESOLVED_RESOURCES`. Both have served their purpose once the page is
/// interactive; after a sign-out they would be the signed-in user's name, sessions, devices and
/// addresses, still readable in the page. Empty the arrays in place (the wasm holds references to
/// the same objects) and remove the inline scripts (they have run; removing them undoes nothing).
fn forget_server_rendered_data() {
    #[cfg(feature = "browser")]
    {
        use wasm_bindgen::JsCast;
        let window = window();
        for name in [
            "__RESOLVED_RESOURCES",
            "__SERIALIZED_ERRORS",
            "__PENDING_RESOURCES",
            "__INCOMPLETE_CHUNKS",
        ] {
            if let Ok(value) = js_sys::Reflect::get(&window, &name.into()) {
                if let Some(array) = value.dyn_ref::<js_sys::Array>() {
                    array.set_length(0);
                }
            }
        }
        if let Ok(scripts) = document().query_selector_all("script:not([src])") {
            for index in 0..scripts.length() {
                if let Some(element) = scripts
                    .item(index)
                    .and_then(|node| node.dyn_into::<web_sys::Element>().ok())
                {
                    element.remove();
                }
            }
        }
    }
}

/// What a change of the ways in answered: the notice to show when it worked (none when the
/// change tells the page itself), or why not.
pub(crate) type ChangeAnswer = Result<Option<String>, AppError>;

/// A change of the ways in, ready to run, and to run again after "Confirm it's you".
#[derive(Clone)]
pub(crate) struct Change(
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ChangeAnswer> + Send>> + Send + Sync>,
);

impl Change {
    pub(crate) fn new<F>(run: impl Fn() -> F + Send + Sync + 'static) -> Self
    where
        F: Future<Output = ChangeAnswer> + Send + 'static,
    {
        Self(Arc::new(move || Box::pin(run())))
    }
}

/// A section's changes of the ways in ([`StepUp::action`]): its value is `None` while a change
/// waits for "Confirm it's you", else the last answer.
pub(crate) type ChangeAction = Action<Change, Option<ChangeAnswer>>;

/// "Confirm it's you": a change of the ways in answered `reauthentication_required` (the session's
/// last proof of identity is too old, `signoff::stepup`). The section opens a prompt (the password,
/// or a passkey); once confirmed, the change is carried on with, with nothing typed again.
#[derive(Clone, Copy)]
pub struct StepUp {
    resume: StoredValue<Option<Callback<()>>>,
    pub(crate) open: RwSignal<bool>,
}

impl StepUp {
    pub(crate) fn new() -> Self {
        Self {
            resume: StoredValue::new(None),
            open: RwSignal::new(false),
        }
    }

    /// Opens the prompt; `resume` runs once the person has confirmed.
    pub fn ask(&self, resume: Callback<()>) {
        self.resume.set_value(Some(resume));
        self.open.set(true);
    }

    /// A section's action for its changes of the ways in: when the server answers
    /// `reauthentication_required`, it opens the prompt and, once the person has confirmed, runs
    /// the same change again, with nothing typed again. One type for every section (not one per
    /// section's input), so the browser bundle holds the action's code once.
    pub(crate) fn action(self) -> ChangeAction {
        // The action dispatches itself again: set once it exists.
        let again = StoredValue::new(None::<ChangeAction>);
        let action = Action::new(move |change: &Change| {
            let change = change.clone();
            let answer = (change.0)();
            async move {
                match answer.await {
                    Err(error) if error.code == ErrorCode::ReauthenticationRequired => {
                        if let Some(again) = again.get_value() {
                            self.ask(Callback::new(move |_| {
                                again.dispatch(change.clone());
                            }));
                        }
                        None
                    }
                    answer => Some(answer),
                }
            }
        });
        again.set_value(Some(action));
        action
    }

    pub(crate) fn confirmed(&self) {
        self.open.set(false);
        if let Some(resume) = self.resume.get_value() {
            self.resume.set_value(None);
            resume.run(());
        }
    }
}

/// "2026-11-25 03:33 UTC" from an RFC 3339 UTC timestamp; the same on server and browser, so
/// hydration matches.
pub(crate) fn when(at: Option<&str>) -> String {
    match at {
        Some(at) if at.len() >= 16 => format!("{} UTC", at[..16].replace('T', " ")),
        _ => "unknown".into(),
    }
}
