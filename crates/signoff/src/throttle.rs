//! Throttling of everything that checks a secret or spends a hash: sign-in, password change and
//! registration (NIST SP 800-63B-4 §3.2.2; OWASP Authentication "Account Lockout").
//!
//! **An attempt is reserved before any secret is checked.** [`reserve`] inserts one row per bucket
//! into `login_failures`, atomically, and only while the bucket is under its limit. A successful
//! attempt deletes its rows again ([`Reservation::succeeded`]); whatever is left counts as a
//! failure, also when the request was cancelled mid-hash. So however many requests arrive at once,
//! a bucket gets at most its limit of full verifications per window, and a database error refuses
//! the attempt (503) instead of letting it through unthrottled. Counts live in the database, so
//! every instance shares them.
//!
//! Atomicity: on SQLite the first statement of the transaction is a write, which takes the
//! database's single write lock before it reads the count; on PostgreSQL the transaction takes an
//! advisory lock per bucket first (in a fixed order, so two attempts cannot deadlock).
//!
//! **Targeted lockout** (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): an
//! account's own bucket only applies to clients it does not know. A client that has signed in to
//! the account before (a device cookie, or the same network within the trust period) counts
//! against a bucket of its own, so nobody can lock the owner out by failing on purpose; see
//! `super::trust`. Separately, 100 consecutive failures (`LOGIN_ACCOUNT_LOCK`) close the account
//! to unknown clients until an operator runs `server unlock-account NAME`.

use std::{net::IpAddr, time::Duration};

use super::client_addr::counting_key;
use crate::{db::Database, error::AppError, now_ms, on_db};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Limits on failed sign-ins and on registrations.
pub struct ThrottleSettings {
    /// Failures allowed per bucket within `window` (`LOGIN_MAX_FAILURES`).
    pub max_failures: u32,
    /// The sliding window (`LOGIN_THROTTLE_WINDOW` seconds).
    pub window: Duration,
    /// Consecutive failures after which an account accepts sign-ins only from clients it knows
    /// (`LOGIN_ACCOUNT_LOCK`; NIST's maximum is 100).
    pub account_lock: u32,
    /// Registrations allowed per client address within `window` (`REGISTER_MAX_PER_WINDOW`).
    pub max_registrations: u32,
    /// Mails with a link (a password reset, the confirmation of a new address) per account
    /// within `window` (`MAIL_LINKS_PER_WINDOW`): what a flood of requests can put in one
    /// mailbox.
    pub max_mail_links: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(180),
            account_lock: 100,
            max_registrations: 10,
            max_mail_links: 3,
        }
    }
}

/// A counter and its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// What is counted (an account, an address, or the pair).
    pub key: String,
    /// Failures allowed per window.
    pub limit: u32,
}

/// The buckets one sign-in (or password check) counts against: the client address, the pair of
/// address and account, and the account, which is the client's own bucket when the account
/// knows it (`trusted`: a stable key of that trust, see `super::trust`).
pub fn login_buckets(
    settings: &ThrottleSettings,
    username_key: &str,
    ip: Option<IpAddr>,
    trusted: Option<&str>,
) -> Vec<Bucket> {
    let limit = settings.max_failures;
    let mut buckets = Vec::with_capacity(3);
    if let Some(ip) = ip {
        let net = counting_key(ip);
        buckets.push(Bucket {
            key: format!("pair:{net}|{username_key}"),
            limit,
        });
        buckets.push(Bucket {
            key: format!("ip:{net}"),
            limit,
        });
    }
    buckets.push(Bucket {
        key: match trusted {
            Some(trust) => format!("known:{username_key}|{trust}"),
            None => format!("user:{username_key}"),
        },
        limit,
    });
    buckets
}

/// The bucket a registration counts against: its client address.
pub fn register_buckets(settings: &ThrottleSettings, ip: Option<IpAddr>) -> Vec<Bucket> {
    ip.map(|ip| Bucket {
        key: format!("register:{}", counting_key(ip)),
        limit: settings.max_registrations,
    })
    .into_iter()
    .collect()
}

/// The bucket a "Forgot your password?" request counts against: its client address, with the
/// sign-in limit. Every request counts: the answer is the same for every name, so a full bucket
/// (429) says nothing about accounts.
pub fn forgot_buckets(settings: &ThrottleSettings, ip: Option<IpAddr>) -> Vec<Bucket> {
    ip.map(|ip| Bucket {
        key: format!("forgot:{}", counting_key(ip)),
        limit: settings.max_failures,
    })
    .into_iter()
    .collect()
}

/// The bucket of the mails with a link that account `user_id` is sent (`purpose`: `reset` or
/// `verify`). A full one means the mail is not sent; a reset request is answered the same.
pub fn mail_link_bucket(settings: &ThrottleSettings, purpose: &str, user_id: i64) -> Vec<Bucket> {
    vec![Bucket {
        key: format!("mail:{purpose}:{user_id}"),
        limit: settings.max_mail_links,
    }]
}

/// The bucket a passkey sign-in or confirmation counts against until it succeeds: its client
/// address, with the high ceiling of single sign-on (ten times `LOGIN_MAX_FAILURES`). A
/// signature cannot be guessed; the bucket bounds what a client's failures cost the server.
pub fn passkey_buckets(settings: &ThrottleSettings, ip: Option<IpAddr>) -> Vec<Bucket> {
    ip.map(|ip| Bucket {
        key: format!("passkey:{}", counting_key(ip)),
        limit: settings.max_failures.saturating_mul(10),
    })
    .into_iter()
    .collect()
}

