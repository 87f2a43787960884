//! The server functions by which a person ends sessions: sign out, sign out everywhere, sign out
//! one session, sign out of the identity provider too. Each extracts the request's session and
//! calls its function in `ssr/lifecycle.rs`, **where logout happens** (the sequence, the deleted
//! rows, the cookie removal and the news to other pages), then applies the headers that returns.
//! The buttons that call them are in `ui.rs` and `security_ui.rs`.

use leptos::prelude::*;

use crate::error::AppError;

/// `POST /api/logout`: ends the current session. Always 2xx when the session is gone afterwards,
/// including when there was none (idempotent); 503 when it could not be destroyed.
#[server(prefix = "/api", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    let (mut auth, state, response) = ending().await?;
    let ended =
        super::ssr::lifecycle::sign_out(&mut auth, &state, &super::ssr::request_meta()).await?;
    apply(&response, ended.headers);
    Ok(())
}

/// `POST /api/logout_all`: ends every session of the user, this one included.
#[server(prefix = "/api", endpoint = "logout_all")]
pub async fn logout_all() -> Result<(), AppError> {
    let (mut auth, state, response) = ending().await?;
    let user = super::ssr::require_user(&auth)?;
    let meta = super::ssr::request_meta();
    let ended = super::ssr::lifecycle::sign_out_everywhere(&mut auth, &state, &user, &meta).await?;
    apply(&response, ended.headers);
    Ok(())
}

/// `POST /api/revoke_session` (`id`): ends one of the user's sessions, by the public handle that
/// `GET /api/sessions` lists. 404 for a handle that is not one of the user's live sessions.
#[server(prefix = "/api", endpoint = "revoke_session")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn revoke_session(id: String) -> Result<(), AppError> {
    let (mut auth, state, response) = ending().await?;
    let user = super::ssr::require_user(&auth)?;
    super::validate::plain_parameter("session id", &id)?;
    let meta = super::ssr::request_meta();
    let ended = super::ssr::lifecycle::revoke(&mut auth, &state, &user, &id, &meta).await?;
    apply(&response, ended.headers);
    Ok(())
}

/// `POST /api/logout_provider`: "Sign out of NAME too". Ends this session exactly as
/// [`logout`] does, then answers with the provider's sign-out URL for the browser to go to (the
/// provider sends it back to `/?signed-out`); `null` when there is none to go to. The session is
/// ended all the same, and the page says so.
#[server(prefix = "/api", endpoint = "logout_provider")]
pub async fn logout_provider() -> Result<Option<String>, AppError> {
    let (mut auth, state, response) = ending().await?;
    let meta = super::ssr::request_meta();
    let (ended, url) =
        super::ssr::lifecycle::sign_out_of_provider_too(&mut auth, &state, &meta).await?;
    apply(&response, ended.headers);
    Ok(url)
}

/// What a server function that may end this request's session needs: its session, the state,
/// and the response. The response is taken first: a sign-out that could not clear the cookie
/// would report success with the cookie still in the browser, so nothing is destroyed unless the
/// removal can be sent.
#[cfg(feature = "ssr")]
async fn ending() -> Result<
    (
        super::ssr::AuthSession,
        signoff::Signoff,
        leptos_axum::ResponseOptions,
    ),
    AppError,
> {
    let response = use_context::<leptos_axum::ResponseOptions>().ok_or_else(|| {
        tracing::error!("a sign-out called outside a server function's response");
        AppError::internal()
    })?;
    Ok((
        super::ssr::auth_session().await?,
        super::ssr::signoff()?,
        response,
    ))
}

/// Adds the headers of an ended session to the response. Appended, never inserted: the response
/// may carry other cookies (the session layer's own removal is rewritten downstream).
#[cfg(feature = "ssr")]
fn apply(
    response: &leptos_axum::ResponseOptions,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
) {
    for (name, value) in headers {
        response.append_header(name, value);
    }
}
