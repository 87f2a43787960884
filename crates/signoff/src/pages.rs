//! The pages a mailed link or "Forgot your password?" opens, and the routes their forms post to.
//! They are plain HTML rendered here, not part of the app's Leptos bundle: they work the same
//! with and without JavaScript, a link opened on a phone needs no wasm, and the browser bundle
//! does not grow. Every form is a POST: a mail scanner that follows a link uses nothing.
//!
//! | page | form posts to | does |
//! |---|---|---|
//! | `GET /forgot` | `POST /api/password/forgot` (`account`) | `recovery::forgot` |
//! | `GET /reset?token=…` | `POST /api/password/reset` (`token`, `new_password`) | `recovery::reset` |
//! | `GET /account/email` | `POST /api/email/change` (`email`, `current_password`) | `recovery::request_address` |
//! | `GET /verify-email?token=…` | `POST /api/email/verify` (`token`) | `recovery::confirm_address` |
//!
//! A POST from a browser (it asks for `text/html`) is answered with a page, or `303` to the next
//! one; from a script, with JSON: `202 {"message"}` for the two requests that send mail, the
//! signed-in `User` for a reset, `{"email"}` for a confirmation, and the usual error JSON
//! (`400` for bad input and for a link that does not work, `429`, `503`).

use std::{net::SocketAddr, sync::LazyLock};

use axum::{
    extract::{ConnectInfo, FromRequest, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Redirect, Response},
    Form, Json,
};
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{
    attempts::check_current_password,
    error::AppError,
    html::escape,
    recovery::{self, LinkError},
    validate,
    wire::User,
    AuthSession, RequestMeta, Signoff,
};

/// The answer to every "Forgot your password?" request, whatever it names.
pub const FORGOT_ANSWER: &str = "If that matches an account with a confirmed e-mail address, a \
     link to choose a new password is on its way there. It works once, for 30 minutes.";
/// The answer to a request for a new address (the same when another account uses it).
pub const ADDRESS_ANSWER: &str = "A link to confirm the address is on its way there. It works \
     once, for 24 hours; until then, mail keeps going to the confirmed address, if any.";
/// The one message for a link that does not work, whatever the reason.
pub const LINK_UNUSABLE: &str = "This link does not work: it was used already, it is too old \
     (a password reset link works for 30 minutes, an address confirmation for 24 hours), it was \
     replaced by a newer one, or it is not for the account signed in here. Nothing was changed.";

/// Whether a request comes from a browser navigating (it asks for HTML) rather than a script.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;\
color:#1d2330}main{max-width:32rem;margin:3rem auto;padding:2rem;background:#fff;\
border-radius:.5rem;box-shadow:0 1px 3px #0002}h1{font-size:1.4rem;margin-top:0}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}input{width:100%;box-sizing:border-box;\
font:inherit;padding:.5rem;border:1px solid #767b86;border-radius:.25rem}\
input:focus,button:focus,a:focus{outline:3px solid #3b6fd8;outline-offset:2px}\
button{margin-top:1rem;font:inherit;padding:.5rem 1rem;border:0;border-radius:.25rem;\
background:#2851a3;color:#fff;cursor:pointer}.error{color:#a4161a;font-weight:600}\
.hint{color:#4a5060;font-size:.9rem}.notice{background:#e8f0fe;padding:.75rem;\
border-radius:.25rem}a{color:#2851a3}";

/// The pages' policy: no script at all, this stylesheet only, forms only to this site.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// A whole page: `title`, then `body` (already HTML), then the way back to the app.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\
         <h1>{title}</h1>\n{body}\n<p><a href=\"/\">Back to the app</a></p></main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The page for a failure that is no one's fault (the database, a bug): its status and message.
fn try_again(error: &AppError) -> Response {
    page(
        error.code.status(),
        "Please try again",
        &error_html(&error.message),
    )
}

fn error_html(message: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message))
}

/// The page for a link that does not work (one page for every reason).
fn unusable_link(html: bool) -> Response {
    if html {
        page(
            StatusCode::BAD_REQUEST,
            "This link does not work",
            &format!(
                "{}\n<p><a href=\"/forgot\">Ask for a new password reset link</a></p>",
                error_html(LINK_UNUSABLE)
            ),
        )
    } else {
        AppError::invalid_input(LINK_UNUSABLE).into_response()
    }
}

fn message_json(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

/// The `token` of a link's query, if there is one (malformed queries have none).
fn token_of(uri: &Uri) -> String {
    #[derive(Deserialize)]
    struct Query {
        token: Option<String>,
    }
    axum::extract::Query::<Query>::try_from_uri(uri)
        .ok()
        .and_then(|query| query.0.token)
        .unwrap_or_default()
}

fn has_flag(uri: &Uri, flag: &str) -> bool {
    uri.query()
        .is_some_and(|query| query.split('&').any(|part| part == flag))
}

/// The parts of a request the handlers need, taken before the body is read.
struct Parts {
    html: bool,
    meta: RequestMeta,
    auth: Result<AuthSession, AppError>,
    device: Option<String>,
}

fn parts(state: &Signoff, request: &Request) -> Parts {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    Parts {
        html: wants_html(request.headers()),
        meta: RequestMeta::of(request.headers(), peer, &state.trusted_proxies),
        auth: request
            .extensions()
            .get::<AuthSession>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!("auth layer missing from the mail-link routes");
                AppError::internal()
            }),
        device: crate::trust::device_token(request.headers(), state.sessions.cookie_secure),
    }
}

