//! Accounts and sign-in state: the `User` the browser sees, the server functions, and the UI.

mod login;
mod logout;
pub mod ui;
pub mod validate;

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::{prelude::*, server_fn::codec::GetUrl};
use serde::{Deserialize, Serialize};

pub use login::{login, register, Login, Register};
#[cfg(feature = "ssr")]
pub use logout::end_session;
pub use logout::{logout, Logout};

use crate::error::AppError;

/// The signed-in user as the browser sees it. The stored row (with the password hash) is
/// [`ssr::UserRecord`] and never leaves the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub username: String,
}

/// `GET /api/me`: the signed-in user, or `null`.
#[server(prefix = "/api", endpoint = "me", input = GetUrl)]
pub async fn current_user() -> Result<Option<User>, AppError> {
    let auth = ssr::auth_session().await?;
    Ok(auth.user.as_ref().map(User::from))
}
