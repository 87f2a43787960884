//! Signoff for Leptos: the server functions (sign in, create an account, sign out, sign out
//! everywhere, sessions, activity, password, single sign-on), the page's sign-in state
//! ([`state::AuthState`]), the live client that signs every tab out when the session ends
//! (EventSource and BroadcastChannel), and the components.
//!
//! ```
//! use leptos::prelude::*;
//!
//! #[component]
//! fn App() -> impl IntoView {
//!     // Sign-in and create-account forms, "Signed in as", the Sign out button and the
//!     // Security section; it provides `AuthState` to everything inside it.
//!     view! { <signoff_leptos::ui::AccountPanel /> }
//! }
//! ```
//!
//! Features: `ssr` (the server side, on the `signoff` core), `hydrate` and `csr` (the browser,
//! with the live client). The server side needs [`signoff::Signoff`] in Leptos context; see the
//! workspace README, "Use Signoff in your own Leptos app".

#![warn(missing_docs)]

mod account;
#[cfg(feature = "ssr")]
pub mod forms;
pub mod landing;
pub mod live;
mod login;
mod logout;
pub mod oidc;
pub mod oidc_ui;
pub mod passkeys;
pub mod security_ui;
pub mod state;
pub mod tabs;
pub mod ui;

/// What the server and the browser both speak, the error, and the input rules (shared crate).
pub use signoff_types::{error, validate, wire};

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::{prelude::*, server_fn::codec::GetUrl};

pub use account::{
    change_password, confirm_identity, list_sessions, recent_activity, step_up_status,
    ChangePassword, ConfirmIdentity, ListSessions, RecentActivity, StepUpStatus,
};
pub use login::{login, register, Login, Register};
pub use logout::{
    logout, logout_all, logout_provider, revoke_session, Logout, LogoutAll, LogoutProvider,
    RevokeSession,
};
pub use wire::{ActivityEntry, ProviderInfo, ProviderMethod, SessionInfo, SignInMethods, User};

use crate::error::AppError;

/// A large part of the page, type-erased (boxed) on the server only. The server renders a view by
/// value, one generic frame per level, and unoptimised (debug builds, `cargo leptos watch`) the
/// signed-in page's frames outgrew a 2 MiB thread stack once the Security section had passkeys:
/// boxing a subtree leaves a pointer in the frames above it. The HTML is the same. The browser
/// keeps the typed view: an erased one brings `AnyView`'s hydration code (about 12 KB of
/// bundle, measured when the Security section was erased in both).
#[cfg(feature = "ssr")]
pub(crate) fn boxed_on_server(
    view: impl leptos::tachys::view::any_view::IntoAny,
) -> leptos::prelude::AnyView {
    view.into_any()
}

/// See the server's version: in the browser the view stays typed.
#[cfg(not(feature = "ssr"))]
pub(crate) fn boxed_on_server<V>(view: V) -> V {
    view
}

/// `GET /api/me`: the signed-in user, or `null`.
#[server(prefix = "/api", endpoint = "me", input = GetUrl)]
pub async fn current_user() -> Result<Option<User>, AppError> {
    let auth = ssr::auth_session().await?;
    let Some(record) = auth.user.as_ref() else {
        return Ok(None);
    };
    let mut user = User::from(record);
    let state = ssr::signoff()?;
    user.provider = ssr::oidc::session_provider(&auth, &state.oidc)
        .await?
        .map(|provider| provider.name);
    Ok(Some(user))
}
