//! Creating an account and signing in. Both end in `ssr::lifecycle::start_session`.

use leptos::prelude::*;

use super::wire::User;
use crate::error::AppError;

/// `POST /api/register`: creates an account and signs it in. Throttled per client address
/// (every attempt counts, successful or not), before anything is looked up or hashed.
#[server(prefix = "/api", endpoint = "register")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn register(username: String, password: String) -> Result<User, AppError> {
    use super::ssr::{audit, lifecycle::Via, request_meta, throttle};

    let state = super::ssr::signoff()?;
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
    super::ssr::lifecycle::start_session(&mut auth, &user, &state, &meta, Via::Password).await?;
    Ok(User::from(&user))
}

/// `POST /api/login`: signs in. Every credential failure gets the same 401 and message. The
/// attempt is reserved before any password is hashed (`ssr::attempts`): too many for the
/// account, the client address or the pair get 429.
#[server(prefix = "/api", endpoint = "login")]
// The generated argument struct's fields are the parameters documented above.
#[allow(missing_docs)]
pub async fn login(username: String, password: String) -> Result<User, AppError> {
    use super::ssr::{attempts::Attempt, audit, lifecycle::Via, request_meta, Credentials};

    let state = super::ssr::signoff()?;
    let meta = request_meta();
    super::validate::login_username(&username)?;
    let key = super::ssr::names::lookup_key(&username);
    let mut auth = super::ssr::auth_session().await?;
    let device = super::ssr::device_token(&state);
    let attempt = Attempt::begin(&state, &auth.backend, &key, &meta, device).await?;
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
    super::ssr::set_cookie(attempt.succeeded(&state, &auth.backend, user.id).await?);
    super::ssr::lifecycle::start_session(&mut auth, &user, &state, &meta, Via::Password).await?;
    Ok(User::from(&user))
}
