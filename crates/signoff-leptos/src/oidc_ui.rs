//! The single sign-on buttons: "Sign in with NAME" on the signed-out page, "Sign out of NAME
//! too" beside Sign out, and the "Ways to sign in" part of the Security section. The server
//! functions they use are in `oidc`.

use leptos::{prelude::*, server_fn::ServerFn};

use super::{
    oidc::{list_sign_in_methods, UnlinkProvider},
    state::AuthState,
    LogoutProvider,
};
use crate::landing::{OIDC_LINK, OIDC_LOGIN};

/// "Sign in with NAME", one button per provider, on the signed-out page. Each is a plain form
/// post (no interception): the browser goes to the provider and comes back signed in.
#[component]
pub fn ProviderSignIn() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    move || {
        let providers = auth.landing.get().map(|landing| landing.providers)?;
        (!providers.is_empty()).then(|| {
            view! {
                <section class="card sso" aria-labelledby="sso-heading">
                    <h2 id="sso-heading">"Single sign-on"</h2>
                    {providers
                        .into_iter()
                        .map(|provider| {
                            view! {
                                <form method="post" action=format!("/api/oidc/{}/start", provider.id)>
                                    <button type="submit" class="btn">
                                        "Sign in with " {provider.name}
                                    </button>
                                </form>
                            }
                        })
                        .collect_view()}
                    {auth.landed_error(&[OIDC_LOGIN]).map(|message| view! { <p class="error" role="alert">{message}</p> })}
                </section>
            }
        })
    }
}

/// "Sign out of NAME too", beside Sign out, for a session signed in through `provider` (its name): a plain
/// form post, since the browser leaves for the provider anyway. The server ends the Signoff
/// session first (the same sequence as Sign out, which also tells this session's other tabs)
/// and answers with a redirect to the provider's sign-out (`server/src/forms.rs`).
#[component]
pub fn ProviderSignOut(
    /// The provider's id.
    provider: String,
) -> impl IntoView {
    super::boxed_on_server(view! {
        <form method="post" action={<LogoutProvider as ServerFn>::PATH}>
            <button type="submit" class="btn">"Sign out of " {provider} " too"</button>
        </form>
    })
}

/// The Security section's "Ways to sign in": the password and each provider, linked (with
/// Unlink, while another way in remains) or not (with Link, a visit to the provider). Link and
/// Unlink are plain form posts that come back to the page. Nothing shows when no provider is
/// configured.
#[component]
pub fn SignInMethodsSection() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let methods = Resource::new(|| (), |_| list_sign_in_methods());
    // Inside a Transition, as every resource of the page: the server renders what it loaded,
    // and hydration finds the same.
    let section = move || {
        // `try_get`: the page may be resetting (signed out), disposing this section while the
        // landing it also reads changes.
        let methods = methods
            .try_get()
            .flatten()?
            .ok()
            .filter(|methods| !methods.providers.is_empty())?;
        let rows = methods
            .providers
            .iter()
            .map(|method| {
                let id = method.provider.id.clone();
                let name = method.provider.name.clone();
                let (action, label, hint) = match (method.linked, methods.can_unlink(&id)) {
                    (false, _) => (format!("/api/oidc/{id}/link"), format!("Link {name}"), None),
                    (true, can) => (
                        <UnlinkProvider as ServerFn>::PATH.to_owned(),
                        format!("Unlink {name}"),
                        (!can).then_some(" Your only way to sign in."),
                    ),
                };
                view! {
                    <li>
                        <span>{name} {if method.linked { " · linked" } else { "" }}</span>
                        <form method="post" action=action>
                            <input type="hidden" name="provider" value=id />
                            <button type="submit" class="btn small" disabled=hint.is_some()>
                                {label}
                            </button>
                        </form>
                        {hint.map(|hint| view! { <span class="hint">{hint}</span> })}
                    </li>
                }
            })
            .collect_view();
        Some(view! {
            <h3 id="methods-heading">"Ways to sign in"</h3>
            <ul class="methods" aria-labelledby="methods-heading">
                <li>{if methods.has_password { "Password · set" } else { "Password · none" }}</li>
                {rows}
            </ul>
            <p class="hint">
                "Linking and unlinking need a proof that it is you from the last few minutes. "
                <a href="/confirm">"Confirm it's you"</a>
            </p>
            {auth.landed_error(&[OIDC_LINK, "unlink_provider"]).map(|message| {
                view! { <p class="error" role="alert">{message}</p> }
            })}
        })
    };
    view! { <Transition>{section}</Transition> }
}
