//! Single sign-on as the page sees it: the configured providers, the account's ways to sign in,
//! unlinking a provider, and the buttons. The flow itself (redirects, tokens) is server-only, in
//! `ssr::oidc`; "Sign out of NAME too" is `logout::logout_provider`.

use leptos::{ev::SubmitEvent, prelude::*, server_fn::codec::GetUrl, server_fn::ServerFn};
use serde::{Deserialize, Serialize};

use super::{live::EndReason, logout_provider, ui::AuthState, LogoutProvider};
use crate::{
    error::AppError,
    landing::{OIDC_LINK, OIDC_LOGIN},
};

/// A configured OpenID Provider, as the page names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Part of its URLs here (`/api/oidc/<id>/…`).
    pub id: String,
    /// "Sign in with {name}".
    pub name: String,
}

/// One provider and whether the signed-in account is linked to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMethod {
    pub provider: ProviderInfo,
    pub linked: bool,
}

/// How the signed-in account can sign in, and how this session did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// Every configured provider, linked or not (empty: single sign-on is not configured).
    pub providers: Vec<ProviderMethod>,
    pub has_password: bool,
    /// The provider this session was signed in through, if any.
    pub session_provider: Option<ProviderInfo>,
}

impl SignInMethods {
    /// Whether unlinking `provider` would leave the account another way in.
    pub fn can_unlink(&self, provider: &str) -> bool {
        self.has_password
            || self
                .providers
                .iter()
                .any(|method| method.linked && method.provider.id != provider)
    }
}

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
    let session_provider = auth
        .session
        .get::<oidc::SessionProvider>(oidc::SESSION_KEY)
        .await?
        .and_then(|via| {
            state
                .oidc
                .get(&via.provider)
                .map(|provider| provider.info())
        });
    Ok(SignInMethods {
        providers: state
            .oidc
            .iter()
            .map(|provider| ProviderMethod {
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

/// The signed-in page's [`SignInMethods`], shared by the account card and the Security section.
#[derive(Clone, Copy)]
pub struct MethodsResource(pub Resource<Result<SignInMethods, AppError>>);

impl MethodsResource {
    pub fn new() -> Self {
        Self(Resource::new(|| (), |_| list_sign_in_methods()))
    }
}

impl Default for MethodsResource {
    fn default() -> Self {
        Self::new()
    }
}

/// "Sign in with NAME", one button per provider, on the signed-out page. Each is a plain form
/// post (no interception): the browser goes to the provider and comes back signed in.
#[component]
pub fn ProviderSignIn() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let providers = Resource::new(|| (), |_| list_providers());
    let landed_error = move || auth.landed_error(&[OIDC_LOGIN]);
    view! {
        <Suspense>
            {move || {
                providers
                    .get()
                    .and_then(Result::ok)
                    .filter(|list| !list.is_empty())
                    .map(|list| {
                        view! {
                            <section class="card sso" aria-labelledby="sso-heading">
                                <h2 id="sso-heading">"Single sign-on"</h2>
                                {list
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
                                {move || landed_error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
                            </section>
                        }
                    })
            }}
        </Suspense>
    }
}

/// "Sign out of NAME too", beside Sign out, for a session signed in through a provider. Ends the
/// Signoff session first (the same sequence as Sign out), then goes to the provider's sign-out.
#[component]
pub fn ProviderSignOut() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let methods = expect_context::<MethodsResource>().0;
    let sign_out = Action::new(move |_: &()| async move {
        let result = logout_provider().await;
        if let Ok(url) = &result {
            auth.ended_here(EndReason::SignedOut, "You signed out.");
            go_to(url.as_deref());
        }
        result
    });
    let pending = sign_out.pending();
    view! {
        <Suspense>
            {move || {
                methods
                    .get()
                    .and_then(Result::ok)
                    .and_then(|methods| methods.session_provider)
                    .map(|provider| {
                        view! {
                            <form
                                method="post"
                                action={<LogoutProvider as ServerFn>::PATH}
                                on:submit=move |event: SubmitEvent| {
                                    event.prevent_default();
                                    sign_out.dispatch(());
                                }
                            >
                                <button type="submit" class="btn" disabled=pending>
                                    "Sign out of " {provider.name} " too"
                                </button>
                            </form>
                        }
                    })
            }}
        </Suspense>
        {move || sign_out.value().get().and_then(Result::err).map(|error| {
            view! { <p class="error" role="alert">"Sign-out failed: " {error.message}</p> }
        })}
    }
}

/// The Security section's "Ways to sign in": the password and each provider, linked (with
/// Unlink, while another way in remains) or not (with Link, a visit to the provider). Nothing
/// shows when no provider is configured.
#[component]
pub fn SignInMethodsSection() -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let methods = expect_context::<MethodsResource>().0;
    let unlink = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let result = unlink_provider(id).await;
            methods.refetch();
            result
        }
    });
    let pending = unlink.pending();
    let landed_error = move || auth.landed_error(&[OIDC_LINK, "unlink_provider"]);
    view! {
        <Transition>
            {move || {
                methods
                    .get()
                    .and_then(Result::ok)
                    .filter(|methods| !methods.providers.is_empty())
                    .map(|methods| {
                        let rows = methods
                            .providers
                            .iter()
                            .map(|method| {
                                let id = method.provider.id.clone();
                                let name = method.provider.name.clone();
                                let can_unlink = methods.can_unlink(&id);
                                if method.linked {
                                    view! {
                                        <li>
                                            <span>{name.clone()} " · linked"</span>
                                            <button
                                                type="button"
                                                class="btn small"
                                                aria-label=format!("Unlink {name}")
                                                disabled=move || pending.get() || !can_unlink
                                                on:click=move |_| {
                                                    unlink.dispatch(id.clone());
                                                }
                                            >
                                                "Unlink"
                                            </button>
                                            {(!can_unlink).then(|| view! {
                                                <span class="hint">" Your only way to sign in."</span>
                                            })}
                                        </li>
                                    }
                                    .into_any()
                                } else {
                                    view! {
                                        <li>
                                            <form method="post" action=format!("/api/oidc/{id}/link")>
                                                <button type="submit" class="btn small">
                                                    "Link " {name}
                                                </button>
                                            </form>
                                        </li>
                                    }
                                    .into_any()
                                }
                            })
                            .collect_view();
                        view! {
                            <h3 id="methods-heading">"Ways to sign in"</h3>
                            <ul class="methods" aria-labelledby="methods-heading">
                                <li>
                                    {if methods.has_password { "Password · set" } else { "Password · none" }}
                                </li>
                                {rows}
                            </ul>
                        }
                    })
            }}
        </Transition>
        {move || unlink.value().get().and_then(Result::err).map(|error| {
            view! { <p class="error" role="alert">"Could not unlink: " {error.message}</p> }
        })}
        {move || landed_error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
    }
}

/// After "Sign out of NAME too": on to the provider, or (none to go to) stay on the signed-out
/// page.
fn go_to(url: Option<&str>) {
    #[cfg(feature = "browser")]
    if let Some(url) = url {
        let _ = window().location().assign(url);
    }
    #[cfg(not(feature = "browser"))]
    let _ = url;
}
