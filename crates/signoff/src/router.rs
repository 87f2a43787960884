//! How an axum app mounts Signoff: the session stack around the routes that use sessions, the
//! core's own routes, and the hardening around everything. The order of the layers is part of
//! Signoff's guarantees, so it is written once, here.
//!
//! From the outside in: security headers → a request body's total deadline (408) → cross-site
//! refusal and the `/api` body cap → (the app's layers, e.g. native form landing) → the
//! provider's back-channel logout and the app's session-free routes (static files, health) →
//! the session stack: the per-request owner slot → store failures as 503 →
//! `Cache-Control: no-store` → the session cookie on the wire → duplicate session cookies
//! refused → cookies and session → sliding expiry → axum-login → the event stream, single
//! sign-on's redirects, and the app's pages and server functions.

use axum::{
    extract::{FromRef, Request},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use axum_login::AuthManager;
use tower::{layer::layer_fn, ServiceBuilder};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    backend::prefetched, body_deadline, error::AppError, guard, oidc, pages, passkeys, session,
    stream, wire::EVENTS_PATH, Signoff,
};

/// Wraps `routes` (the app's pages and server functions) in the session stack, with the core's
/// session routes beside them: `GET /api/events` and single sign-on's start, link and callback.
pub fn with_sessions<S>(routes: Router<S>, signoff: &Signoff) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Signoff: FromRef<S>,
{
    let backend = signoff.backend.clone();
    let sessions = signoff.sessions;
    let stack = ServiceBuilder::new()
        // Lets the session read hand its owner to the auth layer (one read per request).
        .layer(middleware::from_fn(|request: Request, next: Next| {
            prefetched::scope(next.run(request))
        }))
        .layer(middleware::map_response(store_failure_is_unavailable))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // The session cookie goes out once and well formed, whoever wrote it (the session layer
        // writes its own removals, without `Secure`).
        .layer(middleware::from_fn_with_state(
            sessions,
            session::session_cookie_on_the_wire,
        ))
        .layer(middleware::from_fn_with_state(
            sessions,
            session::refuse_duplicate_cookies,
        ))
        .layer(session::layer(signoff.store.clone(), sessions))
        .layer(middleware::from_fn_with_state(
            sessions,
            session::refresh_expiry,
        ))
        .layer(layer_fn(move |inner| {
            AuthManager::new(inner, backend.clone(), session::AUTH_DATA_KEY)
        }));
    routes
        // Not a server function: an event stream the browser holds open.
        .route(EVENTS_PATH, get(stream::stream))
        // Single sign-on: redirects to the provider and back (`oidc::flow`).
        .route(
            "/api/oidc/{provider}/start",
            post(oidc::flow::start_sign_in),
        )
        .route("/api/oidc/{provider}/link", post(oidc::flow::start_link))
        .route("/api/oidc/{provider}/callback", get(oidc::flow::callback))
        // "Forgot your password?", the links mailed for a reset or a new address, and the
        // account's address: plain pages and their forms (`pages`).
        .route("/forgot", get(pages::forgot_page))
        .route("/api/password/forgot", post(pages::forgot_post))
        .route("/reset", get(pages::reset_page))
        .route("/api/password/reset", post(pages::reset_post))
        .route("/account/email", get(pages::email_page))
        .route("/api/email/change", post(pages::email_post))
        .route("/verify-email", get(pages::verify_page))
        .route("/confirm", get(pages::confirm_page))
        .route("/api/email/verify", post(pages::verify_post))
        // Passkeys: each ceremony is a start and a finish (`passkeys`); the list is a server
        // function (`signoff-leptos`).
        .route("/api/passkeys/add/start", post(passkeys::add_start))
        .route("/api/passkeys/add/finish", post(passkeys::add_finish))
        .route("/api/passkeys/rename", post(passkeys::rename))
        .route("/api/passkeys/remove", post(passkeys::remove))
        .route("/api/passkeys/signin/start", post(passkeys::sign_in_start))
        .route(
            "/api/passkeys/signin/finish",
            post(passkeys::sign_in_finish),
        )
        .route("/api/passkeys/create/start", post(passkeys::create_start))
        .route("/api/passkeys/create/finish", post(passkeys::create_finish))
        .route("/api/passkeys/confirm/start", post(passkeys::confirm_start))
        .route(
            "/api/passkeys/confirm/finish",
            post(passkeys::confirm_finish),
        )
        .layer(stack)
}

/// Adds the provider's back-channel logout (a server-to-server call: no session, no cookie)
/// and the hardening around everything: cross-site refusal and the `/api` body cap, the body
/// deadline, the security headers. Apply it last, to the whole router.
pub fn harden<S>(router: Router<S>, signoff: &Signoff) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Signoff: FromRef<S>,
{
    router
        .route(
            oidc::BACKCHANNEL_LOGOUT_PATH,
            post(oidc::backchannel::logout),
        )
        .layer(middleware::from_fn_with_state(
            signoff.clone(),
            guard::guard_api,
        ))
        // Outside the guard, which reads `/api` bodies: one that has not arrived whole within
        // the deadline ends in 408 instead of holding the connection.
        .layer(middleware::from_fn_with_state(
            signoff.body_timeout,
            body_deadline::limit_body_time,
        ))
        .layer(middleware::from_fn_with_state(
            signoff.clone(),
            guard::security_headers,
        ))
}

/// tower-sessions and axum-login answer a failed store read or write with an empty 500. That is
/// the database being unavailable, not a bug: say so, in the same JSON shape as every other error.
async fn store_failure_is_unavailable(response: Response) -> Response {
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return AppError::unavailable().into_response();
    }
    response
}
