//! Accounts and sign-in state: the `User` the browser sees, the server functions, and the UI.

mod account;
pub mod live;
mod login;
mod logout;
pub mod oidc;
pub mod security_ui;
pub mod ui;
pub mod validate;

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

pub use account::{
    change_password, list_sessions, recent_activity, ChangePassword, ListSessions, RecentActivity,
};
pub use login::{login, register, Login, Register};
#[cfg(feature = "ssr")]
pub use logout::end_session;
pub use logout::{
    logout, logout_all, logout_provider, revoke_session, Logout, LogoutAll, LogoutProvider,
    RevokeSession,
};
pub use oidc::{ProviderInfo, SignInMethods};

use crate::error::AppError;

/// The signed-in user as the browser sees it. The stored row (with the password hash) is
/// [`ssr::UserRecord`] and never leaves the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// The name of the identity provider this session was signed in through (single sign-on),
    /// if any; the page offers "Sign out of NAME too". Absent from the JSON for a password session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// One of the user's sessions, as `GET /api/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// A public handle (a hash of the session id): enough to revoke it, never enough to use it.
    pub id: String,
    /// Whether this is the session of the request that asked.
    pub current: bool,
    /// RFC 3339, UTC.
    pub created_at: Option<String>,
    /// RFC 3339, UTC; accurate to the session's refresh interval (at most a minute).
    pub last_seen_at: Option<String>,
    pub user_agent: Option<String>,
    /// The provider the session was signed in through (its display name), if any.
    #[serde(default)]
    pub provider: Option<String>,
}

/// One security event of the user's, as "Recent activity" shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// RFC 3339, UTC.
    pub at: String,
    /// `login_succeeded`, `login_failed`, `logout`, `session_revoked`, `logout_everywhere`,
    /// `password_changed`, `account_created`, `provider_linked`, `provider_unlinked`,
    /// `provider_logout` or `logout_at_provider`.
    pub event: String,
    /// Hash tag of the session concerned (not its id).
    pub session: Option<String>,
    pub ip: Option<String>,
    /// What else it concerns: the provider of a provider sign-in, link, unlink or logout.
    #[serde(default)]
    pub detail: Option<String>,
}

/// `GET /api/me`: the signed-in user, or `null`.
#[server(prefix = "/api", endpoint = "me", input = GetUrl)]
pub async fn current_user() -> Result<Option<User>, AppError> {
    let auth = ssr::auth_session().await?;
    let Some(record) = auth.user.as_ref() else {
        return Ok(None);
    };
    let mut user = User::from(record);
    let state = ssr::app_state()?;
    user.provider = ssr::oidc::session_provider(&auth, &state.oidc)
        .await?
        .map(|provider| provider.name);
    Ok(Some(user))
}