/// The buckets a single sign-on code exchange is counted in until it succeeds: the browser's
/// session (`LOGIN_MAX_FAILURES`), and its address with a high ceiling (ten times that), so that
/// people behind one NAT or proxy are not locked out by each other.
pub fn sso_buckets(
    settings: &ThrottleSettings,
    ip: Option<IpAddr>,
    session: Option<&str>,
) -> Vec<Bucket> {
    let session = session.map(|handle| Bucket {
        key: format!("sso:session:{handle}"),
        limit: settings.max_failures,
    });
    let address = ip.map(|ip| Bucket {
        key: format!("sso:{}", counting_key(ip)),
        limit: settings.max_failures.saturating_mul(10),
    });
    session.into_iter().chain(address).collect()
}

/// A reserved attempt. Dropping it keeps it counted (a failure); [`succeeded`](Self::succeeded)
/// takes it back.
#[must_use = "a reservation that succeeded must be taken back"]
#[derive(Debug)]
pub struct Reservation {
    attempt: String,
}

impl Reservation {
    /// The attempt succeeded: it does not count. If this fails the attempt stays counted, which
    /// errs on the safe side, so the error is only logged.
    pub async fn succeeded(self, db: &Database) {
        let deleted = on_db!(db, |pool| {
            sqlx::query("DELETE FROM login_failures WHERE attempt = $1")
                .bind(&self.attempt)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        if let Err(error) = deleted {
            tracing::warn!(%error, "could not take back a successful attempt; it counts");
        }
    }
}

/// Reserves one attempt in every bucket, or refuses with 429 (and when to retry) if any bucket is
/// full. 503 if the database cannot say: nothing is checked without a reservation.
///
/// A bucket already full is refused by a plain read first, without the lock: under a flood, the
/// attempts past the limit never queue for the write lock (SQLite) or an advisory lock holding a
/// pooled connection (PostgreSQL), which would starve everyone else's sign-in. Only the locked
/// insert below admits an attempt; a stale read can only refuse, never admit.
pub async fn reserve(
    db: &Database,
    settings: &ThrottleSettings,
    buckets: &[Bucket],
) -> Result<Reservation, AppError> {
    if let Some(wait) = full_for(db, settings, buckets).await? {
        return Err(AppError::too_many_attempts(wait));
    }
    let now = now_ms();
    let window_ms = settings.window.as_millis() as i64;
    let since = now - window_ms;
    let attempt = tower_sessions::session::Id::default().to_string();
    let postgres = matches!(db, Database::Postgres(_));
    let mut ordered: Vec<&Bucket> = buckets.iter().collect();
    ordered.sort_by(|a, b| a.key.cmp(&b.key));

    let reserved: Result<bool, sqlx::Error> = on_db!(db, |pool| async {
        let mut tx = pool.begin().await?;
        if postgres {
            for bucket in &ordered {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(&bucket.key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for bucket in &ordered {
            let inserted = sqlx::query(
                "INSERT INTO login_failures (bucket, at, attempt) SELECT $1, $2, $3 \
                 WHERE (SELECT COUNT(*) FROM login_failures WHERE bucket = $1 AND at > $4) < $5",
            )
            .bind(&bucket.key)
            .bind(now)
            .bind(&attempt)
            .bind(since)
            .bind(i64::from(bucket.limit))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        tx.commit().await?;
        Ok(true)
    }
    .await);
    match reserved? {
        true => Ok(Reservation { attempt }),
        // Filled up between the read and the lock.
        false => Err(AppError::too_many_attempts(
            full_for(db, settings, buckets).await?.unwrap_or(1),
        )),
    }
}

/// If any bucket is full: the seconds until every full bucket has room again (when the counted
/// attempt that brings it back under its limit leaves the window).
async fn full_for(
    db: &Database,
    settings: &ThrottleSettings,
    buckets: &[Bucket],
) -> Result<Option<u64>, AppError> {
    let now = now_ms();
    let window_ms = settings.window.as_millis() as i64;
    let mut wait_ms: Option<i64> = None;
    for bucket in buckets {
        let unlocking: Option<i64> = on_db!(db, |pool| {
            sqlx::query_scalar(
                "SELECT at FROM login_failures WHERE bucket = $1 AND at > $2 \
                 ORDER BY at DESC LIMIT 1 OFFSET $3",
            )
            .bind(&bucket.key)
            .bind(now - window_ms)
            .bind(i64::from(bucket.limit.saturating_sub(1)))
            .fetch_optional(pool)
            .await
        })?;
        if let Some(at) = unlocking {
            wait_ms = Some(wait_ms.unwrap_or(0).max(at + window_ms - now));
        }
    }
    Ok(wait_ms.map(|wait_ms| {
        tracing::info!(wait_ms, "attempt throttled");
        (wait_ms.max(1) + 999) as u64 / 1000
    }))
}

/// Forgets counted attempts that have left the window (the periodic sweep,
/// `maintenance::sweep_expired`; indexed on `at`). Counting ignores them anyway.
pub async fn forget_old(db: &Database, settings: &ThrottleSettings) -> Result<u64, sqlx::Error> {
    let since = now_ms() - settings.window.as_millis() as i64;
    on_db!(db, |pool| {
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(since)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })
}

/// Forgets every counted attempt of an account (the operator's `unlock-account`).
pub async fn forget_account(db: &Database, username_key: &str) -> Result<u64, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query(
            "DELETE FROM login_failures \
             WHERE bucket = $1 OR bucket LIKE $2 ESCAPE '\\' OR bucket LIKE $3 ESCAPE '\\'",
        )
        .bind(format!("user:{username_key}"))
        .bind(format!("known:{}|%", like_escape(username_key)))
        .bind(format!("pair:%|{}", like_escape(username_key)))
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })
}

/// `text` as a literal inside a LIKE pattern (usernames may hold `_`, which LIKE treats as "any
/// character").
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
