//! Server-only parts of accounts: the users backend, password hashing, and the glue that gives
//! server functions their session.

pub mod backend;
pub mod password;

use leptos::prelude::use_context;

pub use backend::{Backend, Credentials, UserRecord};

use crate::{error::AppError, session::SessionSettings, state::AppState};

/// axum-login's per-request view of the session, over Signoff's users backend.
pub type AuthSession = axum_login::AuthSession<Backend>;

/// The current request's auth session. The auth layer put it in the request's extensions; the
/// `Session` inside shares its state with the session layer, so a login made here is saved when
/// the response leaves the layer (the axum-login#144 pitfall does not apply; a test proves it).
pub async fn auth_session() -> Result<AuthSession, AppError> {
    leptos_axum::extract::<AuthSession>()
        .await
        .map_err(|error| {
            tracing::error!(%error, "auth layer missing from this route");
            AppError::internal()
        })
}

/// The session settings the server was started with.
pub fn session_settings() -> Result<SessionSettings, AppError> {
    use_context::<AppState>()
        .map(|state| state.sessions)
        .ok_or_else(|| {
            tracing::error!("AppState missing from the server function context");
            AppError::internal()
        })
}

impl From<axum_login::Error<Backend>> for AppError {
    fn from(error: axum_login::Error<Backend>) -> Self {
        match error {
            axum_login::Error::Session(error) => error.into(),
            axum_login::Error::Backend(error) => error.into(),
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        // Session errors are store errors (the database) or (de)serialisation of our own data.
        tracing::error!(%error, "session store error");
        AppError::unavailable()
    }
}
