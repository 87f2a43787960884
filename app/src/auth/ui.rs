//! The account panel: sign-in and create-account forms when signed out; the user and a sign-out
//! button when signed in. The signed-in user lives in one resource, [`AuthState::user`].

use leptos::{either::EitherOf3, ev::SubmitEvent, prelude::*};

use leptos::server_fn::ServerFn;

use super::{
    current_user, live, login, logout, register, validate,
    wire::{EndReason, TabMessage},
    Login, Logout, Register, User,
};
use crate::{
    error::AppError,
    landing::{FormError, Landing, OIDC_LINK, OIDC_LOGIN},
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
    fn new() -> Self {
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
        live::tell_other_tabs(TabMessage::SignedIn);
    }

    /// This tab ended the session: show the signed-out page, and tell the other tabs at once.
    pub(crate) fn ended_here(&self, reason: EndReason, notice: &str) {
        self.signed_out(notice);
        live::tell_other_tabs(TabMessage::SignedOut(reason));
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
        live::tell_other_tabs(TabMessage::Renewed);
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

#[component]
pub fn AccountPanel() -> impl IntoView {
    let auth = AuthState::new();
    provide_context(auth);
    live::follow(auth);

    view! {
        <p class="notice" role="status" aria-live="polite">{move || auth.notice.get()}</p>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                auth.user
                    .get()
                    .map(|state| match state {
                        Ok(Some(user)) => EitherOf3::A(view! { <SignedIn user /> }),
                        Ok(None) => EitherOf3::B(view! { <SignedOut /> }),
                        Err(error) => EitherOf3::C(view! { <LoadFailed error /> }),
                    })
            }}
        </Suspense>
    }
}

#[component]
fn LoadFailed(error: AppError) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    view! {
        <section class="card">
            <p class="error" role="alert">{error.message}</p>
            <button type="button" class="btn" on:click=move |_| auth.user.refetch()>
                "Try again"
            </button>
        </section>
    }
}

#[component]
fn SignedIn(user: User) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let sign_out = Action::new(move |_: &()| async move {
        let result = logout().await;
        if result.is_ok() {
            auth.ended_here(EndReason::SignedOut, "You signed out.");
        }
        result
    });
    let pending = sign_out.pending();
    let error = move || sign_out.value().get().and_then(Result::err);
    // A form of this page posted without JavaScript and failed (sign-out or a Security form).
    let landed_error = move || {
        auth.landing
            .get()
            .and_then(|landing| landing.error)
            .filter(|error| {
                !matches!(
                    error.endpoint.as_str(),
                    "login" | "register" | "unlink_provider" | OIDC_LOGIN | OIDC_LINK
                )
            })
            .filter(|_| sign_out.value().get().is_none())
    };

    view! {
        <section class="card" aria-labelledby="account-heading">
            <h2 id="account-heading">"Your account"</h2>
            <p class="who">"Signed in as " <strong>{user.username}</strong></p>
            // A real form, so sign-out also works before the wasm has loaded; once hydrated,
            // submission is intercepted and nothing navigates.
            <form
                method="post"
                action={<Logout as ServerFn>::PATH}
                on:submit=move |event: SubmitEvent| {
                    event.prevent_default();
                    sign_out.dispatch(());
                }
            >
                <button
                    type="submit"
                    class="btn"
                    disabled=pending
                    aria-busy=move || pending.get().to_string()
                >
                    {move || if pending.get() { "Signing out…" } else { "Sign out" }}
                </button>
            </form>
            {user.provider.map(|provider| view! { <super::oidc::ProviderSignOut provider /> })}
            {move || {
                error()
                    .map(|error| {
                        view! {
                            <p class="error" role="alert">
                                "Sign-out failed: "
                                {error.message}
                            </p>
                        }
                    })
            }}
            {move || {
                landed_error()
                    .map(|FormError { endpoint, message }| {
                        let prefix = if endpoint == "logout" { "Sign-out failed: " } else { "" };
                        view! { <p class="error" role="alert">{prefix} {message}</p> }
                    })
            }}
        </section>
        <super::security_ui::SecurityPanel />
    }
}

