//! Form posts made without JavaScript land back on the page (progressive enhancement).
//!
//! Every form of the app is a real `<form method="post" action="/api/…">`: once the wasm has
//! loaded it is intercepted and nothing navigates; before that, or with JavaScript off, the
//! browser posts it itself and then shows whatever comes back. A server function answers in
//! JSON, which is no page to show, and Leptos would redirect to the `Referer`, which this site
//! never gets (`Referrer-Policy: no-referrer`). So here, a native form post is answered with
//! `303 See Other`:
//!
//! * success: to `/` (the signed-in page), or `/?signed-out` after signing out, or the
//!   provider's end-session endpoint after "Sign out of NAME too";
//! * failure: to `/`, with the error for that form in a short-lived cookie (`crate::landing`).
//!
//! Everything else the server function's response carried (the session cookie, its removal,
//! `Clear-Site-Data`, `Cache-Control`) is kept. Requests from scripts (`fetch`, the server
//! function client, curl) are untouched: they do not ask for HTML.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::Response,
};

use signoff::Signoff;

use crate::{
    error::AppError,
    landing::{FormError, SIGNED_OUT_FLAG},
};

/// The largest error body read back (they are one short JSON object).
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Turns the answer to a native form post into a redirect to the page. Sits inside the
/// cross-site guard, so a refused cross-site post stays a plain 403 and sets nothing.
pub async fn land_native_forms(
    State(state): State<Signoff>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || !is_native_form_post(request.headers()) {
        return next.run(request).await;
    }
    let Some(endpoint) = request
        .uri()
        .path()
        .strip_prefix("/api/")
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    // The single sign-on routes and the mail-link pages' forms (`signoff::pages`) are no server
    // functions: they answer a browser with their own pages and redirects already.
    if ["oidc/", "password/", "email/"]
        .iter()
        .any(|prefix| endpoint.starts_with(prefix))
    {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();

    let mut location = "/".to_owned();
    if parts.status.is_client_error() || parts.status.is_server_error() {
        let bytes = axum::body::to_bytes(body, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        let error = serde_json::from_slice::<AppError>(&bytes).unwrap_or_else(|_| {
            tracing::warn!(%endpoint, status = %parts.status, "form post failed without an error body");
            AppError::internal()
        });
        if let Some(flash) = FormError::new(&endpoint, &error.message) {
            if let Ok(cookie) = HeaderValue::from_str(&signoff::cookies::AppCookie::flash_of(
                &flash,
                state.sessions.cookie_secure,
            )) {
                parts.headers.append(header::SET_COOKIE, cookie);
            }
        }
    } else if matches!(endpoint.as_str(), "logout" | "logout_all") {
        location = format!("/?{SIGNED_OUT_FLAG}");
    } else if endpoint == "logout_provider" {
        // Signed out here; on to the provider's end-session endpoint when the answer names it
        // (a JSON string), which sends the browser back to `/?signed-out`.
        let bytes = axum::body::to_bytes(body, ERROR_BODY_LIMIT)
            .await
            .unwrap_or_default();
        location = serde_json::from_slice::<Option<String>>(&bytes)
            .ok()
            .flatten()
            .unwrap_or_else(|| format!("/?{SIGNED_OUT_FLAG}"));
    }

    parts.status = StatusCode::SEE_OTHER;
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::RETRY_AFTER,
    ] {
        parts.headers.remove(name);
    }
    if let Ok(location) = HeaderValue::from_str(&location) {
        parts.headers.insert(header::LOCATION, location);
    }
    Response::from_parts(parts, Body::empty())
}

/// A browser navigating with a form asks for HTML; script clients ask for data. (The same test
/// Leptos uses for its own form redirects.)
fn is_native_form_post(headers: &HeaderMap) -> bool {
    signoff::pages::wants_html(headers)
}
