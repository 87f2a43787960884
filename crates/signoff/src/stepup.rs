//! A fresh proof of identity before anyone changes the ways into an account (OWASP
//! Authentication cheat sheet, "Require re-authentication for sensitive features"; ASVS 5.0 6.4 and
//! 7.5): a stolen session alone must not be enough to link its thief's provider, unlink the
//! owner's, or set a password, because such a change outlives "Sign out everywhere".
//!
//! A session remembers when its holder last proved who they are (`signoff.proved_at` in its data): a sign-in of any
//! kind (`lifecycle::start_session`), the current password given to a change, or
//! `POST /api/confirm_identity`. Using the session does not renew it. A change of the ways in
//! calls [`require_fresh`]: older than `STEP_UP_MAX_AGE` (10 minutes) is 403
//! `reauthentication_required`, which the page turns into "Confirm it's you".

use tower_sessions::Session;

use crate::{error::AppError, AuthSession};

/// When the session's holder last proved who they are (Unix seconds).
const PROVED_AT: &str = "signoff.proved_at";

fn now_secs() -> i64 {
    crate::now_ms() / 1000
}

/// The session's holder has just proved who they are.
pub async fn proved(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.insert(PROVED_AT, now_secs()).await
}

/// Whether the session's last proof of identity is within `max_age`.
pub async fn is_fresh(auth: &AuthSession, max_age: std::time::Duration) -> Result<bool, AppError> {
    let proved_at = auth.session.get::<i64>(PROVED_AT).await?;
    Ok(proved_at.is_some_and(|at| at >= now_secs() - max_age.as_secs() as i64))
}

/// 403 `reauthentication_required` unless the session's last proof is within `max_age`.
pub async fn require_fresh(
    auth: &AuthSession,
    max_age: std::time::Duration,
) -> Result<(), AppError> {
    if is_fresh(auth, max_age).await? {
        return Ok(());
    }
    Err(AppError::reauthentication_required(
        max_age.as_secs().div_ceil(60),
    ))
}
