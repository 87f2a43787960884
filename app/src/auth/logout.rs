//! Sign-out: where logout happens, from the server function to the deleted row and the cleared
//! cookie. The button that calls it is `ui::SignedIn`.

use leptos::prelude::*;

use crate::error::AppError;

/// `POST /api/logout`: ends the current session. Always 2xx when the session is gone afterwards,
/// including when there was none (idempotent); 503 when it could not be destroyed.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let mut auth = super::ssr::auth_session().await?;
    let cookies = leptos_axum::extract::<tower_cookies::Cookies>()
        .await
        .map_err(|error| {
            tracing::error!(%error, "cookie layer missing from this route");
            AppError::internal()
        })?;
    let settings = super::ssr::session_settings()?;
    end_session(&mut auth, &cookies, &settings).await
}

/// The whole sign-out sequence, in order. Nothing else in Signoff ends a session.
///
/// 1. **Log the user out** (axum-login): the user is dropped from this request.
/// 2. **Destroy the session**: axum-login's `logout` is tower-sessions' `flush`, which empties the
///    session, `DELETE`s its row and forgets its id, so nothing later in this request can save it
///    again (and the store never re-creates a deleted row; see `session::Store`).
/// 3. **Clear the cookie**: a removal `Set-Cookie` with the same name and `Path`, `Max-Age=0`.
///    The session layer, seeing the session emptied, queues the same removal in the same cookie
///    jar (keyed by name), so the response carries exactly one; doing it here as well keeps the
///    sequence whole if that layer's behaviour changes. Nothing is sent when the request carried
///    no cookie: there is nothing to clear.
///
/// If step 2 fails the error is returned before step 3: the session still exists on the server,
/// and the client must hear that sign-out failed rather than see its cookie vanish.
#[cfg(feature = "ssr")]
pub async fn end_session(
    auth: &mut super::ssr::AuthSession,
    cookies: &tower_cookies::Cookies,
    settings: &crate::session::SessionSettings,
) -> Result<(), AppError> {
    let session = auth.session.id().map(|id| crate::session::tag(&id));
    let user = auth.logout().await?;
    cookies.remove(crate::session::removal_cookie(settings));
    tracing::info!(
        user_id = user.as_ref().map(|user| user.id),
        session = session.as_deref().unwrap_or("none"),
        "signed out"
    );
    Ok(())
}
