//! HTTP hardening around every route: refusing cross-site state changes, capping `/api` bodies
//! before anything parses them, and the security headers (OWASP; ASVS 5.0 V3).

use std::time::Duration;

use axum::{
    body::{Body, BodyDataStream},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use futures::StreamExt;

use crate::{error::AppError, Signoff};

/// The largest `/api` request body accepted (413 above it, before any parsing or hashing).
pub const API_BODY_LIMIT: usize = 16 * 1024;

/// The policy for everything that is not the page itself (JSON, static files, errors). The page
/// sets its own, with a per-request nonce for the hydration scripts (the app's shell).
const NON_PAGE_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

/// How much of a refused body is read and thrown away so that the 413 reaches the client. A
/// client still sending when the server closes gets a TCP reset, and with it no answer at all.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;
/// How long a refused body may take to drain before the connection is closed regardless.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Refuses cross-site requests to state-changing `/api` calls with 403, and caps their bodies.
///
/// Leptos server functions have no cross-site check of their own, and `SameSite=Lax` does not
/// cover everything (login CSRF needs no cookie at all). See `is_cross_site` for the rule.
pub async fn guard_api(State(state): State<Signoff>, request: Request, next: Next) -> Response {
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe_method || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    // The provider's back-channel logout is a server-to-server call (OpenID Connect Back-Channel
    // Logout 1.0): it carries no cookie and proves itself with a signed token, so "which site is
    // this from" does not apply. Everything else here (the body cap) does.
    let server_to_server = crate::oidc::is_backchannel_logout(request.uri().path());
    if !server_to_server && is_cross_site(&request, state.site_origin.as_deref()) {
        tracing::warn!(path = request.uri().path(), "refused a cross-site request");
        return AppError::cross_site().into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > API_BODY_LIMIT) {
        // A client that waits for `100 Continue` has sent nothing yet: refuse without asking
        // for the body. Any other client is already sending it.
        let waits = request.headers().contains_key(header::EXPECT);
        if !waits {
            drain(request.into_body().into_data_stream(), 0).await;
        }
        return too_large();
    }
    // Read the body here, bounded, so a chunked upload without a length is capped too and the
    // server function only ever sees a small, complete body.
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) if crate::body_deadline::is_timeout(&error) => {
                return AppError::request_timeout().into_response()
            }
            Err(_) => {
                return AppError::invalid_input("The request body could not be read.")
                    .into_response()
            }
        };
        if bytes.len() + chunk.len() > API_BODY_LIMIT {
            drain(stream, bytes.len() + chunk.len()).await;
            return too_large();
        }
        bytes.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 413, closing the connection: what is left of the body is not worth reading.
fn too_large() -> Response {
    let mut response = AppError::too_large(API_BODY_LIMIT).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads and discards the rest of a refused body, up to [`DRAIN_LIMIT`] and [`DRAIN_TIME`], so
/// that closing the connection afterwards is a clean close the client can read the 413 from.
/// Nothing read here is parsed or kept.
async fn drain(mut stream: BodyDataStream, already: usize) {
    let mut seen = already;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

/// Whether a state-changing request comes from another site: the rule of Go 1.25's
/// `CrossOriginProtection` (Filippo Valsorda, "Cross-Site Request Forgery", 2025).
///
/// 1. `Sec-Fetch-Site` decides when present: `same-origin` and `none` (typed URL, bookmark) are
///    allowed, anything else (`same-site`, `cross-site`) is refused. Every current browser sends
///    it. It is what makes native form posts work: Chromium sends `Origin: null` on a form post
///    from a page with `Referrer-Policy: no-referrer`, but still `Sec-Fetch-Site: same-origin`.
/// 2. Without it, a request with no `Origin` either is not from a browser (curl, another server:
///    no ambient cookies to abuse) or is same-origin from a very old one: allowed.
/// 3. Otherwise `Origin` must name this site: its `host[:port]` must equal the `Host` header,
///    or, when `SITE_ORIGIN` is configured (a proxy in front rewrites `Host`), the whole origin
///    must equal it. `Origin: null` never matches.
///
/// tower-http 0.7's `CsrfLayer` implements the same rule. It is not used because Leptos and
/// tower-sessions pin tower-http 0.6 (a second copy in the build), because its 403 is not this
/// app's JSON error, and because with `SITE_ORIGIN` set the `Host` fallback must not apply.
fn is_cross_site(request: &Request, site_origin: Option<&str>) -> bool {
    let headers = request.headers();
    if let Some(fetch_site) = headers.get(HeaderName::from_static("sec-fetch-site")) {
        let fetch_site = fetch_site.as_bytes();
        return !(fetch_site.eq_ignore_ascii_case(b"same-origin")
            || fetch_site.eq_ignore_ascii_case(b"none"));
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
    State(state): State<Signoff>,
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