#[component]
fn SignedOut() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let sign_in = Action::new(move |(username, password): &(String, String)| {
        let (username, password) = (username.clone(), password.clone());
        async move {
            let result = login(username, password).await;
            if let Ok(user) = &result {
                auth.signed_in(user.clone());
            }
            result
        }
    });
    let create = Action::new(move |(username, password): &(String, String)| {
        let (username, password) = (username.clone(), password.clone());
        async move {
            let result = register(username, password).await;
            if let Ok(user) = &result {
                auth.signed_in(user.clone());
            }
            result
        }
    });

    // Landed here after signing out without JavaScript (`/?signed-out`).
    let landed_signed_out = move || {
        auth.notice.get().is_none() && auth.landing.get().is_some_and(|landing| landing.signed_out)
    };

    view! {
        {move || {
            landed_signed_out()
                .then(|| view! { <p class="notice" role="status">"You signed out."</p> })
        }}
        <div class="forms">
            <CredentialsForm
                id="sign-in"
                endpoint={<Login as ServerFn>::PATH}
                heading="Sign in"
                submit="Sign in"
                pending_label="Signing in…"
                new_account=false
                action=sign_in
            />
            <CredentialsForm
                id="create-account"
                endpoint={<Register as ServerFn>::PATH}
                heading="Create account"
                submit="Create account"
                pending_label="Creating account…"
                new_account=true
                action=create
            />
        </div>
        <super::oidc::ProviderSignIn />
    }
}

/// A username + password form. `new_account` switches autocomplete hints and shows the rules.
#[component]
fn CredentialsForm(
    id: &'static str,
    /// Where the form posts if submitted before hydration (progressive enhancement).
    endpoint: &'static str,
    heading: &'static str,
    submit: &'static str,
    pending_label: &'static str,
    new_account: bool,
    action: Action<(String, String), Result<User, AppError>>,
) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let pending = action.pending();
    let auth = expect_context::<AuthState>();
    let name = endpoint.trim_start_matches("/api/");
    // The error of this form's last native post (no JavaScript), until it is used in the page.
    let landed_error = move || auth.landed_error(&[name]);
    let error = move || match action.value().get() {
        Some(result) => result.err().map(|error| error.message),
        None => landed_error(),
    };
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        action.dispatch((username.get_untracked(), password.get_untracked()));
        // The password is not kept in the page any longer than the request needs it.
        password.set(String::new());
    };
    let hint_id = format!("{id}-password-hint");

    view! {
        <form
            class="card"
            method="post"
            action=endpoint
            aria-labelledby=format!("{id}-heading")
            on:submit=on_submit
            novalidate
        >
            <h2 id=format!("{id}-heading")>{heading}</h2>
            <label for=format!("{id}-username")>"Username"</label>
            <input
                id=format!("{id}-username")
                name="username"
                type="text"
                autocomplete="username"
                autocapitalize="none"
                spellcheck="false"
                required
                bind:value=username
            />
            <label for=format!("{id}-password")>"Password"</label>
            <input
                id=format!("{id}-password")
                name="password"
                type="password"
                autocomplete=if new_account { "new-password" } else { "current-password" }
                aria-describedby=new_account.then(|| hint_id.clone())
                required
                bind:value=password
            />
            {new_account
                .then(|| {
                    view! {
                        <p class="hint" id=hint_id.clone()>
                            {format!(
                                "At least {} characters. Spaces and any characters are welcome.",
                                validate::PASSWORD_MIN_CHARS,
                            )}
                        </p>
                    }
                })}
            <button type="submit" class="btn primary" disabled=pending>
                {move || if pending.get() { pending_label } else { submit }}
            </button>
            {move || error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
        </form>
    }
}