/// A form body, or 400 with the usual JSON error.
async fn form<T: serde::de::DeserializeOwned>(
    state: &Signoff,
    request: Request,
) -> Result<T, AppError> {
    Form::<T>::from_request(request, state)
        .await
        .map(|Form(form)| form)
        .map_err(|rejection| {
            tracing::info!(%rejection, "mail-link form refused");
            AppError::invalid_input("The form could not be read. Please send it again.")
        })
}

// ---- "Forgot your password?" ----

fn forgot_form(typed: &str, error: Option<&str>) -> String {
    let described = if error.is_some() {
        " aria-describedby=\"account-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    format!(
        "<p>Enter your username or your account's confirmed e-mail address. A link to choose a \
         new password goes to that address.</p>\n\
         <form method=\"post\" action=\"/api/password/forgot\">\
         <label for=\"account\">Username or e-mail address</label>\
         <input id=\"account\" name=\"account\" type=\"text\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required maxlength=\"254\" value=\"{}\"{described}>\
         {}<button type=\"submit\">Send the link</button></form>",
        escape(typed),
        error
            .map(|message| format!(
                "<p id=\"account-error\" class=\"error\" role=\"alert\">{}</p>",
                escape(message)
            ))
            .unwrap_or_default()
    )
}

/// `GET /forgot`: the form, or (`/forgot?sent`) the answer.
pub async fn forgot_page(uri: Uri) -> Response {
    if has_flag(&uri, "sent") {
        return page(
            StatusCode::OK,
            "Check your mail",
            &format!(
                "<p class=\"notice\" role=\"status\">{}</p>\n<p>Nothing after a few minutes? \
                 Look in the spam folder, or <a href=\"/forgot\">ask again</a>.</p>",
                escape(FORGOT_ANSWER)
            ),
        );
    }
    page(
        StatusCode::OK,
        "Forgot your password?",
        &forgot_form("", None),
    )
}

/// `POST /api/password/forgot` (`account`: a username or an e-mail address).
pub async fn forgot_post(State(state): State<Signoff>, request: Request) -> Response {
    #[derive(Deserialize)]
    struct Body {
        account: String,
    }
    let Parts { html, meta, .. } = parts(&state, &request);
    let typed = match form::<Body>(&state, request).await {
        Ok(body) => body.account,
        Err(error) => return answer_error(html, error, |message| forgot_form("", Some(message))),
    };
    match recovery::forgot(&state, &typed, &meta).await {
        Ok(()) if html => Redirect::to("/forgot?sent").into_response(),
        Ok(()) => message_json(StatusCode::ACCEPTED, FORGOT_ANSWER),
        Err(error) => answer_error(html, error, |message| forgot_form(&typed, Some(message))),
    }
}

