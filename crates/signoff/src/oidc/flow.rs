//! Signing in (or linking an account) through a provider: the authorization code flow with PKCE
//! (OpenID Connect Core §3.1, RFC 7636), in two requests of the browser.
//!
//! 1. `POST /api/oidc/<id>/start` (or `/link`, signed in): a fresh `state`, `nonce` and PKCE
//!    verifier go into this browser's session (the pre-login session), and the browser is sent
//!    to the provider's authorization endpoint. A form post, so the cross-site guard covers it.
//! 2. `GET /api/oidc/<id>/callback?code&state`: the pending sign-in whose `state` matches is
//!    taken out of the session (single use), the code is exchanged with the verifier, and the
//!    ID token is verified (signature, issuer, audience, expiry, nonce). Then the account linked
//!    to (issuer, subject) is signed in on a new session id (`login::start_session`, as every
//!    sign-in), or one is created, or the identity is linked to the signed-in account.
//!
//! Both answer with a redirect: to the provider, or back to `/`. What went wrong travels to the
//! page in the flash cookie (`crate::landing`), never in the URL.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Path, Query, Request, State},
    http::{header, HeaderValue},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};

use super::{identities, token, Provider, Providers, SessionProvider};
use crate::{
    audit,
    error::AppError,
    landing::{FormError, OIDC_LINK, OIDC_LOGIN},
    now_ms,
    signoff::Signoff,
    throttle, AuthSession, RequestMeta,
};

/// The session key of the sign-ins under way in this browser.
const PENDING_KEY: &str = "signoff.oidc.pending";
/// Sign-ins under way at once per browser (tabs); the oldest is dropped beyond this.
const PENDING_MAX: usize = 3;
/// How long a person may take at the provider.
const PENDING_TTL_MS: i64 = 10 * 60 * 1000;

/// A sign-in under way, as the pre-login session holds it (server-side only).
#[derive(Clone, Serialize, Deserialize)]
struct Pending {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    /// Linking to this signed-in account, rather than signing in.
    link_to: Option<i64>,
    started_ms: i64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Intent {
    SignIn,
    Link,
}

impl Intent {
    fn form(self) -> &'static str {
        match self {
            Intent::SignIn => OIDC_LOGIN,
            Intent::Link => OIDC_LINK,
        }
    }
}

/// `POST /api/oidc/<id>/start`: "Sign in with NAME".
pub async fn start_sign_in(
    State(state): State<Signoff>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    start(state, id, request, Intent::SignIn).await
}

/// `POST /api/oidc/<id>/link`: "Link NAME" in the Security section (signed in).
pub async fn start_link(
    State(state): State<Signoff>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    start(state, id, request, Intent::Link).await
}

async fn start(state: Signoff, id: String, request: Request, intent: Intent) -> Response {
    // Only the request's parts are kept: a `Request` is not `Sync`, so a reference to it cannot
    // be held across an await of a handler's future.
    let auth = auth_session(&request);
    drop(request);
    let begun = match auth {
        Ok(auth) => begin(&state, &id, auth, intent).await,
        Err(error) => Err(error),
    };
    match begun {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(error) => land(&state, intent.form(), &error.message),
    }
}

async fn begin(
    state: &Signoff,
    id: &str,
    auth: AuthSession,
    intent: Intent,
) -> Result<String, AppError> {
    let provider = state
        .oidc
        .get(id)
        .ok_or_else(|| AppError::not_found("identity provider"))?;
    let link_to = match intent {
        Intent::SignIn => None,
        Intent::Link => {
            let user_id = auth
                .user
                .as_ref()
                .map(|user| user.id)
                .ok_or_else(AppError::not_signed_in)?;
            // A new way in: a stolen session alone must not be able to add its thief's.
            crate::stepup::require_fresh(&auth, state.sessions.step_up_max_age).await?;
            Some(user_id)
        }
    };
    let metadata = provider
        .metadata()
        .await
        .map_err(|error| unreachable_provider(provider, &error))?;
    // Not throttled: a start costs nothing but a pending entry in this browser's session, and
    // counting starts per address locked out everyone behind one NAT or proxy after a few
    // double clicks. What costs something, the callback's code exchange, is counted instead.
    let pending = Pending {
        provider: id.to_owned(),
        state: super::random_token(32)?,
        nonce: super::random_token(32)?,
        verifier: super::random_token(32)?,
        link_to,
        started_ms: now_ms(),
    };
    let mut url = reqwest::Url::parse(&metadata.authorization_endpoint)
        .map_err(|_| unreachable_provider(provider, &"bad authorization endpoint"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.settings.client_id)
        .append_pair("redirect_uri", &provider.redirect_uri)
        .append_pair("scope", &provider.settings.scopes.join(" "))
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &super::pkce_challenge(&pending.verifier))
        .append_pair("code_challenge_method", "S256");
    let mut pendings = live_pendings(&auth).await?;
    pendings.push(pending);
    if pendings.len() > PENDING_MAX {
        pendings.remove(0);
    }
    auth.session.insert(PENDING_KEY, pendings).await?;
    Ok(url.into())
}

