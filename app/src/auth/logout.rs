//! Every way a session ends: sign-out, revoking one session, signing out everywhere, signing out
//! of the identity provider too, and the provider ending sessions itself (back-channel logout).
//! This is where logout happens, from the server functions down to the deleted rows, the
//! cleared cookie and the news sent to the session's other open pages. The buttons that call
//! them are in `ui.rs` and `security_ui.rs`; how the news reaches other tabs and devices is
//! `live.rs`; the provider's logout token is checked in `ssr/oidc/backchannel.rs`.

use leptos::prelude::*;

#[cfg(feature = "ssr")]
use super::wire::EndReason;
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
    super::validate::plain_parameter("session id", &id)?;
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

/// `POST /api/logout_provider`: "Sign out of NAME too". Ends this session exactly as
/// [`logout`] does, before anything is asked of the provider, then answers with the
/// provider's `end_session_endpoint` URL (with `id_token_hint` and the registered
/// `post_logout_redirect_uri`) for the browser to go to; the provider sends it back to
/// `/?signed-out`. `null` when the session did not come from a
/// provider, or the provider cannot be reached or has no such endpoint: the Signoff session is
/// ended all the same, and the page says so.
#[server(prefix = "/api", endpoint = "logout_provider")]
pub async fn logout_provider() -> Result<Option<String>, AppError> {
    use super::ssr::{audit, oidc, request_meta};

    let mut auth = super::ssr::auth_session().await?;
    let state = super::ssr::app_state()?;
    // Read before the session's data is destroyed with it.
    let via = auth
        .session
        .get::<oidc::SessionProvider>(oidc::SESSION_KEY)
        .await?;
    // The session ends first, always: the provider may be slow or down (its discovery document
    // fetched on the way), and a client that gives up meanwhile must not leave it alive.
    let ended = end_session(&mut auth, &state, EndReason::SignedOut).await?;
    let url = match &via {
        Some(via) => oidc::flow::end_session_url(&state.oidc, via).await,
        None => None,
    };
    if let Some(user_id) = ended.user_id {
        let name = via.as_ref().map(|via| state.oidc.name_of(&via.provider));
        audit::record_detail(
            &state.db,
            if url.is_some() {
                audit::Event::LogoutAtProvider
            } else {
                audit::Event::Logout
            },
            Some(user_id),
            ended.tag.as_deref(),
            request_meta().ip,
            name.as_deref(),
        )
        .await;
    }
    Ok(url)
}

/// What a back-channel logout ended.
#[cfg(feature = "ssr")]
#[derive(Debug, PartialEq, Eq)]
pub enum ProviderEnded {
    /// The token's `jti` was used before: nothing was ended.
    Replayed,
    /// These sessions ended (possibly none: the person had signed out here already).
    Sessions(usize),
}

/// The provider ended sessions (OpenID Connect Back-Channel Logout; the token has been checked
/// by `ssr::oidc::backchannel`). Deletes the sessions it names and remembers its `jti` in one
/// transaction, then tells their open pages, on every instance, through the same path as every
/// other end: their event streams get `session-ended` with the provider's name. Nobody's cookie
/// is touched here: the browsers are not part of this request, and their next request finds no
/// session.
#[cfg(feature = "ssr")]
pub async fn end_provider_sessions(
    state: &crate::state::AppState,
    provider: &super::ssr::oidc::Provider,
    logout: &crate::session::ProviderLogout<'_>,
) -> Result<ProviderEnded, AppError> {
    use super::ssr::{audit, events::SessionsEnded};

    let Some(ended) = state
        .store
        .delete_for_provider_logout(logout)
        .await
        .map_err(unavailable)?
    else {
        return Ok(ProviderEnded::Replayed);
    };
    let name = &provider.settings.name;
    for (user_id, handle) in &ended {
        state
            .events
            .publish(SessionsEnded::by_provider(
                *user_id,
                handle.clone(),
                name.clone(),
            ))
            .await;
    }
    let mut users: Vec<i64> = ended.iter().map(|(user_id, _)| *user_id).collect();
    users.sort_unstable();
    users.dedup();
    for user_id in users {
        audit::record_detail(
            &state.db,
            audit::Event::ProviderLogout,
            Some(user_id),
            None,
            None,
            Some(name),
        )
        .await;
    }
    tracing::info!(
        provider = %provider.settings.id,
        sessions = ended.len(),
        "provider ended sessions (back-channel logout)"
    );
    Ok(ProviderEnded::Sessions(ended.len()))
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
/// 3. **Clear the cookie**: a removal `Set-Cookie` with the same name, `Path` and attributes
///    (`Secure` in the secure mode, which a `__Host-` name needs or browsers ignore it), an empty
///    value and `Max-Age=0`: `session::removal_cookie`. It is sent whether or not the request's
///    cookie was read (a request with two session cookies has none, yet its sign-out must clear
///    the one it owns). The session layer, seeing the session emptied, queues a removal of its
///    own; `session::session_cookie_on_the_wire` makes sure one well-formed removal goes out.
///    `Clear-Site-Data: "cookies", "storage"` tells the browser to drop the rest of the site's
///    cookies and storage too (not `"cache"`: Chrome stalls on it). Each of the two is enough on
///    its own: a proxy may strip `Clear-Site-Data`, and an old browser ignores it.
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
    // The response must be reachable before anything is destroyed: a sign-out that could not
    // clear the cookie would report success with the cookie still in the browser.
    let response = use_context::<leptos_axum::ResponseOptions>().ok_or_else(|| {
        tracing::error!("end_session called outside a server function's response");
        AppError::internal()
    })?;
    let tag = auth.session.id().map(|id| crate::session::tag(&id));
    let handle = super::ssr::current_handle(auth);

    let user = auth.logout().await?;

    response.append_header(
        http::header::SET_COOKIE,
        crate::session::removal_cookie(&state.sessions),
    );
    response.insert_header(
        http::header::HeaderName::from_static("clear-site-data"),
        http::HeaderValue::from_static("\"cookies\", \"storage\""),
    );
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