/// An error: the form again with the message (HTML), or the error JSON.
fn answer_error(html: bool, error: AppError, form: impl FnOnce(&str) -> String) -> Response {
    if !html {
        return error.into_response();
    }
    let status = error.code.status();
    let mut response = page(
        status,
        "Something needs another look",
        &form(&error.message),
    );
    if let Some(retry) = error.retry_after {
        if let Ok(value) = HeaderValue::from_str(&retry.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

// ---- The reset link ----

fn reset_form(token: &str, username: &str, error: Option<&str>) -> String {
    let described = if error.is_some() {
        "new-password-hint new-password-error\" aria-invalid=\"true"
    } else {
        "new-password-hint"
    };
    format!(
        "<p>Choose a new password for <strong>{user}</strong>. Every session of the account is \
         signed out, on every device, and you are signed in here.</p>\n\
         <form method=\"post\" action=\"/api/password/reset\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <input type=\"text\" name=\"username\" value=\"{user}\" autocomplete=\"username\" hidden readonly>\
         <label for=\"new-password\">New password</label>\
         <input id=\"new-password\" name=\"new_password\" type=\"password\" \
         autocomplete=\"new-password\" required aria-describedby=\"{described}\">\
         <p class=\"hint\" id=\"new-password-hint\">At least {min} characters. Spaces and any \
         characters are welcome.</p>{error}\
         <button type=\"submit\">Set the new password</button></form>",
        user = escape(username),
        token = escape(token),
        min = validate::PASSWORD_MIN_CHARS,
        error = error
            .map(|message| format!(
                "<p id=\"new-password-error\" class=\"error\" role=\"alert\">{}</p>",
                escape(message)
            ))
            .unwrap_or_default(),
    )
}

/// `GET /reset?token=…`: the form for a link that works, the error page otherwise. Uses nothing.
pub async fn reset_page(State(state): State<Signoff>, uri: Uri) -> Response {
    let token = token_of(&uri);
    match recovery::reset_link_account(&state, &token).await {
        Ok(Some(user)) => page(
            StatusCode::OK,
            "Choose a new password",
            &reset_form(&token, &user.username, None),
        ),
        Ok(None) => unusable_link(true),
        Err(error) => try_again(&error),
    }
}

/// `POST /api/password/reset` (`token`, `new_password`).
pub async fn reset_post(State(state): State<Signoff>, request: Request) -> Response {
    #[derive(Deserialize)]
    struct Body {
        token: String,
        new_password: String,
    }
    let Parts {
        html, meta, auth, ..
    } = parts(&state, &request);
    let body = match form::<Body>(&state, request).await {
        Ok(body) => body,
        Err(error) => return answer_error(html, error, error_html),
    };
    let mut auth = match auth {
        Ok(auth) => auth,
        Err(error) => return error.into_response(),
    };
    match recovery::reset(&mut auth, &state, &body.token, &body.new_password, &meta).await {
        Ok(_) if html => Redirect::to("/").into_response(),
        Ok(user) => Json(User::from(&user)).into_response(),
        Err(LinkError::Unusable) => unusable_link(html),
        Err(LinkError::App(error)) => {
            let username = match recovery::reset_link_account(&state, &body.token).await {
                Ok(Some(user)) => user.username,
                _ => return unusable_link(html),
            };
            answer_error(html, error, |message| {
                reset_form(&body.token, &username, Some(message))
            })
        }
    }
}

// ---- The account's address ----

/// `GET /account/email`: the account's address, one waiting for confirmation, and the form to
/// add or change it (signed in only).
pub async fn email_page(State(state): State<Signoff>, request: Request) -> Response {
    let sent = has_flag(request.uri(), "sent");
    let Parts { auth, .. } = parts(&state, &request);
    let auth = match auth {
        Ok(auth) => auth,
        Err(error) => return error.into_response(),
    };
    let Some(user) = auth.user.clone() else {
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "<p>Your e-mail address is part of your account: sign in, then open the Security \
             section.</p>",
        );
    };
    match email_body(&state, &auth, &user, sent, None).await {
        Ok(body) => page(StatusCode::OK, "Your e-mail address", &body),
        Err(error) => try_again(&error),
    }
}

async fn email_body(
    state: &Signoff,
    auth: &AuthSession,
    user: &crate::UserRecord,
    sent: bool,
    error: Option<&str>,
) -> Result<String, AppError> {
    let addresses = recovery::addresses(state, user.id).await?;
    let mut body = String::new();
    if sent {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(ADDRESS_ANSWER)
        ));
    }
    body.push_str(&match &addresses.confirmed {
        Some(address) => format!(
            "<p>Confirmed address: <strong>{}</strong>. Password reset links and security \
             notices go there.</p>\n",
            escape(address)
        ),
        None => "<p>Your account has no confirmed e-mail address: if you forget your password, \
                 there is no way to reset it.</p>\n"
            .to_owned(),
    });
    if let Some(pending) = &addresses.pending {
        body.push_str(&format!(
            "<p>Waiting for confirmation: <strong>{}</strong> (open the link mailed there).</p>\n",
            escape(pending)
        ));
    }
    let has_password = user.password_hash != crate::backend::NO_PASSWORD;
    let proof = if has_password {
        "<label for=\"current-password\">Current password</label>\
         <input id=\"current-password\" name=\"current_password\" type=\"password\" \
         autocomplete=\"current-password\" required>"
            .to_owned()
    } else if crate::stepup::is_fresh(auth, state.sessions.step_up_max_age).await? {
        "<p class=\"hint\">You signed in recently: that is your proof of identity.</p>".to_owned()
    } else {
        "<p class=\"hint\">Your account has no password: <a href=\"/confirm\">confirm it's you</a> \
         by signing in with your provider again first.</p>"
            .to_owned()
    };
    let error = error
        .map(|message| {
            format!(
                "<p id=\"email-error\" class=\"error\" role=\"alert\">{}</p>",
                escape(message)
            )
        })
        .unwrap_or_default();
    body.push_str(&format!(
        "<form method=\"post\" action=\"/api/email/change\">\
         <label for=\"email\">{label}</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required \
         maxlength=\"254\">{proof}{error}\
         <button type=\"submit\">Send a confirmation link</button></form>",
        label = if addresses.confirmed.is_some() {
            "New e-mail address"
        } else {
            "E-mail address"
        },
    ));
    Ok(body)
}