/// What the provider sends the browser back with.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the issuer of the response, against mix-up attacks.
    iss: Option<String>,
}

/// `GET /api/oidc/<id>/callback`: the redirect URI to register at the provider.
pub async fn callback(
    State(state): State<Signoff>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let mut intent = Intent::SignIn;
    let auth = auth_session(&request);
    let meta = request_meta(&state, &request);
    let params = Query::<CallbackParams>::try_from_uri(request.uri())
        .map(|Query(params)| params)
        .unwrap_or_default();
    drop(request);
    let finished = match auth {
        Ok(auth) => finish(&state, &id, auth, params, meta, &mut intent).await,
        Err(error) => Err(error),
    };
    match finished {
        Ok(()) => Redirect::to("/").into_response(),
        Err(error) => land(&state, intent.form(), &error.message),
    }
}

async fn finish(
    state: &Signoff,
    id: &str,
    mut auth: AuthSession,
    params: CallbackParams,
    meta: RequestMeta,
    intent: &mut Intent,
) -> Result<(), AppError> {
    let provider = state
        .oidc
        .get(id)
        .ok_or_else(|| AppError::not_found("identity provider"))?;
    let name = &provider.settings.name;

    // The pending sign-in this answer belongs to, taken out of the session whatever happens
    // next: a `state` works once.
    let expired = || {
        AppError::invalid_input(format!(
            "That sign-in with {name} has expired or was already used. Please try again."
        ))
    };
    let given_state = params.state.as_deref().ok_or_else(expired)?;
    let mut pendings = live_pendings(&auth).await?;
    let position = pendings
        .iter()
        .position(|p| {
            p.provider == id && token::constant_time_eq(p.state.as_bytes(), given_state.as_bytes())
        })
        .ok_or_else(expired)?;
    let pending = pendings.remove(position);
    auth.session.insert(PENDING_KEY, pendings).await?;
    if pending.link_to.is_some() {
        *intent = Intent::Link;
    }

    if let Some(error) = &params.error {
        let detail = params.error_description.as_deref().unwrap_or(error);
        let detail: String = detail
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Err(AppError::invalid_input(format!(
            "{name} did not sign you in: {detail}"
        )));
    }
    let metadata = provider
        .metadata()
        .await
        .map_err(|error| unreachable_provider(provider, &error))?;
    let iss_ok = match &params.iss {
        Some(iss) => *iss == provider.settings.issuer,
        None => !metadata.authorization_response_iss_parameter_supported,
    };
    if !iss_ok {
        tracing::warn!(provider = %id, "callback with a wrong or missing `iss` (mix-up?)");
        return Err(AppError::invalid_input(format!(
            "That answer did not come from {name}. Please try again."
        )));
    }
    let code = params
        .code
        .as_deref()
        .ok_or_else(|| AppError::invalid_input(format!("{name} sent no authorization code.")))?;
    // The exchange is what costs something (a call to the provider, then a key check): counted
    // per browser session and, with a high ceiling, per address, until the sign-in succeeds.
    let session = auth.session.id().map(|id| crate::session::handle(&id));
    let buckets = throttle::sso_buckets(&state.throttle, meta.ip, session.as_deref());
    let counted = throttle::reserve(&state.db, &state.throttle, &buckets)
        .await
        .map_err(|error| match error.retry_after {
            Some(_) => AppError {
                message: format!(
                    "Too many sign-ins with {name} failed. Wait a few minutes and try again."
                ),
                ..error
            },
            None => error,
        })?;
    let (id_token, access_token) = provider
        .exchange_code(code, &pending.verifier)
        .await
        .map_err(|error| unreachable_provider(provider, &error))?;
    let (_, claims) = provider.verify(&id_token).await.map_err(|error| {
        tracing::warn!(provider = %id, %error, "refused an ID token");
        AppError::invalid_input(format!("{name} sent a sign-in that could not be verified."))
    })?;
    let mut claims = token::check_id_token(
        &claims,
        &provider.settings.issuer,
        &provider.settings.client_id,
        &pending.nonce,
        now_ms() / 1000,
    )
    .map_err(|error| {
        tracing::warn!(provider = %id, %error, "refused an ID token");
        AppError::invalid_input(format!("{name} sent a sign-in that could not be verified."))
    })?;
    // A first sign-in names the new account after the person; providers that keep the
    // profile out of the ID token give it from UserInfo.
    if claims.preferred_username.is_none() && claims.email.is_none() && claims.name.is_none() {
        if let Some(access_token) = &access_token {
            if let Some(info) = provider.userinfo(access_token).await {
                claims.merge_userinfo(&info);
            }
        }
    }

    let issuer = &provider.settings.issuer;
    // The provider vouched for this person: the exchange no longer counts.
    counted.succeeded(&state.db).await;
    match pending.link_to {
        Some(user_id) => {
            // Still the account that asked to link (not signed out or switched meanwhile)?
            if auth.user.as_ref().map(|user| user.id) != Some(user_id) {
                return Err(AppError::not_signed_in());
            }
            match identities::link(&state.db, id, issuer, &claims.subject, user_id).await? {
                identities::Linked::Now => {
                    audit::record_detail(
                        &state.db,
                        audit::Event::ProviderLinked,
                        Some(user_id),
                        None,
                        meta.ip,
                        Some(name),
                    )
                    .await;
                    let origin = crate::notices::Origin::of(&state.recovery.site, &meta);
                    crate::recovery::notify(state, user_id, |to, username| {
                        crate::notices::provider_changed(to, username, name, true, &origin)
                    })
                    .await;
                    Ok(())
                }
                identities::Linked::Already => Ok(()),
                identities::Linked::ToAnother => Err(AppError::invalid_input(format!(
                    "That {name} account is already linked to another account here."
                ))),
            }
        }
        None => {
            let user = match identities::find_user(&state.db, issuer, &claims.subject).await? {
                Some(user) => user,
                None => {
                    let stamp = tower_sessions::session::Id::default().to_string();
                    let user =
                        identities::create_account(&state.db, id, issuer, &claims, &stamp).await?;
                    audit::record_detail(
                        &state.db,
                        audit::Event::AccountCreated,
                        Some(user.id),
                        None,
                        meta.ip,
                        Some(name),
                    )
                    .await;
                    user
                }
            };
            let via = SessionProvider {
                provider: id.to_owned(),
                sid: claims.sid.clone(),
                id_token,
            };
            crate::lifecycle::start_session(
                &mut auth,
                &user,
                state,
                &meta,
                crate::lifecycle::Via::Provider(via),
            )
            .await
        }
    }
}

