//! Where a form posted without JavaScript lands: the types are shared (`signoff_types::landing`);
//! this adds the server's half, which reads the landing of the page being rendered.

pub use signoff_types::landing::*;

/// Reads the landing of the page being rendered: the `signed-out` flag of its URL and the flash
/// cookie, which it removes (an error is shown once). On the server only; the browser gets the
/// result with the rest of the page's data.
#[cfg(feature = "ssr")]
pub fn take() -> Landing {
    use leptos::prelude::use_context;

    let Some(parts) = use_context::<http::request::Parts>() else {
        return Landing::default();
    };
    let signed_out = parts
        .uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == SIGNED_OUT_FLAG));
    let state = use_context::<signoff::Signoff>();
    let cookie = signoff::cookies::AppCookie::flash(
        state
            .as_ref()
            .is_some_and(|state| state.sessions.cookie_secure),
    );
    let flash = signoff::cookies::values(&parts.headers, cookie.name())
        .next()
        .map(str::to_owned);
    if flash.is_some() {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.append_header(http::header::SET_COOKIE, cookie.removal_header());
        }
    }
    let providers = state
        .map(|state| state.oidc.iter().map(|provider| provider.info()).collect())
        .unwrap_or_default();
    Landing {
        signed_out,
        error: flash.as_deref().and_then(FormError::decode),
        providers,
    }
}
