//! The Leptos glue of the server side: what a server function reads from its context (the
//! request's session, Signoff's state, the client's address and device cookie) and writes to its
//! response, and how an app mounts Signoff ([`provide`], [`router`]). Everything else
//! server-side is the `signoff` core crate; the re-exports below are the parts this crate's server
//! functions call.

pub use signoff::{
    attempts, audit, backend, client_addr, common_passwords, current_handle, hub, lifecycle, names,
    notices, oidc, passkeys, password, recovery, require_user, rfc3339_ms, rfc3339_s, session,
    stepup, stream, throttle, trust, AuthSession, Backend, Credentials, RequestMeta, UserRecord,
};

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use leptos::prelude::use_context;
use signoff::Signoff;

use crate::error::AppError;

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

/// The client of this request, as Signoff records it (address behind trusted proxies, agent).
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
    use_context::<http::request::Parts>().and_then(|parts| {
        signoff::trust::device_token(&parts.headers, state.sessions.cookie_secure)
    })
}

/// Appends a `Set-Cookie` to this server function's response (appended: a response may set
/// several cookies).
pub fn set_cookie(cookie: Option<http::HeaderValue>) {
    if let (Some(cookie), Some(response)) = (cookie, use_context::<leptos_axum::ResponseOptions>())
    {
        response.append_header(http::header::SET_COOKIE, cookie);
    }
}

/// Puts [`Signoff`] into the Leptos context of every page render and server function: pass it to
/// `leptos_routes_with_context` and `file_and_error_handler_with_context`.
pub fn provide(signoff: &Signoff) -> impl Fn() + Clone + Send + Sync + 'static {
    let signoff = signoff.clone();
    move || leptos::prelude::provide_context(signoff.clone())
}

/// Mounts Signoff around an app: `pages` (the Leptos routes and server functions, with their
/// fallback) get the session stack and Signoff's own routes; `outside` (static files, a health
/// check) is served without sessions; native form posts land back on the page; everything gets
/// Signoff's hardening. The whole order is `signoff::router`'s.
pub fn router<S>(
    pages: axum::Router<S>,
    outside: axum::Router<S>,
    signoff: &Signoff,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
    Signoff: axum::extract::FromRef<S>,
{
    let app = signoff::router::with_sessions(pages, signoff)
        .merge(outside)
        .layer(axum::middleware::from_fn_with_state(
            signoff.clone(),
            crate::forms::land_native_forms,
        ));
    signoff::router::harden(app, signoff)
}