/// `POST /api/email/change` (`email`, `current_password`; the password is not needed after a
/// provider sign-in within 10 minutes, for an account that has none).
pub async fn email_post(State(state): State<Signoff>, request: Request) -> Response {
    #[derive(Deserialize)]
    struct Body {
        email: String,
        #[serde(default)]
        current_password: String,
    }
    let Parts {
        html,
        meta,
        auth,
        device,
    } = parts(&state, &request);
    let auth = match auth {
        Ok(auth) => auth,
        Err(error) => return error.into_response(),
    };
    let result = async {
        let user = crate::require_user(&auth)?;
        let body = form::<Body>(&state, request).await?;
        // The address is checked before the proof: a typo costs no password attempt.
        crate::mail::check_address(&body.email)?;
        prove(&state, &auth, &user, &body.current_password, &meta, device).await?;
        recovery::request_address(&state, &user, &body.email).await
    }
    .await;
    match result {
        Ok(()) if html => Redirect::to("/account/email?sent").into_response(),
        Ok(()) => message_json(StatusCode::ACCEPTED, ADDRESS_ANSWER),
        Err(error) if !html => error.into_response(),
        Err(error) => {
            let Some(user) = auth.user.clone() else {
                return page(
                    error.code.status(),
                    "Sign in first",
                    &error_html(&error.message),
                );
            };
            let status = error.code.status();
            match email_body(&state, &auth, &user, false, Some(&error.message)).await {
                Ok(body) => page(status, "Your e-mail address", &body),
                Err(error) => try_again(&error),
            }
        }
    }
}

/// A fresh proof of identity: the current password (throttled like a sign-in), or, for an
/// account without one, a provider sign-in within the last 10 minutes.
async fn prove(
    state: &Signoff,
    auth: &AuthSession,
    user: &crate::UserRecord,
    password: &str,
    meta: &RequestMeta,
    device: Option<String>,
) -> Result<(), AppError> {
    if user.password_hash == crate::backend::NO_PASSWORD {
        // No password to give: a recent sign-in (or confirmation) is the proof.
        return crate::stepup::require_fresh(auth, state.sessions.step_up_max_age).await;
    }
    // Known already (it is signed in): no new device cookie to set.
    let _ = check_current_password(state, user, password, meta, device).await?;
    crate::stepup::proved(&auth.session).await?;
    Ok(())
}

// ---- "Confirm it's you" ----