/// The provider's end-session URL for "Sign out of NAME too" (RP-Initiated Logout 1.0 §2), or
/// `None` when the provider has none or cannot be reached.
pub async fn end_session_url(providers: &Providers, via: &SessionProvider) -> Option<String> {
    let provider = providers.get(&via.provider)?;
    let metadata = match provider.metadata().await {
        Ok(metadata) => metadata,
        Err(error) => {
            tracing::warn!(provider = %via.provider, %error, "no end-session URL");
            return None;
        }
    };
    let mut url = reqwest::Url::parse(metadata.end_session_endpoint.as_deref()?).ok()?;
    url.query_pairs_mut()
        .append_pair("id_token_hint", &via.id_token)
        .append_pair(
            "post_logout_redirect_uri",
            &provider.post_logout_redirect_uri,
        )
        .append_pair("client_id", &provider.settings.client_id);
    Some(url.into())
}

/// The pending sign-ins of this session that have not expired.
async fn live_pendings(auth: &AuthSession) -> Result<Vec<Pending>, AppError> {
    let now = now_ms();
    Ok(auth
        .session
        .get::<Vec<Pending>>(PENDING_KEY)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|pending| now - pending.started_ms < PENDING_TTL_MS)
        .collect())
}

fn auth_session(request: &Request) -> Result<AuthSession, AppError> {
    request
        .extensions()
        .get::<AuthSession>()
        .cloned()
        .ok_or_else(|| {
            tracing::error!("auth layer missing from the single sign-on routes");
            AppError::internal()
        })
}

fn request_meta(state: &Signoff, request: &Request) -> RequestMeta {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    RequestMeta::of(request.headers(), peer, &state.trusted_proxies)
}

fn unreachable_provider(provider: &Provider, error: &dyn std::fmt::Display) -> AppError {
    tracing::warn!(provider = %provider.settings.id, %error, "identity provider unavailable");
    AppError::new(
        crate::error::ErrorCode::Unavailable,
        format!(
            "{} is not available right now. Please try again later.",
            provider.settings.name
        ),
    )
}

/// Back to the page, with `message` shown in the form `form` (the flash cookie).
fn land(state: &Signoff, form: &str, message: &str) -> Response {
    let mut response = Redirect::to("/").into_response();
    if let Some(flash) = FormError::new(form, message) {
        if let Ok(cookie) = HeaderValue::from_str(&crate::cookies::AppCookie::flash_of(
            &flash,
            state.sessions.cookie_secure,
        )) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}
