//! Accounts and their provider identities (`oidc_identities`): an account is found by the
//! (issuer, subject) pair of an ID token, never by a name or an e-mail address, which a person
//! can change at the provider or another person can claim (OpenID Connect Core §5.7).

use super::token::IdClaims;
use crate::{
    db::Database,
    names::{self, Name},
    now_ms, on_db, UserRecord,
};

pub use crate::backend::NO_PASSWORD;

/// The account linked to this identity, if any.
pub async fn find_user(
    db: &Database,
    issuer: &str,
    subject: &str,
) -> Result<Option<UserRecord>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_as(
            "SELECT u.id, u.username, u.password_hash, u.session_stamp FROM oidc_identities i \
             JOIN users u ON u.id = i.user_id WHERE i.issuer = $1 AND i.subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(pool)
        .await
    })
}

/// The account id of an identity, for a back-channel logout naming only `sub`.
pub async fn user_id_of(
    db: &Database,
    issuer: &str,
    subject: &str,
) -> Result<Option<i64>, sqlx::Error> {
    on_db!(db, |pool| {
        sqlx::query_scalar("SELECT user_id FROM oidc_identities WHERE issuer = $1 AND subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(pool)
            .await
    })
}

/// The first sign-in of an identity: a new account, named after the person's claims (made valid
/// and unique), with no password, and the identity linked to it, in one transaction. If the same
/// identity's first sign-in raced this one and won, its account is returned instead.
pub async fn create_account(
    db: &Database,
    provider: &str,
    issuer: &str,
    claims: &IdClaims,
    session_stamp: &str,
) -> Result<UserRecord, sqlx::Error> {
    let base = base_username(claims);
    for attempt in 0..5u32 {
        let name = free_username(db, &base, attempt).await?;
        let created = on_db!(db, |pool| async {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, username_key, name_rules, password_hash, \
                 session_stamp) VALUES ($1, $2, 1, $3, $4) RETURNING id",
            )
            .bind(&name.display)
            .bind(&name.key)
            .bind(NO_PASSWORD)
            .bind(session_stamp)
            .fetch_one(&mut *tx)
            .await?;
            for reading in &name.readings {
                sqlx::query("INSERT INTO username_readings (reading, user_id) VALUES ($1, $2)")
                    .bind(reading)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO oidc_identities (issuer, subject, user_id, provider, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(issuer)
            .bind(&claims.subject)
            .bind(id)
            .bind(provider)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<i64, sqlx::Error>(id)
        }
        .await);
        match created {
            Ok(id) => {
                return Ok(UserRecord {
                    id,
                    username: name.display,
                    password_hash: NO_PASSWORD.to_owned(),
                    session_stamp: session_stamp.to_owned(),
                })
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                // Either the name was taken meanwhile (try the next) or this identity was linked
                // meanwhile (use that account).
                if let Some(user) = find_user(db, issuer, &claims.subject).await? {
                    return Ok(user);
                }
            }
            Err(error) => return Err(error),
        }
    }
    Err(sqlx::Error::Protocol(
        "no free username for a new account".into(),
    ))
}

/// What linking an identity to a signed-in account came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Linked {
    /// The identity is now linked to the account.
    Now,
    /// It was linked to this account already.
    Already,
    /// The identity belongs to another account: nothing changed.
    ToAnother,
}

/// Links the identity (`issuer`, `subject`) to `user_id`, unless it belongs to another account.
pub async fn link(
    db: &Database,
    provider: &str,
    issuer: &str,
    subject: &str,
    user_id: i64,
) -> Result<Linked, sqlx::Error> {
    let inserted = on_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO oidc_identities (issuer, subject, user_id, provider, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(user_id)
        .bind(provider)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|_| ())
    });
    match inserted {
        Ok(_) => Ok(Linked::Now),
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            match user_id_of(db, issuer, subject).await? {
                Some(owner) if owner == user_id => Ok(Linked::Already),
                _ => Ok(Linked::ToAnother),
            }
        }
        Err(error) => Err(error),
    }
}

