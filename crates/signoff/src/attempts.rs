//! The one way into checking a secret (sign-in, password change): recognise the client, reserve
//! the attempt, refuse an account closed to strangers; then record how it went. See
//! `throttle` (the buckets and the atomic reservation) and `trust` (known clients).

use std::net::IpAddr;

use super::{
    backend::Backend, client_addr::RequestMeta, notices, recovery, throttle, throttle::Reservation,
    trust,
};
use crate::{error::AppError, signoff::Signoff};

/// An attempt that may now check a secret.
#[must_use = "say how the attempt went: failed() or succeeded()"]
pub struct Attempt {
    reservation: Reservation,
    /// The account's id and its consecutive failures, if the name is an account's.
    account: Option<(i64, i64)>,
    /// How the account knows this client (`trust::recognise`), if it does.
    trusted: Option<String>,
    device: Option<String>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
}

impl Attempt {
    /// Reserves an attempt against the account named by `username_key` (which may not exist:
    /// unknown names are throttled exactly like real ones). 429 when a bucket is full, or when
    /// the account reached its consecutive-failure cap and does not know this client; 503 when
    /// the database cannot say. `device`: the request's device cookie (`trust::device_token`).
    pub async fn begin(
        state: &Signoff,
        backend: &Backend,
        username_key: &str,
        meta: &RequestMeta,
        device: Option<String>,
    ) -> Result<Self, AppError> {
        let ip = meta.ip;
        let account = backend.lock_state(username_key).await?;
        let trusted = match account {
            Some((user_id, _)) => {
                trust::recognise(&state.db, user_id, device.as_deref(), ip).await?
            }
            None => None,
        };
        let buckets =
            throttle::login_buckets(&state.throttle, username_key, ip, trusted.as_deref());
        let reservation = throttle::reserve(&state.db, &state.throttle, &buckets).await?;
        if let Some((user_id, failures)) = account {
            if trusted.is_none() && failures >= i64::from(state.throttle.account_lock) {
                tracing::warn!(
                    user_id,
                    failures,
                    "account closed to unknown clients; `server unlock-account` reopens it"
                );
                return Err(AppError::too_many_attempts(state.throttle.window.as_secs()));
            }
        }
        Ok(Self {
            reservation,
            account,
            trusted,
            device,
            ip,
            user_agent: meta.user_agent.clone(),
        })
    }

    /// The secret was wrong: the reservation stays counted, and the account's consecutive
    /// failures grow. Returns the account's id, if the name was an account's (for the audit
    /// trail).
    pub async fn failed(self, backend: &Backend) -> Option<i64> {
        let (user_id, _) = self.account?;
        if let Err(error) = backend.count_failure(user_id).await {
            tracing::warn!(%error.message, "could not count a failed attempt on the account");
        }
        Some(user_id)
    }

    /// The secret was right: the attempt is taken back, the failures start again, and this
    /// client becomes known to the account. Returns the device cookie to set if it had none
    /// (`Set-Cookie`, to be appended: the session cookie is set in the same response).
    pub async fn succeeded(
        self,
        state: &Signoff,
        backend: &Backend,
        user_id: i64,
    ) -> Result<Option<http::HeaderValue>, AppError> {
        self.reservation.succeeded(&state.db).await;
        if self.account.is_some_and(|(_, failures)| failures > 0) {
            backend.reset_failures(user_id).await?;
        }
        let secure = state.sessions.cookie_secure;
        // `begin` already asked whether the account knows this device cookie.
        let known_device = self.trusted.as_deref().is_some_and(trust::is_device_key);
        let device = self.device.as_deref().filter(|_| known_device);
        let new_token = trust::remember(&state.db, user_id, device, self.ip).await?;
        // Neither its device cookie nor its network was known: a browser the account has not
        // seen before. The owner hears of it (OWASP: notify of sign-ins from new devices).
        if new_token.is_some() && self.trusted.is_none() {
            let meta = RequestMeta {
                ip: self.ip,
                user_agent: self.user_agent.clone(),
            };
            let origin = notices::Origin::of(&state.recovery.site, &meta);
            recovery::notify(state, user_id, |to, username| {
                notices::new_device(to, username, &origin)
            })
            .await;
        }
        Ok(new_token.and_then(|token| {
            http::HeaderValue::from_str(&trust::device_cookie(&token, secure)).ok()
        }))
    }
}

/// The current password of a signed-in `user`, given to confirm a change: checked with the same
/// reservation as a sign-in (a stolen session cannot guess it faster), 400 `wrong_password` when
/// it is not it. Returns the device cookie to set, as [`Attempt::succeeded`] does.
pub async fn check_current_password(
    state: &Signoff,
    user: &super::UserRecord,
    password: &str,
    meta: &RequestMeta,
    device: Option<String>,
) -> Result<Option<http::HeaderValue>, AppError> {
    let key = super::names::lookup_key(&user.username);
    let attempt = Attempt::begin(state, &state.backend, &key, meta, device).await?;
    if !state.backend.verify_password(user, password).await? {
        let _ = attempt.failed(&state.backend).await;
        return Err(AppError::wrong_password());
    }
    attempt.succeeded(state, &state.backend, user.id).await
}
