//! Every way a session ends: sign-out, revoking one session, signing out everywhere. This is
//! where logout happens, from the server functions down to the deleted rows, the cleared cookie
//! and the news sent to the session's other open pages. The buttons that call them are in
//! `ui.rs` and `security_ui.rs`; how the news reaches other tabs and devices is `live.rs`.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::live::EndReason;
use crate::error::AppError;

/// `POST /api/logout`: ends the current session. Always 2xx when the session is gone afterwards,
/// including when there was none (idempotent); 503 when it could not be destroyed.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use super::ssr::{audit, request_meta};

    let mut auth = super::ssr::auth_session().await?;
    let state = super::ssr::app_state()?;
    let ended = end_session(&mut auth, &state, EndReason::SignedOut).await?;
    if let Some(user_id) = ended.user_id {
        audit::record(
            &state.db,
            audit::Event::Logout,
            Some(user_id),
            ended.tag.as_deref(),
            request_meta().ip,
        )
        .await;
    }
    Ok(())
}

/// `POST /api/logout_all`: ends every session of the user, this one included.
#[server(prefix = "/api", endpoint = "logout_all")]
pub async fn logout_all() -> Result<(), AppError> {
    use super::ssr::{audit, events::SessionsEnded, request_meta, require_user};

    let mut auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::app_state()?;
    let others = state
        .store
        .delete_for_user(user.id, None)
        .await
        .map_err(unavailable)?;
    let ended = end_session(&mut auth, &state, EndReason::SignedOutEverywhere).await?;
    // This session's pages were told by `end_session`; now every other session's.
    state
        .events
        .publish(SessionsEnded::all_but(
            user.id,
            ended.handle.clone(),
            EndReason::SignedOutEverywhere,
        ))
        .await;
    tracing::info!(
        user_id = user.id,
        sessions = others,
        "signed out everywhere"
    );
    audit::record(
        &state.db,
        audit::Event::LogoutEverywhere,
        Some(user.id),
        ended.tag.as_deref(),
        request_meta().ip,
    )
    .await;
    Ok(())
}

/// `POST /api/revoke_session` (`id`): ends one of the user's sessions, by the public handle that
/// `GET /api/sessions` lists. 404 for a handle that is not one of the user's live sessions.
#[server(prefix = "/api", endpoint = "revoke_session")]
pub async fn revoke_session(id: String) -> Result<(), AppError> {
    use super::ssr::{audit, current_handle, events::SessionsEnded, request_meta, require_user};

    let mut auth = super::ssr::auth_session().await?;
    let user = require_user(&auth)?;
    let state = super::ssr::app_state()?;
    let tag = id.get(..16).map(str::to_owned);
    let current = current_handle(&auth);
    if current.as_deref() == Some(id.as_str()) {
        // Revoking the session in hand is signing out, cookie and all.
        end_session(&mut auth, &state, EndReason::Revoked).await?;
    } else if state
        .store
        .delete_by_handle(user.id, &id)
        .await
        .map_err(unavailable)?
    {
        state
            .events
            .publish(SessionsEnded::one(
                user.id,
                id.clone(),
                current,
                EndReason::Revoked,
            ))
            .await;
    } else {
        return Err(AppError::not_found("session"));
    }
    audit::record(
        &state.db,
        audit::Event::SessionRevoked,
        Some(user.id),
        tag.as_deref(),
        request_meta().ip,
    )
    .await;
    Ok(())
}

/// Who and which session [`end_session`] ended.
#[cfg(feature = "ssr")]
#[derive(Debug, Default)]
pub struct Ended {
    pub user_id: Option<i64>,
    /// The public handle of the session, if there was one.
    pub handle: Option<String>,
    /// The hashed tag of the session (for logs and the audit trail), if there was one.
    pub tag: Option<String>,
}

/// The whole sign-out sequence for the session in hand, in order:
///
/// 1. **Log the user out** (axum-login): the user is dropped from this request.
/// 2. **Destroy the session**: axum-login's `logout` is tower-sessions' `flush`, which empties the
///    session, `DELETE`s its row and forgets its id, so nothing later in this request can save it
///    again (and the store never re-creates a deleted row; see `session::Store`).
/// 3. **Clear the cookie**: a removal `Set-Cookie` with the same name and `Path`, `Max-Age=0`.
///    The session layer, seeing the session emptied, queues the same removal in the same cookie
///    jar (keyed by name), so the response carries exactly one; doing it here as well keeps the
///    sequence whole if that layer's behaviour changes. Nothing is sent when the request carried
///    no cookie: there is nothing to clear. `Clear-Site-Data: "cookies", "storage"` tells the
///    browser to drop the rest of the site's cookies and storage too (not `"cache"`: Chrome
///    stalls on it).
/// 4. **Tell the session's other pages** (other tabs holding the same cookie, on any instance):
///    their event streams get `session-ended` with `reason`.
///
/// If step 2 fails the error is returned before step 3: the session still exists on the server,
/// and the client must hear that sign-out failed rather than see its cookie vanish.
#[cfg(feature = "ssr")]
pub async fn end_session(
    auth: &mut super::ssr::AuthSession,
    state: &crate::state::AppState,
    reason: EndReason,
) -> Result<Ended, AppError> {
    let cookies = leptos_axum::extract::<tower_cookies::Cookies>()
        .await
        .map_err(|error| {
            tracing::error!(%error, "cookie layer missing from this route");
            AppError::internal()
        })?;
    let tag = auth.session.id().map(|id| crate::session::tag(&id));
    let handle = super::ssr::current_handle(auth);

    let user = auth.logout().await?;

    cookies.remove(crate::session::removal_cookie(&state.sessions));
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(
            http::header::HeaderName::from_static("clear-site-data"),
            http::HeaderValue::from_static("\"cookies\", \"storage\""),
        );
    }
    tracing::info!(
        user_id = user.as_ref().map(|user| user.id),
        session = tag.as_deref().unwrap_or("none"),
        "signed out"
    );
    if let (Some(user), Some(handle)) = (&user, &handle) {
        state
            .events
            .publish(super::ssr::events::SessionsEnded::one(
                user.id,
                handle.clone(),
                Some(handle.clone()),
                reason,
            ))
            .await;
    }
    Ok(Ended {
        user_id: user.map(|user| user.id),
        handle,
        tag,
    })
}

#[cfg(feature = "ssr")]
fn unavailable(error: sqlx::Error) -> AppError {
    tracing::error!(%error, "session store error");
    AppError::unavailable()
}
