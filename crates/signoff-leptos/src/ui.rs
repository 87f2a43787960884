//! The account panel: sign-in and create-account forms when signed out; the user and a sign-out
//! button when signed in. The signed-in user lives in one resource, [`AuthState::user`].

use leptos::{either::EitherOf3, ev::SubmitEvent, prelude::*};

use leptos::server_fn::ServerFn;

pub use super::state::AuthState;
use super::{
    live, login, logout, register, validate,
    wire::{EndReason, User},
    Login, Logout, Register,
};
use crate::{
    error::AppError,
    landing::{FormError, OIDC_LINK, OIDC_LOGIN},
};

/// The whole account UI: the sign-in and create-account forms when signed out; "Signed in as",
/// the Sign out button and the Security section when signed in. It provides
/// [`AuthState`](crate::state::AuthState) to everything inside it and keeps every tab of the
/// session in step (no redirect, no reload).
#[component]
pub fn AccountPanel() -> impl IntoView {
    let auth = AuthState::new();
    provide_context(auth);
    live::follow(auth);

    super::boxed_on_server(view! {
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
    })
}

#[component]
fn LoadFailed(error: AppError) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    super::boxed_on_server(view! {
        <section class="card">
            <p class="error" role="alert">{error.message}</p>
            <button type="button" class="btn" on:click=move |_| auth.user.refetch()>
                "Try again"
            </button>
        </section>
    })
}

#[component]
fn SignedIn(user: User) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let no_password = user.no_password;
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

    super::boxed_on_server(view! {
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
            {user.provider.map(|provider| view! { <super::oidc_ui::ProviderSignOut provider /> })}
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
        <super::security_ui::SecurityPanel no_password />
    })
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

    super::boxed_on_server(view! {
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
        <super::passkeys::PasskeySignIn />
        <super::oidc_ui::ProviderSignIn />
    })
}

/// "Sign up with a passkey" (no password), for the name typed in the create form; shown
/// where the browser can make passkeys.
#[component]
fn CreateWithPasskey(username: RwSignal<String>) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let shown = super::passkeys::can_create();
    let create =
        Action::new(move |name: &String| super::passkeys::create_account(name.clone(), auth));
    let pending = create.pending();
    super::boxed_on_server(view! {
        <Show when=move || shown.get()>
            <button type="button" class="btn" disabled=pending on:click=move |_| {
                create.dispatch(username.get_untracked());
            }>
                {move || if pending.get() { "Waiting for your passkey…" } else { "Sign up with a passkey" }}
            </button>
            {move || create.value().get().and_then(Result::err).map(|error| view! { <p class="error" role="alert">{error.message}</p> })}
        </Show>
    })
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

    super::boxed_on_server(view! {
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
                // The sign-in form's field also offers the site's passkeys (conditional
                // mediation, `passkeys::PasskeySignIn`).
                autocomplete=if new_account { "username" } else { "username webauthn" }
                on:focus=move |_| {
                    if !new_account {
                        super::passkeys::offer_autofill(auth);
                    }
                }
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
            {new_account.then(|| view! { <CreateWithPasskey username /> })}
            {move || error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {(!new_account).then(|| view! { <p class="hint"><a href="/forgot">"Forgot your password?"</a></p> })}
        </form>
    })
}
