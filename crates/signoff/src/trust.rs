//! Clients an account knows, so that strangers cannot lock its owner out (OWASP "Slow Down Online
//! Guessing Attacks with Device Cookies").
//!
//! A successful sign-in makes the client known to that account, two ways:
//! * a **device cookie** (`signoff_device`, `__Host-signoff_device` with `Secure`): 128 random
//!   bits, stored only as a hash, valid for [`TRUST_PERIOD`];
//! * its **network** (the address, an IPv6 client by its /64), for the same period. The sign-out
//!   response clears the site's cookies (`Clear-Site-Data: "cookies"`), device cookie included, so
//!   a browser that signed out is still recognised from where it signed in.
//!
//! A known client's failures count against a bucket of its own instead of the account's
//! (`throttle::login_buckets`), and it may still sign in after the account reached its
//! consecutive-failure cap. A stranger failing on purpose fills only the strangers' bucket.

use std::{net::IpAddr, time::Duration};

use sha2::{Digest, Sha256};

use super::client_addr::counting_key;
use crate::{cookies::AppCookie, db::Database, now_ms, on_db};

/// How long a client stays known after its last successful sign-in.
pub const TRUST_PERIOD: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// The device cookie the request carries, if exactly one.
pub fn device_token(headers: &http::HeaderMap, secure: bool) -> Option<String> {
    let mut found = crate::cookies::values(headers, AppCookie::device(secure).name());
    let token = found.next()?.to_owned();
    (found.next().is_none() && !token.is_empty() && token.len() <= 64).then_some(token)
}

fn device_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("device:{hex}")
}

/// Whether a key of [`recognise`] names a device cookie (rather than a network).
pub fn is_device_key(key: &str) -> bool {
    key.starts_with("device:")
}

fn net_key(ip: IpAddr) -> String {
    format!("net:{}", counting_key(ip))
}

/// Whether account `user_id` knows this client; the key of that trust (a device first).
pub async fn recognise(
    db: &Database,
    user_id: i64,
    device: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Option<String>, sqlx::Error> {
    let keys: Vec<String> = device
        .map(device_key)
        .into_iter()
        .chain(ip.map(net_key))
        .collect();
    let now = now_ms();
    for key in keys {
        let known: Option<i64> = on_db!(db, |pool| {
            sqlx::query_scalar(
                "SELECT expires_at FROM trusted_clients \
                 WHERE user_id = $1 AND key_hash = $2 AND expires_at > $3",
            )
            .bind(user_id)
            .bind(&key)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        if known.is_some() {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Remembers this client for account `user_id` after a successful sign-in. `known_device` is
/// the request's device token if the account already knows it; otherwise a new token is made and
/// returned, to be set as the device cookie.
pub async fn remember(
    db: &Database,
    user_id: i64,
    known_device: Option<&str>,
    ip: Option<IpAddr>,
) -> Result<Option<String>, sqlx::Error> {
    let expires_at = now_ms() + TRUST_PERIOD.as_millis() as i64;
    let new_token = known_device
        .is_none()
        .then(|| tower_sessions::session::Id::default().to_string());
    let token = new_token.as_deref().or(known_device);
    let keys: Vec<String> = token
        .map(device_key)
        .into_iter()
        .chain(ip.map(net_key))
        .collect();
    for key in keys {
        on_db!(db, |pool| {
            sqlx::query(
                "INSERT INTO trusted_clients (user_id, key_hash, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, key_hash) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .bind(user_id)
            .bind(&key)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
    }
    Ok(new_token)
}

/// Forgets trust that has expired (the periodic sweep, `maintenance::sweep_expired`).
pub async fn forget_expired(db: &Database) -> Result<u64, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query("DELETE FROM trusted_clients WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

/// The `Set-Cookie` value for a new device token (`__Host-` and `Secure` in the secure mode, so a
/// sibling subdomain cannot plant one).
pub fn device_cookie(token: &str, secure: bool) -> String {
    AppCookie::device(secure).set(token, Some(TRUST_PERIOD))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_device_cookie_counts() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; signoff_device=abc".parse().unwrap(),
        );
        assert_eq!(device_token(&headers, false).as_deref(), Some("abc"));
        assert_eq!(
            device_token(&headers, true),
            None,
            "the secure name differs"
        );
        headers.append(http::header::COOKIE, "signoff_device=def".parse().unwrap());
        assert_eq!(device_token(&headers, false), None, "two are none");
        let cookie = device_cookie("xyz", true);
        assert!(
            cookie.starts_with("__Host-signoff_device=xyz; Max-Age=7776000; Path=/;"),
            "{cookie}"
        );
        assert!(cookie.ends_with("; Secure"), "{cookie}");
    }
}