/// The providers (ids) an account is linked to, and whether it has a password.
pub async fn ways_in(db: &Database, user_id: i64) -> Result<(Vec<String>, bool), sqlx::Error> {
    let providers: Vec<String> = on_db!(db, |pool| {
        sqlx::query_scalar(
            "SELECT provider FROM oidc_identities WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await
    })?;
    let has_password: bool = on_db!(db, |pool| {
        sqlx::query_scalar("SELECT password_hash <> '' FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })?
    .unwrap_or(false);
    Ok((providers, has_password))
}

/// What unlinking came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlinked {
    /// The identity was unlinked.
    Done,
    /// No such identity is linked to the account.
    NotLinked,
    /// It is the account's last way in (no password, no other provider, no passkey): nothing
    /// changed.
    LastWayIn,
}

/// Unlinks a provider from an account while another way in remains (a password, another
/// provider, a passkey). The account's row is locked first (an update that changes nothing), so
/// two removals at once (two unlinks, or an unlink and a passkey's removal, which locks the same
/// row) cannot each leave the other as the last way in and both go through.
pub async fn unlink(db: &Database, user_id: i64, provider: &str) -> Result<Unlinked, sqlx::Error> {
    on_db!(db, |pool| async {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE users SET failed_logins = failed_logins WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let linked: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM oidc_identities WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_one(&mut *tx)
        .await?;
        if linked == 0 {
            return Ok(Unlinked::NotLinked);
        }
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM oidc_identities WHERE user_id = $1 AND provider <> $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_one(&mut *tx)
        .await?;
        let has_password: bool =
            sqlx::query_scalar("SELECT password_hash <> '' FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
        let passkeys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passkeys WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        if others == 0 && !has_password && passkeys == 0 {
            return Ok(Unlinked::LastWayIn);
        }
        sqlx::query("DELETE FROM oidc_identities WHERE user_id = $1 AND provider = $2")
            .bind(user_id)
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<Unlinked, sqlx::Error>(Unlinked::Done)
    }
    .await)
}

/// A name from the person's claims: `preferred_username`, else the local part of `email`, else
/// `name`, made to follow the rules of every new name ([`names::made_from`]); "user" if none
/// does.
fn base_username(claims: &IdClaims) -> Name {
    let candidates = [
        claims.preferred_username.clone(),
        claims
            .email
            .as_deref()
            .and_then(|email| email.split('@').next())
            .map(str::to_owned),
        claims.name.clone(),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|candidate| names::made_from(&candidate))
        .or_else(|| names::new_name("user").ok())
        .unwrap_or_else(|| Name {
            display: "user".into(),
            key: "user".into(),
            readings: vec!["user".into()],
        })
}

/// `base`, or `base-2`, `base-3`… : the first that no account has, as typed or as read
/// ([`names::holder`]). `skip` moves past names taken by a race since the last look.
async fn free_username(db: &Database, base: &Name, skip: u32) -> Result<Name, sqlx::Error> {
    let candidates = std::iter::once(base.display.clone())
        .chain((2..).map(|n| format!("{}-{n}", base.display)))
        .take(50)
        .filter_map(|name| names::new_name(&name).ok());
    let mut free = Vec::new();
    for name in candidates {
        if names::holder(db, &name).await?.is_none() {
            free.push(name);
            if free.len() > skip as usize {
                break;
            }
        }
    }
    let chosen = match free.len() > skip as usize {
        true => Some(free.swap_remove(skip as usize)),
        false => free.pop(),
    };
    if let Some(name) = chosen {
        return Ok(name);
    }
    // Fifty names taken: a random suffix.
    let tag = super::random_token(6).unwrap_or_default().to_lowercase();
    let name = format!("{}-{}", base.display, tag.replace(['-', '_'], "x"));
    Ok(names::new_name(&name).unwrap_or_else(|_| base.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(preferred: Option<&str>, email: Option<&str>, name: Option<&str>) -> IdClaims {
        IdClaims {
            subject: "s".into(),
            sid: None,
            preferred_username: preferred.map(str::to_owned),
            email: email.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn usernames_come_from_claims_and_stay_valid() {
        let base = |claims: IdClaims| base_username(&claims).display;
        assert_eq!(base(claims(Some("alice"), None, None)), "alice");
        assert_eq!(
            base(claims(Some("a"), Some("bob.smith@x.test"), None)),
            "bob.smith"
        );
        assert_eq!(
            base(claims(None, None, Some("Carol Ann <x>"))),
            "Carol-Ann-x"
        );
        assert_eq!(base(claims(None, None, None)), "user");
        assert_eq!(base(claims(Some("<script>"), None, None)), "script");
        // A name that mixes alphabets is passed over for the next claim.
        assert_eq!(
            base(claims(Some("pаypal"), Some("pay.pal@x.test"), None)),
            "pay.pal"
        );
        let long = "x".repeat(100);
        let made = base(claims(Some(&long), None, None));
        assert!(names::new_name(&format!("{made}-99")).is_ok());
    }
}
