//! Single sign-on as the page sees it: the configured providers, the account's ways to sign in,
//! unlinking a provider, and the buttons. The flow itself (redirects, tokens) is server-only, in
//! `ssr::oidc`; "Sign out of NAME too" is `logout::logout_provider`.

use leptos::{prelude::*, server_fn::codec::GetUrl, server_fn::ServerFn};

use super::{
    ui::AuthState,
    wire::{ProviderInfo, SignInMethods},
    LogoutProvider,
};
use crate::{
    error::AppError,
    landing::{OIDC_LINK, OIDC_LOGIN},
};

/// `GET /api/providers`: the providers a person can sign in with (none: not configured).
#[server(prefix = "/api", endpoint = "providers", input = GetUrl)]
pub async fn list_providers() -> Result<Vec<ProviderInfo>, AppError> {
    let state = super::ssr::app_state()?;
    Ok(state.oidc.iter().map(|provider| provider.info()).collect())
}

/// `GET /api/sign_in_methods`: the signed-in account's ways in and this session's provider.
#[server(prefix = "/api", endpoint = "sign_in_methods", input = GetUrl)]
pub async fn list_sign_in_methods() -> Result<SignInMethods, AppError> {
    use super::ssr::{oidc, require_user};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::app_state()?;
    if state.oidc.is_empty() {
        return Ok(SignInMethods {
            providers: Vec::new(),
            has_password: true,
            session_provider: None,
        });
    }
    let (linked, has_password) = oidc::identities::ways_in(&state.db, user.id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not read the account's identities");
            AppError::unavailable()
        })?;
    let session_provider = oidc::session_provider(&auth, &state.oidc).await?;
    Ok(SignInMethods {
        providers: state
            .oidc
            .iter()
            .map(|provider| super::wire::ProviderMethod {
                linked: linked.contains(&provider.settings.id),
                provider: provider.info(),
            })
            .collect(),
        has_password,
        session_provider,
    })
}

/// `POST /api/unlink_provider` (`provider`): unlinks a provider from the signed-in account,
/// while another way in remains (a password or another provider); 400 otherwise, 404 when it is
/// not linked. Sessions signed in through it go on until they end.
#[server(prefix = "/api", endpoint = "unlink_provider")]
pub async fn unlink_provider(provider: String) -> Result<(), AppError> {
    use super::ssr::{audit, oidc::identities, request_meta, require_user};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    super::validate::plain_parameter("provider", &provider)?;
    let state = super::ssr::app_state()?;
    let outcome = identities::unlink(&state.db, user.id, &provider)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not unlink a provider");
            AppError::unavailable()
        })?;
    match outcome {
        identities::Unlinked::Done => {
            let name = state.oidc.name_of(&provider);
            audit::record_detail(
                &state.db,
                audit::Event::ProviderUnlinked,
                Some(user.id),
                None,
                request_meta().ip,
                Some(&name),
            )
            .await;
            Ok(())
        }
        identities::Unlinked::NotLinked => Err(AppError::not_found("linked provider")),
        identities::Unlinked::LastWayIn => Err(AppError::invalid_input(
            "This is your only way to sign in. Link another provider first.",
        )),
    }
}

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
pub fn ProviderSignOut(provider: String) -> impl IntoView {
    view! {
        <form method="post" action={<LogoutProvider as ServerFn>::PATH}>
            <button type="submit" class="btn">"Sign out of " {provider} " too"</button>
        </form>
    }
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
            {auth.landed_error(&[OIDC_LINK, "unlink_provider"]).map(|message| {
                view! { <p class="error" role="alert">{message}</p> }
            })}
        })
    };
    view! { <Transition>{section}</Transition> }
}
