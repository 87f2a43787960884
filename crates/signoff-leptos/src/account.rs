//! The Security page's data: the user's sessions, recent activity, and changing the password.

use leptos::{prelude::*, server_fn::codec::GetUrl};

use super::wire::{ActivityEntry, SessionInfo};
use crate::error::AppError;

/// How many events "Recent activity" shows.
#[cfg(feature = "ssr")]
const ACTIVITY_LIMIT: u32 = 20;

/// `GET /api/sessions`: the signed-in user's live sessions, this one marked `current`.
#[server(prefix = "/api", endpoint = "sessions", input = GetUrl)]
pub async fn list_sessions() -> Result<Vec<SessionInfo>, AppError> {
    use super::ssr::{current_handle, require_user, rfc3339_s};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::signoff()?;
    let current = current_handle(&auth);
    let rows = state.store.list_for_user(user.id).await.map_err(|error| {
        tracing::error!(%error, "could not list sessions");
        AppError::unavailable()
    })?;
    Ok(rows
        .into_iter()
        .map(|row| SessionInfo {
            current: current.as_deref() == Some(row.handle.as_str()),
            id: row.handle,
            created_at: row.created_at.map(rfc3339_s),
            last_seen_at: row.last_seen_at.map(rfc3339_s),
            user_agent: row.user_agent,
            provider: row.oidc_provider.map(|id| state.oidc.name_of(&id)),
            passkey: row.passkey,
        })
        .collect())
}

/// `GET /api/activity`: the user's most recent security events, newest first.
#[server(prefix = "/api", endpoint = "activity", input = GetUrl)]
pub async fn recent_activity() -> Result<Vec<ActivityEntry>, AppError> {
    let auth = super::ssr::auth_session().await?;
    let user = super::ssr::require_user(&auth)?;
    let state = super::ssr::signoff()?;
    super::ssr::audit::recent(&state.db, user.id, ACTIVITY_LIMIT).await
}

/// `POST /api/change_password` (`current_password`, `new_password`). A wrong current password is
/// a 400 and changes nothing (and counts as a failed sign-in for throttling). On success every
/// other session of the user ends and this one continues under a new id. An account made by a
/// provider sets its first password here, with `current_password` empty: the proof is then a
/// recent sign-in or confirmation (`stepup`; 403 `reauthentication_required` otherwise).
#[server(prefix = "/api", endpoint = "change_password")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<(), AppError> {
    use super::ssr::{request_meta, require_user};

    let mut auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::signoff()?;
    let meta = request_meta();
    if user.password_hash == super::ssr::backend::NO_PASSWORD {
        // A first password: there is no current one to give.
        super::ssr::stepup::require_fresh(&auth, state.sessions.step_up_max_age).await?;
    } else {
        verify_current(&state, &user, &current_password, &meta).await?;
    }

    let updated = auth.backend.new_password(&user, &new_password).await?;
    super::ssr::lifecycle::password_changed(&mut auth, &state, &updated, &meta).await?;
    Ok(())
}

/// The current password, checked like a sign-in (`attempts::check_current_password`); a device
/// cookie it makes goes on this response.
#[cfg(feature = "ssr")]
async fn verify_current(
    state: &signoff::Signoff,
    user: &super::ssr::UserRecord,
    password: &str,
    meta: &super::ssr::RequestMeta,
) -> Result<(), AppError> {
    let device = super::ssr::device_token(state);
    super::ssr::set_cookie(
        super::ssr::attempts::check_current_password(state, user, password, meta, device).await?,
    );
    Ok(())
}

/// `POST /api/confirm_identity` (`password`): "Confirm it's you". The password is checked like a
/// sign-in's; then, for `STEP_UP_MAX_AGE`, this session may change the ways in (link or unlink a
/// provider, set a password). An account without a password confirms by signing in again with its
/// provider instead (400 here).
#[server(prefix = "/api", endpoint = "confirm_identity")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn confirm_identity(password: String) -> Result<(), AppError> {
    use super::ssr::{request_meta, require_user};

    let auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::signoff()?;
    if user.password_hash == super::ssr::backend::NO_PASSWORD {
        return Err(AppError::invalid_input(
            "Your account has no password: sign in again with your provider to confirm it's you.",
        ));
    }
    verify_current(&state, &user, &password, &request_meta()).await?;
    super::ssr::stepup::proved(&auth.session).await?;
    Ok(())
}

/// `GET /api/step_up`: whether this session may change the ways in now: 200 `null` when its last
/// proof of identity is within `STEP_UP_MAX_AGE`, 403 `reauthentication_required` otherwise. The
/// page asks before it leaves for a provider to link it, so that "Confirm it's you" comes first
/// and the link then carries on (the provider's round trip cannot be carried on after it).
#[server(prefix = "/api", endpoint = "step_up", input = GetUrl)]
pub async fn step_up_status() -> Result<(), AppError> {
    let auth = super::ssr::auth_session().await?;
    super::ssr::require_user(&auth)?;
    let state = super::ssr::signoff()?;
    super::ssr::stepup::require_fresh(&auth, state.sessions.step_up_max_age).await
}
