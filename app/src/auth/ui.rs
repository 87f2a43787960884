//! The account panel: sign-in and create-account forms when signed out; the user and a sign-out
//! button when signed in. The signed-in user lives in one resource, [`AuthState::user`].

use leptos::{either::EitherOf3, ev::SubmitEvent, prelude::*};

use leptos::server_fn::ServerFn;

use super::{
    current_user,
    live::{self, EndReason, TabMessage},
    login, logout, register, validate, Login, Logout, Register, User,
};
use crate::error::AppError;

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
}

impl AuthState {
    fn new() -> Self {
        Self {
            user: Resource::new_blocking(|| (), |_| current_user()),
            notice: RwSignal::new(None),
            renewals: RwSignal::new(0),
        }
    }

    // The two below are called by the browser client (`live`), not by the server build.
    #[cfg_attr(not(feature = "browser"), allow(dead_code))]
    pub(crate) fn is_signed_in(&self) -> bool {
        matches!(self.user.get_untracked(), Some(Ok(Some(_))))
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
        if self.is_signed_in() {
            self.signed_out(reason.notice(same_browser));
        }
    }

    /// This tab's session continues under a new id (password changed here).
    pub(crate) fn renewed(&self) {
        self.renewals.update(|n| *n += 1);
        live::tell_other_tabs(TabMessage::Renewed);
    }

    /// Resets to the signed-out page. Everything the signed-in page held (the sessions and
    /// activity resources, form contents) belongs to components that unmount here and are
    /// dropped with them.
    pub(crate) fn signed_out(&self, notice: &str) {
        self.notice.set(Some(notice.to_owned()));
        self.user.set(Some(Ok(None)));
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

    view! {
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
    let error = move || action.value().get().and_then(Result::err);
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
            {move || {
                error().map(|error| view! { <p class="error" role="alert">{error.message}</p> })
            }}
        </form>
    }
}
