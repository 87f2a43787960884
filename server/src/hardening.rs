//! HTTP hardening around every route: refusing cross-site state changes, capping `/api` bodies
//! before anything parses them, and the security headers (OWASP; ASVS 5.0 V3).

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::{error::AppError, state::AppState};

/// The largest `/api` request body accepted (413 above it, before any parsing or hashing).
pub const API_BODY_LIMIT: usize = 16 * 1024;

/// The policy for everything that is not the page itself (JSON, static files, errors). The page
/// sets its own, with a per-request nonce for the hydration scripts (`app::shell`).
const NON_PAGE_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

/// Refuses cross-site requests to state-changing `/api` calls with 403, and caps their bodies.
///
/// Leptos server functions have no cross-site check of their own, and `SameSite=Lax` does not
/// cover everything (login CSRF needs no cookie at all). A request is cross-site when
/// `Sec-Fetch-Site` says so, or when `Origin` is present and is not the site's. Requests with
/// neither header (curl, other servers) are allowed: they carry no ambient browser credentials.
pub async fn guard_api(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe_method || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    if is_cross_site(&request, state.site_origin.as_deref()) {
        tracing::warn!(path = request.uri().path(), "refused a cross-site request");
        return AppError::cross_site().into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > API_BODY_LIMIT) {
        return AppError::too_large(API_BODY_LIMIT).into_response();
    }
    // Read the body here, bounded, so a chunked upload without a length is capped too and the
    // server function only ever sees a small, complete body.
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, API_BODY_LIMIT).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => AppError::too_large(API_BODY_LIMIT).into_response(),
    }
}

fn is_cross_site(request: &Request, site_origin: Option<&str>) -> bool {
    let headers = request.headers();
    let fetch_site = headers.get(HeaderName::from_static("sec-fetch-site"));
    if fetch_site.is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    if let Some(site) = site_origin {
        return !origin.eq_ignore_ascii_case(site.trim_end_matches('/'));
    }
    // No configured origin: the Origin's host[:port] must be the Host the request was sent to.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    match (origin.split_once("://"), host) {
        (Some((_, authority)), Some(host)) => !authority.eq_ignore_ascii_case(host),
        _ => true,
    }
}

/// Adds the security headers to every response. HSTS only when cookies are `Secure`, i.e. the
/// site is served over TLS.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    set_security_headers(response.headers_mut(), state.sessions.cookie_secure);
    response
}

fn set_security_headers(headers: &mut HeaderMap, tls: bool) {
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(NON_PAGE_CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
}