/// `GET /confirm`: a fresh proof of identity before changing the ways in (`stepup`): the password
/// (posted to `POST /api/confirm_identity`), or, for an account without one, signing in again with
/// a linked provider. Then back to the page, to make the change.
pub async fn confirm_page(State(state): State<Signoff>, request: Request) -> Response {
    let Parts { auth, .. } = parts(&state, &request);
    let auth = match auth {
        Ok(auth) => auth,
        Err(error) => return error.into_response(),
    };
    let Some(user) = auth.user.clone() else {
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign in first",
            "<p>Sign in, then open the Security section.</p>",
        );
    };
    let minutes = state.sessions.step_up_max_age.as_secs().div_ceil(60);
    let intro = format!(
        "<p>Linking or unlinking a provider, setting a password and changing your e-mail address \
         need a proof that it is you within the last {minutes} minutes. Using the site does not \
         count.</p>\n"
    );
    if user.password_hash != crate::backend::NO_PASSWORD {
        return page(
            StatusCode::OK,
            "Confirm it's you",
            &format!(
                "{intro}<form method=\"post\" action=\"/api/confirm_identity\">\
                 <input type=\"text\" name=\"username\" value=\"{}\" autocomplete=\"username\" hidden readonly>\
                 <label for=\"password\">Password</label>\
                 <input id=\"password\" name=\"password\" type=\"password\" \
                 autocomplete=\"current-password\" required>\
                 <button type=\"submit\">Confirm</button></form>",
                escape(&user.username)
            ),
        );
    }
    let linked = crate::oidc::identities::ways_in(&state.db, user.id)
        .await
        .map(|(providers, _)| providers)
        .unwrap_or_default();
    let buttons: String = linked
        .iter()
        .map(|id| {
            format!(
                "<form method=\"post\" action=\"/api/oidc/{}/start\">\
                 <button type=\"submit\">Sign in again with {}</button></form>",
                escape(id),
                escape(&state.oidc.name_of(id))
            )
        })
        .collect();
    page(
        StatusCode::OK,
        "Confirm it's you",
        &format!("{intro}<p>Your account has no password: sign in again with your provider.</p>{buttons}"),
    )
}

// ---- The confirmation link ----

/// `GET /verify-email?token=…`: asks to confirm the address (a POST), or the error page.
pub async fn verify_page(State(state): State<Signoff>, request: Request) -> Response {
    let token = token_of(request.uri());
    let Parts { auth, .. } = parts(&state, &request);
    let signed_in = auth.ok().and_then(|auth| auth.user.map(|user| user.id));
    match recovery::confirm_link_address(&state, &token, signed_in).await {
        Ok(Some(address)) => page(
            StatusCode::OK,
            "Confirm your e-mail address",
            &format!(
                "<p>Confirm <strong>{}</strong> as your account's e-mail address? Password reset \
                 links and security notices will go there.</p>\n\
                 <form method=\"post\" action=\"/api/email/verify\">\
                 <input type=\"hidden\" name=\"token\" value=\"{}\">\
                 <button type=\"submit\">Confirm the address</button></form>",
                escape(&address),
                escape(&token)
            ),
        ),
        Ok(None) => unusable_link(true),
        Err(error) => try_again(&error),
    }
}

/// `POST /api/email/verify` (`token`).
pub async fn verify_post(State(state): State<Signoff>, request: Request) -> Response {
    #[derive(Deserialize)]
    struct Body {
        token: String,
    }
    let Parts {
        html, meta, auth, ..
    } = parts(&state, &request);
    let signed_in = auth.ok().and_then(|auth| auth.user.map(|user| user.id));
    let body = match form::<Body>(&state, request).await {
        Ok(body) => body,
        Err(error) => return answer_error(html, error, error_html),
    };
    match recovery::confirm_address(&state, &body.token, signed_in, &meta).await {
        Ok(address) if html => page(
            StatusCode::OK,
            "Address confirmed",
            &format!(
                "<p class=\"notice\" role=\"status\"><strong>{}</strong> is your account's \
                 e-mail address now.</p>",
                escape(&address)
            ),
        ),
        Ok(address) => Json(serde_json::json!({ "email": address })).into_response(),
        Err(LinkError::Unusable) => unusable_link(html),
        Err(LinkError::App(error)) => answer_error(html, error, error_html),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_policy_allows_their_style_and_no_script() {
        assert!(CSP.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(!CSP.contains("script"));
    }
}
