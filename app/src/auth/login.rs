//! Creating an account and signing in. Both end in [`start_session`].

use leptos::prelude::*;

use super::User;
use crate::error::AppError;

/// `POST /api/register`: creates an account and signs it in.
#[server(prefix = "/api", endpoint = "register")]
pub async fn register(username: String, password: String) -> Result<User, AppError> {
    let mut auth = super::ssr::auth_session().await?;
    let user = auth.backend.register(&username, &password).await?;
    tracing::info!(user_id = user.id, "account created");
    start_session(&mut auth, &user).await?;
    Ok(User::from(&user))
}

/// `POST /api/login`: signs in. Every credential failure gets the same 401 and message.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<User, AppError> {
    use super::ssr::Credentials;

    let mut auth = super::ssr::auth_session().await?;
    let Some(user) = auth
        .authenticate(Credentials { username, password })
        .await?
    else {
        tracing::info!("sign-in failed: bad credentials");
        return Err(AppError::invalid_credentials());
    };
    start_session(&mut auth, &user).await?;
    Ok(User::from(&user))
}

/// Signs `user` in on a session with a new id.
#[cfg(feature = "ssr")]
async fn start_session(
    auth: &mut super::ssr::AuthSession,
    user: &super::ssr::UserRecord,
) -> Result<(), AppError> {
    let settings = super::ssr::session_settings()?;
    // A new id at every sign-in defeats session fixation. axum-login re-keys only a session that is
    // not yet authenticated, so signing in as B over A's session would keep A's id: when the
    // request came with a session, re-key it here. (A new visitor's session is re-keyed by
    // axum-login itself.)
    if auth.session.id().is_some() {
        auth.session.cycle_id().await?;
    }
    auth.login(user).await?;
    crate::session::mark_started(&auth.session, &settings).await?;
    tracing::info!(user_id = user.id, "signed in");
    Ok(())
}
