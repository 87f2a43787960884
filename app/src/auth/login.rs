//! Creating an account and signing in. Both end in [`start_session`].

use leptos::prelude::*;

use super::wire::User;
use crate::error::AppError;

/// `POST /api/register`: creates an account and signs it in. Throttled per client address
/// (every attempt counts, successful or not), before anything is looked up or hashed.
#[server(prefix = "/api", endpoint = "register")]
pub async fn register(username: String, password: String) -> Result<User, AppError> {
    use super::ssr::{audit, request_meta, throttle};

    let state = super::ssr::app_state()?;
    let meta = request_meta();
    // Cheap checks first: a malformed request costs neither a reservation nor a hash.
    let name = super::ssr::names::new_name(&username)?;
    // The length only: the blocklist (a 240 KB set, built on first use) waits until the request
    // has passed the throttle, so a flood never runs it.
    super::validate::new_password(&super::ssr::password::normalise(&password))?;
    let buckets = throttle::register_buckets(&state.throttle, meta.ip);
    let _counted = throttle::reserve(&state.db, &state.throttle, &buckets).await?;

    let mut auth = super::ssr::auth_session().await?;
    let user = auth.backend.register(&name, &password).await?;
    audit::record(
        &state.db,
        audit::Event::AccountCreated,
        Some(user.id),
        None,
        meta.ip,
    )
    .await;
    start_session(&mut auth, &user, &state, &meta, None).await?;
    Ok(User::from(&user))
}

/// `POST /api/login`: signs in. Every credential failure gets the same 401 and message. The
/// attempt is reserved before any password is hashed (`ssr::attempts`): too many for the
/// account, the client address or the pair get 429.
#[server(prefix = "/api", endpoint = "login")]
pub async fn login(username: String, password: String) -> Result<User, AppError> {
    use super::ssr::{attempts::Attempt, audit, request_meta, Credentials};

    let state = super::ssr::app_state()?;
    let meta = request_meta();
    super::validate::login_username(&username)?;
    let key = super::ssr::names::lookup_key(&username);
    let mut auth = super::ssr::auth_session().await?;
    let attempt = Attempt::begin(&state, &auth.backend, &key).await?;
    let verified = auth
        .authenticate(Credentials {
            username: username.clone(),
            password,
        })
        .await?;
    let Some(user) = verified else {
        let target = attempt.failed(&auth.backend).await;
        audit::record(&state.db, audit::Event::LoginFailed, target, None, meta.ip).await;
        return Err(AppError::invalid_credentials());
    };
    attempt.succeeded(&state, &auth.backend, user.id).await?;
    start_session(&mut auth, &user, &state, &meta, None).await?;
    Ok(User::from(&user))
}

/// Signs `user` in on a session with a new id, and records it. `via`: the provider the person
/// signed in through (`ssr::oidc::flow`), remembered by the session; `None` for a password.
#[cfg(feature = "ssr")]
pub(crate) async fn start_session(
    auth: &mut super::ssr::AuthSession,
    user: &super::ssr::UserRecord,
    state: &crate::state::AppState,
    meta: &super::ssr::RequestMeta,
    via: Option<super::ssr::oidc::SessionProvider>,
) -> Result<(), AppError> {
    use super::ssr::{audit, oidc};

    // A new id at every sign-in defeats session fixation. axum-login re-keys only a session that is
    // not yet authenticated, so signing in as B over A's session would keep A's id: when the
    // request came with a session, re-key it here. (A new visitor's session is re-keyed by
    // axum-login itself.)
    // The session being replaced, if it belonged to someone else: its open pages (other tabs of
    // this browser) must hear that it ended, or they would go on showing the previous user.
    let replaced = auth
        .user
        .as_ref()
        .filter(|previous| previous.id != user.id)
        .map(|previous| previous.id)
        .zip(super::ssr::current_handle(auth));
    if auth.session.id().is_some() {
        auth.session.cycle_id().await?;
    }
    auth.login(user).await?;
    crate::session::mark_started(&auth.session, &state.sessions, meta.user_agent.as_deref())
        .await?;
    // The session keeps its data across the new id: what a previous provider sign-in left in it
    // must not outlive this sign-in.
    let provider_name = via.as_ref().map(|via| state.oidc.name_of(&via.provider));
    match via {
        Some(via) => {
            auth.session.insert(oidc::SESSION_KEY, via).await?;
        }
        None => {
            auth.session
                .remove::<oidc::SessionProvider>(oidc::SESSION_KEY)
                .await?;
        }
    }
    if let Some((previous_user, handle)) = replaced {
        state
            .events
            .publish(super::ssr::events::SessionsEnded::one(
                previous_user,
                handle.clone(),
                Some(handle),
                super::wire::EndReason::Replaced,
            ))
            .await;
    }
    // The new id is only assigned when the session is saved, after this function; the audit
    // trail links later events of this session by its tag from then on.
    audit::record_detail(
        &state.db,
        audit::Event::LoginSucceeded,
        Some(user.id),
        None,
        meta.ip,
        provider_name.as_deref(),
    )
    .await;
    Ok(())
}
