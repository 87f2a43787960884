//! The audit trail: security events with time, user, hashed session id and client address,
//! stored in `audit_events` and shown to the user as "Recent activity".

use std::net::IpAddr;

use crate::wire::ActivityEntry;
use crate::{db::Database, error::AppError, now_ms, on_db};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// What the audit trail records.
pub enum Event {
    /// An account was created (a password or a provider).
    AccountCreated,
    /// A sign-in succeeded.
    LoginSucceeded,
    /// A sign-in failed (wrong name or password, or refused by the throttle).
    LoginFailed,
    /// A session was signed out.
    Logout,
    /// One of the user's other sessions was ended from the Security section.
    SessionRevoked,
    /// Every session of the user was ended.
    LogoutEverywhere,
    /// The password was changed (every other session ended).
    PasswordChanged,
    /// The password was reset through a mailed link (every session ended).
    PasswordReset,
    /// The account's e-mail address was confirmed (detail: the address, masked).
    EmailChanged,
    /// A provider identity was linked to the account (detail: the provider's name).
    ProviderLinked,
    /// A provider was unlinked from the account.
    ProviderUnlinked,
    /// A passkey was added to the account (detail: its name).
    PasskeyAdded,
    /// A passkey was removed from the account (detail: its name).
    PasskeyRemoved,
    /// The provider ended the account's sessions by back-channel logout.
    ProviderLogout,
    /// The person signed out here and chose to sign out of the provider too.
    LogoutAtProvider,
}

impl Event {
    /// The event as stored and shown (`login_succeeded`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::AccountCreated => "account_created",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::Logout => "logout",
            Event::SessionRevoked => "session_revoked",
            Event::LogoutEverywhere => "logout_everywhere",
            Event::PasswordChanged => "password_changed",
            Event::PasswordReset => "password_reset",
            Event::EmailChanged => "email_changed",
            Event::ProviderLinked => "provider_linked",
            Event::ProviderUnlinked => "provider_unlinked",
            Event::PasskeyAdded => "passkey_added",
            Event::PasskeyRemoved => "passkey_removed",
            Event::ProviderLogout => "provider_logout",
            Event::LogoutAtProvider => "logout_at_provider",
        }
    }
}

/// Records an event. A failure to record is logged, not raised: the action it describes has
/// already happened, and a user must not be told that a completed sign-out failed.
pub async fn record(
    db: &Database,
    event: Event,
    user_id: Option<i64>,
    session_tag: Option<&str>,
    ip: Option<IpAddr>,
) {
    record_detail(db, event, user_id, session_tag, ip, None).await;
}

/// [`record`], naming what else the event concerns (a provider).
pub async fn record_detail(
    db: &Database,
    event: Event,
    user_id: Option<i64>,
    session_tag: Option<&str>,
    ip: Option<IpAddr>,
    detail: Option<&str>,
) {
    let at = now_ms();
    let result = on_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO audit_events (at, user_id, event, session_tag, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(at)
        .bind(user_id)
        .bind(event.as_str())
        .bind(session_tag)
        .bind(ip.map(|ip| ip.to_string()))
        .bind(detail)
        .execute(pool)
        .await
        .map(|_| ())
    });
    match result {
        Ok(_) => tracing::info!(
            event = event.as_str(),
            user_id,
            session = session_tag,
            detail,
            "audit"
        ),
        Err(error) => {
            tracing::error!(%error, event = event.as_str(), "could not record audit event")
        }
    }
}

/// The user's most recent events, newest first.
pub async fn recent(
    db: &Database,
    user_id: i64,
    limit: u32,
) -> Result<Vec<ActivityEntry>, AppError> {
    /// at, event, session tag, address, detail.
    type Row = (i64, String, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT at, event, session_tag, ip, detail FROM audit_events WHERE user_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
    })
    .map_err(|error| {
        tracing::error!(%error, "could not read audit events");
        AppError::unavailable()
    })?;
    Ok(rows
        .into_iter()
        .map(|(at, event, session, ip, detail)| ActivityEntry {
            at: crate::rfc3339_ms(at),
            event,
            session,
            ip,
            detail,
        })
        .collect())
}
