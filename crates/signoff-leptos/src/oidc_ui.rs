//! The single sign-on buttons: "Sign in with NAME" on the signed-out page, "Sign out of NAME
//! too" beside Sign out, and the "Ways to sign in" part of the Security section. The server
//! functions they use are in `oidc`.

use leptos::{ev::SubmitEvent, prelude::*, server_fn::ServerFn};

use super::{
    oidc::{list_sign_in_methods, unlink_provider, UnlinkProvider},
    state::{AuthState, Change, StepUp},
    step_up_status, LogoutProvider,
};
use crate::{
    error::AppError,
    landing::{OIDC_LINK, OIDC_LOGIN},
    wire::SignInMethods,
};

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
/// Unlink, while another way in remains) or not (with Link, a visit to the provider). Both are
/// form posts that work without JavaScript and come back to the page; with it, they go through
/// "Confirm it's you" first when the session's proof is stale, and then carry on: Unlink as a
/// call (the page stays), Link by posting its form once the server says the session may.
/// Nothing shows when no provider is configured.
#[component]
pub fn SignInMethodsSection(
    /// Called after an unlink (the sessions signed in through it ended).
    on_changed: Callback<()>,
) -> impl IntoView {
    let auth = expect_context::<AuthState>();
    let step_up = expect_context::<StepUp>();
    let list = Resource::new(|| (), |_| list_sign_in_methods());
    let act = step_up.action();
    // Inside a Transition, as every resource of the page: the server renders what it loaded,
    // and hydration finds the same.
    let section = move || {
        // `try_get`: the page may be resetting (signed out), disposing this section while the
        // landing it also reads changes.
        let methods = list
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
                let (action, label, hint, change) = match (method.linked, methods.can_unlink(&id)) {
                    (false, _) => (
                        format!("/api/oidc/{id}/link"),
                        format!("Link {name}"),
                        None,
                        link(id.clone()),
                    ),
                    (true, can) => (
                        <UnlinkProvider as ServerFn>::PATH.to_owned(),
                        format!("Unlink {name}"),
                        (!can).then_some(" Your only way to sign in."),
                        unlink(id.clone(), name.clone(), list, on_changed),
                    ),
                };
                let form_id = link_form_id(&id);
                view! {
                    <li>
                        <span>{name} {if method.linked { " · linked" } else { "" }}</span>
                        <form
                            id=form_id
                            method="post"
                            action=action
                            on:submit=move |event: SubmitEvent| {
                                event.prevent_default();
                                act.dispatch(change.clone());
                            }
                        >
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
            {move || act.value().get().flatten().and_then(|answer| match answer {
                Ok(done) => done.map(|done| view! { <p class="notice" role="status">{done}</p> }.into_any()),
                Err(error) => Some(view! { <p class="error" role="alert">{error.message}</p> }.into_any()),
            })}
        })
    };
    view! { <Transition>{section}</Transition> }
}

/// Link: once the server says this session may change its ways in, leave for the provider.
fn link(id: String) -> Change {
    Change::new(move || {
        let id = id.clone();
        async move {
            step_up_status().await?;
            post_link_form(&id);
            Ok(None)
        }
    })
}

/// Unlink, in the page: the list is read again, and the sessions list may have changed.
fn unlink(
    id: String,
    name: String,
    list: Resource<Result<SignInMethods, AppError>>,
    on_changed: Callback<()>,
) -> Change {
    Change::new(move || {
        let (id, name) = (id.clone(), name.clone());
        async move {
            unlink_provider(id).await?;
            list.refetch();
            on_changed.run(());
            Ok(Some(format!(
                "{name} unlinked. Sessions signed in with it were signed out."
            )))
        }
    })
}

/// The id of a provider's row form (`link-ID`), which [`post_link_form`] posts.
fn link_form_id(provider: &str) -> String {
    format!("link-{provider}")
}

/// Posts a provider's Link form as the browser would without JavaScript: the browser leaves for
/// the provider. `submit()` fires no submit event, so the handler above is not run again.
fn post_link_form(provider: &str) {
    #[cfg(feature = "browser")]
    {
        use wasm_bindgen::JsCast;
        if let Some(form) = document()
            .get_element_by_id(&link_form_id(provider))
            .and_then(|element| element.dyn_into::<web_sys::HtmlFormElement>().ok())
        {
            let _ = form.submit();
        }
    }
    #[cfg(not(feature = "browser"))]
    let _ = provider;
}
