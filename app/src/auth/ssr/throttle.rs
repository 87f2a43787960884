//! Failed-login throttling per account and per client address (NIST SP 800-63B-4 §3.2.2, OWASP
//! Authentication "Account Lockout"). Counts live in the database so every instance shares them.
//! Unknown usernames are throttled exactly like real ones: the bucket is the name as typed.

use std::{net::IpAddr, time::Duration};

use crate::{auth::validate, db::Database, error::AppError, now_ms, on_db};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failures allowed per bucket within `window` (`LOGIN_MAX_FAILURES`).
    pub max_failures: u32,
    /// The sliding window (`LOGIN_THROTTLE_WINDOW` seconds).
    pub window: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(180),
        }
    }
}

/// The buckets one sign-in attempt counts against.
pub fn buckets(username: &str, ip: Option<IpAddr>) -> Vec<String> {
    let mut buckets = vec![format!("user:{}", validate::username_key(username))];
    if let Some(ip) = ip {
        buckets.push(format!("ip:{ip}"));
    }
    buckets
}

/// Refuses with 429 when any bucket has reached its limit, saying when the oldest counted
/// failure leaves the window.
pub async fn check(
    db: &Database,
    settings: &ThrottleSettings,
    buckets: &[String],
) -> Result<(), AppError> {
    let now = now_ms();
    let window_ms = settings.window.as_millis() as i64;
    let since = now - window_ms;
    let mut wait_ms = 0i64;
    for bucket in buckets {
        // The failure whose expiry brings the count back under the limit.
        let unlocking: Option<i64> = on_db!(db, |pool| {
            sqlx::query_scalar(
                "SELECT at FROM login_failures WHERE bucket = $1 AND at > $2 \
                 ORDER BY at DESC LIMIT 1 OFFSET $3",
            )
            .bind(bucket)
            .bind(since)
            .bind(i64::from(settings.max_failures.saturating_sub(1)))
            .fetch_optional(pool)
            .await
        })
        .map_err(unavailable)?;
        if let Some(at) = unlocking {
            wait_ms = wait_ms.max(at + window_ms - now);
        }
    }
    if wait_ms > 0 {
        tracing::info!(wait_ms, "sign-in throttled");
        return Err(AppError::too_many_attempts(((wait_ms + 999) / 1000) as u64));
    }
    Ok(())
}

/// Counts a failed attempt against every bucket, and forgets failures older than the window.
pub async fn record_failure(
    db: &Database,
    settings: &ThrottleSettings,
    buckets: &[String],
) -> Result<(), AppError> {
    let now = now_ms();
    let cutoff = now - settings.window.as_millis() as i64;
    on_db!(db, |pool| async {
        let mut tx = pool.begin().await?;
        for bucket in buckets {
            sqlx::query("INSERT INTO login_failures (bucket, at) VALUES ($1, $2)")
                .bind(bucket)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM login_failures WHERE at <= $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
    .await)
    .map_err(unavailable)
}

fn unavailable(error: sqlx::Error) -> AppError {
    tracing::error!(%error, "throttle store error");
    AppError::unavailable()
}
