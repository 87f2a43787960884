//! Single sign-on as the page asks for it: the configured providers, the account's ways to sign
//! in, unlinking a provider. The buttons are `oidc_ui`; the flow itself (redirects, tokens) is
//! server-only, in `ssr::oidc`; "Sign out of NAME too" is `logout::logout_provider`.

use leptos::{prelude::*, server_fn::codec::GetUrl};

use super::wire::{ProviderInfo, SignInMethods};
use crate::error::AppError;

/// `GET /api/providers`: the providers a person can sign in with (none: not configured).
#[server(prefix = "/api", endpoint = "providers", input = GetUrl)]
pub async fn list_providers() -> Result<Vec<ProviderInfo>, AppError> {
    let state = super::ssr::signoff()?;
    Ok(state.oidc.iter().map(|provider| provider.info()).collect())
}

/// `GET /api/sign_in_methods`: the signed-in account's ways in and this session's provider.
#[server(prefix = "/api", endpoint = "sign_in_methods", input = GetUrl)]
pub async fn list_sign_in_methods() -> Result<SignInMethods, AppError> {
    use super::ssr::{oidc, require_user};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::signoff()?;
    if state.oidc.is_empty() {
        return Ok(SignInMethods {
            providers: Vec::new(),
            has_password: true,
            session_provider: None,
            passkeys: 0,
        });
    }
    let (linked, has_password) = oidc::identities::ways_in(&state.db, user.id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not read the account's identities");
            AppError::unavailable()
        })?;
    let session_provider = oidc::session_provider(&auth, &state.oidc).await?;
    let passkeys = super::ssr::passkeys::count(&state.db, user.id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not count the account's passkeys");
            AppError::unavailable()
        })?;
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
        passkeys: u32::try_from(passkeys).unwrap_or(u32::MAX),
    })
}

/// `POST /api/unlink_provider` (`provider`): unlinks a provider from the signed-in account,
/// while another way in remains (a password, another provider or a passkey); 400 otherwise, 404 when it is
/// not linked. Every other session signed in through it ends, on every instance, and its pages
/// reset with a notice. Needs a fresh proof (403 `reauthentication_required`).
#[server(prefix = "/api", endpoint = "unlink_provider")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn unlink_provider(provider: String) -> Result<(), AppError> {
    use super::ssr::{audit, notices, oidc::identities, recovery, request_meta, require_user};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    super::validate::plain_parameter("provider", &provider)?;
    let state = super::ssr::signoff()?;
    // Removing a way in needs a recent proof too: a stolen session must not lock the owner out.
    super::ssr::stepup::require_fresh(&auth, state.sessions.step_up_max_age).await?;
    let outcome = identities::unlink(&state.db, user.id, &provider)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not unlink a provider");
            AppError::unavailable()
        })?;
    match outcome {
        identities::Unlinked::Done => {
            let name = state.oidc.name_of(&provider);
            let meta = request_meta();
            audit::record_detail(
                &state.db,
                audit::Event::ProviderUnlinked,
                Some(user.id),
                None,
                meta.ip,
                Some(&name),
            )
            .await;
            let way_in = super::ssr::session::WayIn::Provider(&provider);
            super::ssr::lifecycle::way_in_removed(&auth, &state, user.id, way_in, &name).await?;
            let origin = notices::Origin::of(&state.recovery.site, &meta);
            recovery::notify(&state, user.id, |to, username| {
                notices::provider_changed(to, username, &name, false, &origin)
            })
            .await;
            Ok(())
        }
        identities::Unlinked::NotLinked => Err(AppError::not_found("linked provider")),
        identities::Unlinked::LastWayIn => Err(AppError::invalid_input(
            "This is your only way to sign in. Link another provider first.",
        )),
    }
}
