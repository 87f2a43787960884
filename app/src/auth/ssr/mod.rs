//! Server-only parts of accounts: the users backend, password hashing, and the glue that gives
//! server functions their session.

pub mod attempts;
pub mod audit;
pub mod backend;
pub mod client_addr;
pub mod common_passwords;
pub mod hub;
pub mod lifecycle;
pub mod names;
pub mod oidc;
pub mod password;
pub mod stream;
pub mod throttle;
pub mod trust;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use leptos::prelude::use_context;

pub use backend::{Backend, Credentials, UserRecord};

use crate::{error::AppError, session::SessionSettings, signoff::Signoff};

pub use backend::AuthSession;
pub use client_addr::RequestMeta;

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

/// Signoff's state, which the app provides to every server function (Leptos context).
pub fn signoff() -> Result<Signoff, AppError> {
    use_context::<Signoff>().ok_or_else(|| {
        tracing::error!("Signoff missing from the server function context");
        AppError::internal()
    })
}

/// The session settings the server was started with.
pub fn session_settings() -> Result<SessionSettings, AppError> {
    signoff().map(|state| state.sessions)
}

/// The signed-in user of this request, or 401.
pub fn require_user(auth: &AuthSession) -> Result<UserRecord, AppError> {
    auth.user.clone().ok_or_else(AppError::not_signed_in)
}

pub fn request_meta() -> RequestMeta {
    let Some(parts) = use_context::<http::request::Parts>() else {
        return RequestMeta::default();
    };
    let trusted = use_context::<Signoff>()
        .map(|state| state.trusted_proxies.clone())
        .unwrap_or_default();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    RequestMeta::of(&parts.headers, peer, &trusted)
}

/// The device cookie this request carries (`trust`), if any.
pub fn device_token(state: &Signoff) -> Option<String> {
    use_context::<http::request::Parts>()
        .and_then(|parts| trust::device_token(&parts.headers, state.sessions.cookie_secure))
}

/// Appends a `Set-Cookie` to this server function's response (appended: a response may set
/// several cookies).
pub fn set_cookie(cookie: Option<http::HeaderValue>) {
    if let (Some(cookie), Some(response)) = (cookie, use_context::<leptos_axum::ResponseOptions>())
    {
        response.append_header(http::header::SET_COOKIE, cookie);
    }
}

/// The current session's public handle and log tag, if it has an id.
pub fn current_handle(auth: &AuthSession) -> Option<String> {
    auth.session.id().map(|id| crate::session::handle(&id))
}

/// Unix milliseconds as RFC 3339 UTC ("2026-11-25T03:33:23.123Z").
pub fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339_s(secs: i64) -> String {
    rfc3339_ms(secs.saturating_mul(1000))
}
