//! Single-use tokens sent by mail: a password reset, or the confirmation of a new address
//! (OWASP Forgot Password cheat sheet: random, long, stored hashed, single use, expiring).
//!
//! A token is 256 random bits, written into the link as URL-safe base64 (43 characters). Only
//! its SHA-256 is stored (`mail_tokens.token_hash`): whoever reads the table or a backup cannot
//! use what they read. A token is used by one `UPDATE … WHERE used_ms IS NULL AND expires_ms >
//! now` inside the transaction of the change it allows, so two requests with the same token
//! cannot both succeed, on either backend (a row lock on PostgreSQL, the single writer on SQLite).

use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::{
    db::Database,
    mail::{on_conn, Conn},
    now_ms, on_db,
};

/// Reset requests looked up at once, per instance. Past this a request is answered 503 (it says
/// nothing about accounts): a flood of them cannot grow an unbounded pile of tasks.
const LOOKUPS_IN_FLIGHT: usize = 64;

/// The mailed-link flows' part of [`Signoff`](crate::Signoff).
#[derive(Debug)]
pub struct Recovery {
    /// The site's origin, for the links in mails (`SITE_ORIGIN`, or where it is served).
    pub site: String,
    lookups: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Recovery {
    /// The flows of a site served at `site`.
    pub fn new(site: &str) -> Self {
        Self {
            site: site.trim_end_matches('/').to_owned(),
            lookups: std::sync::Arc::new(tokio::sync::Semaphore::new(LOOKUPS_IN_FLIGHT)),
        }
    }

    /// A slot for looking up one reset request, if one is free.
    pub(crate) fn lookup_permit(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::TryAcquireError> {
        std::sync::Arc::clone(&self.lookups).try_acquire_owned()
    }

    /// The link to `path` with `token`.
    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.site)
    }
}

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Setting a new password without the old one.
    Reset,
    /// Confirming an address as the account's.
    Verify,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Verify => "verify",
        }
    }

    /// How long a token of this purpose may be used.
    pub fn lifetime(self) -> Duration {
        match self {
            // OWASP: short-lived. Long enough to find the mail, short enough that an old mail
            // in a mailbox someone reads later is worth nothing.
            Purpose::Reset => Duration::from_secs(30 * 60),
            Purpose::Verify => Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// The longest text that can be a token (a link's value is checked before anything is looked
/// up: longer input is refused, not hashed).
const TOKEN_CHARS: usize = 43;

/// A new token: (the text for the link, the hash to store).
pub fn new_token() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok((token, hash))
}

/// Whether `text` has the shape of a token (43 URL-safe base64 characters).
pub fn well_formed(text: &str) -> bool {
    text.len() == TOKEN_CHARS
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A token's row, as [`peek`] and [`take`] return it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Granted {
    /// The account it is for.
    pub user_id: i64,
    /// The address it confirms (`Verify` only).
    pub address: Option<String>,
}

/// Stores a new token for `user_id` inside the caller's transaction. Returns the token's text.
pub async fn issue(
    conn: Conn<'_>,
    user_id: i64,
    purpose: Purpose,
    address: Option<&str>,
) -> Result<String, sqlx::Error> {
    let (token, hash) = new_token().map_err(|error| sqlx::Error::Protocol(error.to_string()))?;
    let now = now_ms();
    let expires = now + purpose.lifetime().as_millis() as i64;
    on_conn!(conn, |connection| {
        sqlx::query(
            "INSERT INTO mail_tokens (token_hash, user_id, purpose, address, created_ms, \
             expires_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&hash)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(address)
        .bind(now)
        .bind(expires)
        .execute(connection)
        .await
        .map(|_| ())
    })?;
    Ok(token)
}

/// Whether `token` can be used now, without using it (the page a link opens shows its form only
/// for a token that works; a mail scanner that follows the link changes nothing).
pub async fn peek(
    db: &Database,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Granted>, sqlx::Error> {
    if !well_formed(token) {
        return Ok(None);
    }
    on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT user_id, address FROM mail_tokens WHERE token_hash = $1 AND purpose = $2 \
             AND used_ms IS NULL AND expires_ms > $3",
        )
        .bind(hash(token))
        .bind(purpose.as_str())
        .bind(now_ms())
        .fetch_optional(pool)
        .await
    })
}

/// Uses `token` inside the caller's transaction: `None` if it is unknown, used, expired or for
/// another purpose, and then nothing was changed.
pub async fn take(
    conn: Conn<'_>,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Granted>, sqlx::Error> {
    if !well_formed(token) {
        return Ok(None);
    }
    let now = now_ms();
    on_conn!(conn, |connection| {
        sqlx::query_as(
            "UPDATE mail_tokens SET used_ms = $3 WHERE token_hash = $1 AND purpose = $2 \
             AND used_ms IS NULL AND expires_ms > $3 RETURNING user_id, address",
        )
        .bind(hash(token))
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(connection)
        .await
    })
}

/// Voids every unused token of `purpose` for `user_id` (a password changed or reset voids the
/// reset links still in the mailbox; a new address voids the confirmations of earlier ones).
pub async fn void(conn: Conn<'_>, user_id: i64, purpose: Purpose) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    on_conn!(conn, |connection| {
        sqlx::query(
            "UPDATE mail_tokens SET used_ms = $3 WHERE user_id = $1 AND purpose = $2 \
             AND used_ms IS NULL",
        )
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(now)
        .execute(connection)
        .await
        .map(|done| done.rows_affected())
    })
}

/// The address waiting for confirmation on `user_id`, if any (the newest unused one).
pub async fn pending_address(db: &Database, user_id: i64) -> Result<Option<String>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT address FROM mail_tokens WHERE user_id = $1 AND purpose = 'verify' \
             AND used_ms IS NULL AND expires_ms > $2 ORDER BY created_ms DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(now_ms())
        .fetch_optional(pool)
        .await
    })
}

/// Forgets tokens that expired a day ago or more (the periodic sweep).
pub async fn forget_expired(db: &Database) -> Result<u64, sqlx::Error> {
    let before = now_ms() - 24 * 60 * 60 * 1000;
    on_db!(db, |pool| {
        sqlx::query("DELETE FROM mail_tokens WHERE expires_ms < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_stored_hashed() {
        let (token, hash) = new_token().unwrap();
        assert!(well_formed(&token), "{token}");
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&token)
                .unwrap()
                .len(),
            32
        );
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, token);
        assert_ne!(new_token().unwrap().0, token);
        assert!(!well_formed(&format!("{token}A")));
        assert!(!well_formed(&token.replace(|_| true, "%")));
        assert!(!well_formed(""));
    }
}
