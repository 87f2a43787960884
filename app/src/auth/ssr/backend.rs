//! The users table and axum-login's `AuthnBackend` over it.

use axum_login::{AuthUser, AuthnBackend, UserId};

use super::{common_passwords, password::Hasher};
use crate::{
    auth::{validate, User},
    db::Database,
    error::AppError,
    on_db,
};

/// A user as stored, hash included. Never leaves the server: the browser gets [`User`].
#[derive(Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .finish()
    }
}

impl From<&UserRecord> for User {
    fn from(record: &UserRecord) -> Self {
        User {
            id: record.id,
            username: record.username.clone(),
        }
    }
}

impl AuthUser for UserRecord {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// axum-login stores this in the session and compares it on every request. Using the password
    /// hash means a password change signs out every session that was made with the old one.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Failures of the backend. Kept apart from [`AppError`] because axum-login needs a
/// `std::error::Error`; [`From`] below is where they become client-facing errors.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    App(AppError),
}

impl From<BackendError> for AppError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Database(error) => {
                tracing::error!(%error, "database error");
                AppError::unavailable()
            }
            BackendError::App(error) => error,
        }
    }
}

impl From<AppError> for BackendError {
    fn from(error: AppError) -> Self {
        BackendError::App(error)
    }
}

#[derive(Clone, Debug)]
pub struct Backend {
    db: Database,
    hasher: Hasher,
}

impl Backend {
    pub fn new(db: Database, hasher: Hasher) -> Self {
        Self { db, hasher }
    }

    /// Creates an account. The name is validated and trimmed; uniqueness is case-insensitive.
    pub async fn register(&self, username: &str, password: &str) -> Result<UserRecord, AppError> {
        let username = validate::username(username)?;
        check_new_password(password)?;
        let key = validate::username_key(&username);
        let password_hash = self.hasher.hash(password.to_owned()).await?;
        let inserted = on_db!(&self.db, |pool| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO users (username, username_key, password_hash) VALUES ($1, $2, $3) \
                 RETURNING id",
            )
            .bind(&username)
            .bind(&key)
            .bind(&password_hash)
            .fetch_one(pool)
            .await
        });
        match inserted {
            Ok(id) => Ok(UserRecord {
                id,
                username,
                password_hash,
            }),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(AppError::username_taken())
            }
            Err(error) => Err(BackendError::Database(error).into()),
        }
    }

    /// Whether `password` is the user's current password (argon2 on the blocking pool).
    pub async fn verify_password(
        &self,
        user: &UserRecord,
        password: &str,
    ) -> Result<bool, AppError> {
        if password.chars().count() > validate::PASSWORD_MAX_CHARS {
            return Ok(false);
        }
        self.hasher
            .verify(password.to_owned(), user.password_hash.clone())
            .await
    }

    /// Replaces a user's password and returns the updated record (with its new hash, which is
    /// also the new session auth hash: sessions made with the old one stop validating).
    pub async fn set_password(
        &self,
        user: &UserRecord,
        password: &str,
    ) -> Result<UserRecord, AppError> {
        check_new_password(password)?;
        let password_hash = self.hasher.hash(password.to_owned()).await?;
        on_db!(&self.db, |pool| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(&password_hash)
                .bind(user.id)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(BackendError::from)
        })?;
        Ok(UserRecord {
            password_hash,
            ..user.clone()
        })
    }

    /// The id of the account a typed username names, if any (for the audit trail).
    pub async fn user_id_by_name(&self, username: &str) -> Result<Option<i64>, AppError> {
        let key = validate::username_key(username);
        Ok(self
            .find_by_key(&key)
            .await
            .map_err(BackendError::from)?
            .map(|user| user.id))
    }

    async fn find_by_key(&self, key: &str) -> Result<Option<UserRecord>, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query_as("SELECT id, username, password_hash FROM users WHERE username_key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })
    }

    async fn find_by_id(&self, id: i64) -> Result<Option<UserRecord>, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query_as("SELECT id, username, password_hash FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }
}

/// Length rules (shared with the browser) plus the blocklist (server only: it is 240 KB).
fn check_new_password(password: &str) -> Result<(), AppError> {
    validate::new_password(password)?;
    if common_passwords::is_common(password) {
        return Err(AppError::invalid_input(
            "This password is too common or too easy to guess. Try a few unrelated words.",
        ));
    }
    Ok(())
}

impl AuthnBackend for Backend {
    type User = UserRecord;
    type Credentials = Credentials;
    type Error = BackendError;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn authenticate(&self, creds: Credentials) -> Result<Option<UserRecord>, BackendError> {
        // Over-long input cannot match a stored password (registration caps it) and is not worth
        // hashing; the body limit keeps it from being huge in the first place.
        if creds.password.chars().count() > validate::PASSWORD_MAX_CHARS {
            return Ok(None);
        }
        let key = validate::username_key(&creds.username);
        match self.find_by_key(&key).await? {
            Some(user) => {
                let matches = self
                    .hasher
                    .verify(creds.password, user.password_hash.clone())
                    .await?;
                Ok(matches.then_some(user))
            }
            None => {
                self.hasher.verify_dummy(creds.password).await?;
                Ok(None)
            }
        }
    }

    async fn get_user(&self, user_id: &UserId<Self>) -> Result<Option<UserRecord>, BackendError> {
        if let Some(user) = prefetched::take(*user_id) {
            return Ok(Some(user));
        }
        Ok(self.find_by_id(*user_id).await?)
    }
}

/// One read per request instead of two. axum-login loads the session, then calls `get_user` for
/// its owner; `session::Store::load` reads the owner's row in the same statement as the session
/// (a join on `user_id`) and leaves it here, and `get_user` takes it instead of querying again.
///
/// This is not a cache: the slot exists only for the duration of one request ([`scope`]), holds
/// what that request's own session read returned, in the same snapshot, and is emptied by the
/// first `get_user` that uses it, so any later lookup in the request reads the database afresh.
/// Outside a scope (or for another user id) `get_user` queries as usual. Each avoided query is a
/// pool checkout, a round trip and a release ping: on `GET /api/me` this measured +25% to +50%
/// throughput (`make bench`).
pub mod prefetched {
    use std::{cell::RefCell, future::Future};

    use super::UserRecord;

    tokio::task_local! {
        static OWNER: RefCell<Option<UserRecord>>;
    }

    /// Runs one request's handling with an empty slot.
    pub async fn scope<F: Future>(request: F) -> F::Output {
        OWNER.scope(RefCell::new(None), request).await
    }

    /// Called by the session store with the owner it read alongside the session.
    pub fn offer(user: UserRecord) {
        // Outside a scope there is nowhere to put it; `get_user` will query.
        let _ = OWNER.try_with(|slot| *slot.borrow_mut() = Some(user));
    }

    /// The owner read with this request's session, if it is `user_id`; at most once.
    pub(super) fn take(user_id: i64) -> Option<UserRecord> {
        OWNER
            .try_with(|slot| slot.borrow_mut().take())
            .ok()
            .flatten()
            .filter(|user| user.id == user_id)
    }
}
