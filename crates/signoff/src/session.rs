//! Server-side sessions: the store (rows of `tower_sessions`), the cookie, and the timeouts.

use std::time::Duration;

use async_trait::async_trait;
use axum::{extract::Request, middleware::Next, response::Response};
use time::OffsetDateTime;
use tower_sessions::{
    cookie::SameSite,
    session::{Id, Record},
    session_store, Expiry, Session, SessionManagerLayer, SessionStore,
};

use crate::{
    cookies::AppCookie,
    db::Database,
    on_db,
    session_read::{PgReader, SqliteReader},
};

/// The session cookie under these settings: `signoff_session` (a name of our own, not a
/// framework default: OWASP, avoid fingerprinting), or `__Host-signoff_session` when `Secure`
/// (the prefix makes browsers refuse it unless it is `Secure`, host-only and `Path=/`, so a
/// sibling subdomain cannot plant one).
pub fn cookie(settings: &SessionSettings) -> AppCookie {
    AppCookie::session(settings.cookie_secure)
}

/// The session cookie's name under these settings.
pub fn cookie_name(settings: &SessionSettings) -> &'static str {
    cookie(settings).name()
}
/// axum-login's key for its data inside the session (its own default, spelled out).
pub const AUTH_DATA_KEY: &str = "axum-login.data";
/// When the session was established (Unix seconds): the start of the absolute timeout.
const STARTED_AT: &str = "signoff.started_at";
/// When the expiry was last pushed forward (Unix seconds); shown as "last seen".
const REFRESHED_AT: &str = "signoff.refreshed_at";
/// The browser that signed in, shown on the Security page (truncated).
const USER_AGENT: &str = "signoff.user_agent";
const USER_AGENT_MAX_CHARS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Session timeouts and the cookie mode.
pub struct SessionSettings {
    /// A session unused for this long ends (`SESSION_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however active (`SESSION_ABSOLUTE_TIMEOUT`).
    pub absolute_timeout: Duration,
    /// Adds `Secure` to the cookie (`COOKIE_SECURE`); required in production behind TLS.
    pub cookie_secure: bool,
    /// How recent the session's last proof of identity must be for a change of the ways in
    /// (`STEP_UP_MAX_AGE`; `stepup`).
    pub step_up_max_age: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            cookie_secure: false,
            step_up_max_age: Duration::from_secs(10 * 60),
        }
    }
}

impl SessionSettings {
    /// How stale the stored expiry may get before a request pushes it forward. Refreshing on every
    /// request would turn every read into a write; this bounds the idle timeout's error to 1/30
    /// of its length (and at most a minute).
    fn refresh_interval(&self) -> Duration {
        (self.idle_timeout / 30).min(Duration::from_secs(60))
    }

    /// When a session started at `started` and seen at `now` expires: the earlier of the idle and
    /// the absolute deadline.
    fn deadline(&self, started: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.idle_timeout).min(started + self.absolute_timeout)
    }
}

/// A way into an account that sessions rest on: what they were signed in through. Removing it
/// ends them ([`Store::delete_signed_in_with`]).
#[derive(Clone, Copy, Debug)]
pub enum WayIn<'a> {
    /// A linked identity provider (its id).
    Provider(&'a str),
    /// A passkey (its row id).
    Passkey(i64),
}

/// The session store: every statement on `tower_sessions` is Signoff's own (create, the
/// per-request read, save, delete, the sweep). tower-sessions-sqlx-store's stores were used for
/// the delete until issue 21; Signoff writes rows itself for two reasons:
///
/// * **No resurrection.** The stock `save` is an upsert. A request that was in flight while
///   another request destroyed the session (logout, revocation, expiry) would write the row back
///   on its way out and revive a session the user had ended. Here `save` only updates a row that
///   still exists; rows are created only by `create`, which tower-sessions calls for new and
///   re-keyed sessions.
/// * **Sessions a user can see.** Each row also carries its owner, a public handle, and the
///   times and user agent shown on the Security page, copied from the session's data so that
///   listing or revoking a user's sessions is one indexed query.
#[derive(Clone, Debug)]
pub struct Store(std::sync::Arc<StoreInner>);

/// What a [`Store`] shares between its clones. tower-sessions clones the store with its layer for
/// every request; one `Arc` makes that one reference count instead of copies of the pools.
#[derive(Debug)]
pub struct StoreInner {
    db: Database,
    /// `SESSION_ABSOLUTE_TIMEOUT`: no write stores a signed-in session past its start plus this.
    absolute_timeout: Duration,
    /// The per-request read, outside sqlx's pool (`session_read`).
    reader: Reader,
}

impl std::ops::Deref for Store {
    type Target = StoreInner;

    fn deref(&self) -> &StoreInner {
        &self.0
    }
}

/// Where the per-request session read runs (`session_read` says why not through sqlx's pool).
#[derive(Debug)]
enum Reader {
    Sqlite(SqliteReader),
    Postgres(PgReader),
    /// An in-memory SQLite database exists only inside sqlx's connection: read through it.
    Pool,
}

/// The session data key of the passkey a session was signed in with ([`SessionPasskey`]); the
/// store copies its `id` into the `passkey_id` column.
pub const PASSKEY_KEY: &str = "signoff.passkey";

/// What a session signed in with a passkey remembers of it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionPasskey {
    /// The passkey's row id (`passkeys.id`).
    pub id: i64,
}

/// The columns Signoff keeps beside each session's data.
struct RowMeta {
    user_id: Option<i64>,
    handle: String,
    created_at: Option<i64>,
    last_seen_at: Option<i64>,
    user_agent: Option<String>,
    /// The provider a session was signed in through, and the provider's session id.
    oidc_provider: Option<String>,
    oidc_sid: Option<String>,
    /// The passkey a session was signed in with.
    passkey_id: Option<i64>,
}

impl RowMeta {
    fn of(record: &Record) -> Self {
        let int = |key: &str| record.data.get(key).and_then(serde_json::Value::as_i64);
        let oidc = record.data.get(crate::oidc::SESSION_KEY);
        let oidc_text = |key: &str| {
            oidc.and_then(|value| value.get(key))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            oidc_provider: oidc_text("provider"),
            oidc_sid: oidc_text("sid"),
            passkey_id: record
                .data
                .get(PASSKEY_KEY)
                .and_then(|passkey| passkey.get("id"))
                .and_then(serde_json::Value::as_i64),
            user_id: record
                .data
                .get(AUTH_DATA_KEY)
                .and_then(|auth| auth.get("user_id"))
                .and_then(serde_json::Value::as_i64),
            handle: handle(&record.id),
            created_at: int(STARTED_AT),
            last_seen_at: int(REFRESHED_AT),
            user_agent: record
                .data
                .get(USER_AGENT)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// Expired rows deleted per statement by the sweep.
pub const SWEEP_BATCH: i64 = 1_000;
/// The shortest pause between two batches of the sweep (writers waiting for SQLite's lock get
/// it); a batch that took longer is followed by a pause as long as it took.
const SWEEP_PAUSE: Duration = Duration::from_millis(25);

/// What a sweep of expired sessions did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Rows deleted.
    pub rows: u64,
    /// Batches it took.
    pub batches: u32,
    /// The longest a batch took: how long it held the write lock, at most.
    pub longest_batch: Duration,
}

impl Store {
    /// A store on `db` with these timeouts.
    pub fn new(db: &Database, settings: &SessionSettings) -> Self {
        let reader = match db {
            Database::Sqlite(pool) => SqliteReader::for_file(pool.connect_options().get_filename())
                .map_or(Reader::Pool, Reader::Sqlite),
            Database::Postgres(pool) => Reader::Postgres(PgReader::for_pool(pool)),
        };
        Self(std::sync::Arc::new(StoreInner {
            db: db.clone(),
            absolute_timeout: settings.absolute_timeout,
            reader,
        }))
    }

    /// The record as a write stores it: its expiry never past the session's absolute deadline.
    fn capped(&self, record: &Record) -> Record {
        let mut record = record.clone();
        record.expiry_date = self.capped_expiry(&record);
        record
    }

    /// The expiry a write stores: the record's, never past the session's absolute deadline.
    /// Every write goes through here, whoever changed the session: tower-sessions gives a
    /// session changed without an expiry of its own the layer's default (`now + idle`), and a
    /// handler that forgot to keep the deadline (as the single sign-on routes once did) would
    /// otherwise carry the session past it. A session not signed in has no start, and no cap.
    fn capped_expiry(&self, record: &Record) -> OffsetDateTime {
        let started = record
            .data
            .get(STARTED_AT)
            .and_then(serde_json::Value::as_i64)
            .and_then(|started| OffsetDateTime::from_unix_timestamp(started).ok());
        match started {
            Some(started) => record.expiry_date.min(started + self.absolute_timeout),
            None => record.expiry_date,
        }
    }

    /// Deletes expired rows, [`SWEEP_BATCH`] at a time with a pause between batches. Loading
    /// already ignores them; this only reclaims space, and must never be felt: one statement
    /// over a large backlog (half a million rows after a restart, or bots' pre-login sessions)
    /// held SQLite's write lock for seconds, and every sign-in meanwhile waited, then got 503.
    /// A batch takes its rows by the `expiry_date` index and holds the lock for milliseconds;
    /// on PostgreSQL it skips rows another transaction holds, so it never waits on a request.
    pub async fn delete_expired(&self) -> Result<Swept, sqlx::Error> {
        let mut swept = Swept::default();
        loop {
            let started = std::time::Instant::now();
            let now = OffsetDateTime::now_utc();
            // PostgreSQL skips rows another transaction holds rather than wait for them;
            // SQLite has one writer, and no such clause.
            let sql = match &self.db {
                Database::Sqlite(_) => {
                    "DELETE FROM tower_sessions WHERE id IN (SELECT id FROM tower_sessions \
                     WHERE expiry_date < $1 LIMIT $2)"
                }
                Database::Postgres(_) => {
                    "DELETE FROM tower_sessions WHERE id IN (SELECT id FROM tower_sessions \
                     WHERE expiry_date < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"
                }
            };
            let deleted = on_db!(&self.db, |pool| {
                sqlx::query(sql)
                    .bind(now)
                    .bind(SWEEP_BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            swept.rows += deleted;
            swept.batches += 1;
            let took = started.elapsed();
            swept.longest_batch = swept.longest_batch.max(took);
            if deleted < SWEEP_BATCH as u64 {
                return Ok(swept);
            }
            // At least as long as the batch took: the sweep takes at most half of the database's
            // time (and of a small machine's cores), however slow its batches turn out.
            tokio::time::sleep(took.max(SWEEP_PAUSE)).await;
        }
    }

    /// The database the store keeps its sessions in (for the other sweeps of `maintenance`).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Forgets the `jti`s of logout tokens that would be refused by now anyway.
    pub async fn forget_used_logout_tokens(&self) -> Result<u64, sqlx::Error> {
        let now = crate::now_ms();
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM oidc_logout_tokens WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
    }

    /// The live sessions of a user, newest first.
    pub async fn list_for_user(&self, user_id: i64) -> Result<Vec<SessionRow>, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT s.handle, s.created_at, s.last_seen_at, s.user_agent, s.oidc_provider, \
                 p.name AS passkey FROM tower_sessions s \
                 LEFT JOIN passkeys p ON p.id = s.passkey_id AND p.user_id = s.user_id \
                 WHERE s.user_id = $1 AND s.expiry_date > $2 AND s.handle IS NOT NULL \
                 ORDER BY s.created_at DESC",
            )
            .bind(user_id)
            .bind(OffsetDateTime::now_utc())
            .fetch_all(pool)
            .await
        })
    }

    /// When a live session expires, or `None` if it has ended (deleted or expired). Read by the
    /// event streams; never extends anything.
    pub async fn expiry_of(&self, id: &Id) -> Result<Option<OffsetDateTime>, sqlx::Error> {
        on_db!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT expiry_date FROM tower_sessions WHERE id = $1 AND expiry_date > $2",
            )
            .bind(id.to_string())
            .bind(OffsetDateTime::now_utc())
            .fetch_optional(pool)
            .await
        })
    }

    /// Deletes one session of a user by its public handle. Returns whether there was one.
    pub async fn delete_by_handle(&self, user_id: i64, handle: &str) -> Result<bool, sqlx::Error> {
        let deleted = on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM tower_sessions WHERE user_id = $1 AND handle = $2")
                .bind(user_id)
                .bind(handle)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Deletes every session of a user, except the one with handle `keep` if given. Returns how
    /// many were deleted.
    pub async fn delete_for_user(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, sqlx::Error> {
        let deleted = match keep {
            None => on_db!(&self.db, |pool| {
                sqlx::query("DELETE FROM tower_sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }),
            Some(keep) => on_db!(&self.db, |pool| {
                sqlx::query("DELETE FROM tower_sessions WHERE user_id = $1 AND handle <> $2")
                    .bind(user_id)
                    .bind(keep)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }),
        };
        Ok(deleted)
    }

    /// Deletes the sessions of `user_id` signed in with `way_in` (a provider, a passkey), except
    /// the one with handle `keep`. Returns their handles.
    pub async fn delete_signed_in_with(
        &self,
        user_id: i64,
        way_in: WayIn<'_>,
        keep: Option<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        let sql = match way_in {
            WayIn::Provider(_) => {
                "DELETE FROM tower_sessions WHERE user_id = $1 AND oidc_provider = $2 \
                 AND ($3 IS NULL OR handle <> $3) RETURNING handle"
            }
            WayIn::Passkey(_) => {
                "DELETE FROM tower_sessions WHERE user_id = $1 AND passkey_id = $2 \
                 AND ($3 IS NULL OR handle <> $3) RETURNING handle"
            }
        };
        let handles: Vec<Option<String>> = on_db!(&self.db, |pool| {
            let query = sqlx::query_scalar(sql).bind(user_id);
            match way_in {
                WayIn::Provider(provider) => query.bind(provider),
                WayIn::Passkey(passkey) => query.bind(passkey),
            }
            .bind(keep)
            .fetch_all(pool)
            .await
        })?;
        Ok(handles.into_iter().flatten().collect())
    }

    /// A provider's back-channel logout: records the logout token's `jti` and deletes the
    /// sessions it names, in one transaction. `None` if that `jti` was recorded before (a
    /// replay): nothing is deleted. Otherwise the owners and handles of the deleted sessions.
    pub async fn delete_for_provider_logout(
        &self,
        logout: &ProviderLogout<'_>,
    ) -> Result<Option<Vec<(i64, String)>>, sqlx::Error> {
        let target = logout.target;
        let rows: Option<Vec<(Option<i64>, Option<String>)>> = on_db!(&self.db, |pool| async {
            let mut tx = pool.begin().await?;
            let fresh = sqlx::query(
                "INSERT INTO oidc_logout_tokens (issuer, jti, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(logout.issuer)
            .bind(logout.jti)
            .bind(logout.remember_until_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !fresh {
                return Ok(None);
            }
            let deleted =
                match (target.sid, target.user_id) {
                    (Some(sid), Some(user_id)) => sqlx::query_as(
                        "DELETE FROM tower_sessions WHERE oidc_provider = $1 AND oidc_sid = $2 \
                         AND user_id = $3 RETURNING user_id, handle",
                    )
                    .bind(target.provider)
                    .bind(sid)
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?,
                    (Some(sid), None) if !target.subject_given => sqlx::query_as(
                        "DELETE FROM tower_sessions WHERE oidc_provider = $1 AND oidc_sid = $2 \
                         RETURNING user_id, handle",
                    )
                    .bind(target.provider)
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?,
                    (None, Some(user_id)) => {
                        sqlx::query_as(
                            "DELETE FROM tower_sessions WHERE oidc_provider = $1 AND user_id = $2 \
                         RETURNING user_id, handle",
                        )
                        .bind(target.provider)
                        .bind(user_id)
                        .fetch_all(&mut *tx)
                        .await?
                    }
                    // A subject no account is linked to: no session of ours can be its.
                    _ => Vec::new(),
                };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(deleted))
        }
        .await)?;
        Ok(rows.map(|rows| {
            rows.into_iter()
                .filter_map(|(user_id, handle)| user_id.zip(handle))
                .collect()
        }))
    }

    async fn try_insert(&self, record: &Record) -> Result<bool, session_store::Error> {
        let record = &self.capped(record);
        let data = rmp_serde::to_vec(record).map_err(store_error)?;
        let meta = RowMeta::of(record);
        let inserted = on_db!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO tower_sessions \
                 (id, data, expiry_date, user_id, handle, created_at, last_seen_at, user_agent, \
                  oidc_provider, oidc_sid, passkey_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date)
            .bind(meta.user_id)
            .bind(meta.handle)
            .bind(meta.created_at)
            .bind(meta.last_seen_at)
            .bind(meta.user_agent)
            .bind(meta.oidc_provider)
            .bind(meta.oidc_sid)
            .bind(meta.passkey_id)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(store_error(error)),
        }
    }
}

/// The sessions a provider's logout token names: those signed in through `provider` with its
/// session id `sid`, or (no `sid`) all of the account `user_id` signed in through it.
#[derive(Clone, Copy, Debug)]
pub struct ProviderSessions<'a> {
    /// The provider's id.
    pub provider: &'a str,
    /// The provider's session id the token named, if any.
    pub sid: Option<&'a str>,
    /// The account linked to the token's `sub`, if it named one and one is linked.
    pub user_id: Option<i64>,
    /// Whether the token named a `sub` at all (then `sid` alone never matches).
    pub subject_given: bool,
}

/// A logout token's one-time use, and what it ends.
#[derive(Clone, Copy, Debug)]
pub struct ProviderLogout<'a> {
    /// The token's issuer.
    pub issuer: &'a str,
    /// The token's id.
    pub jti: &'a str,
    /// Unix milliseconds after which the token would be refused anyway; its `jti` is kept
    /// until then.
    pub remember_until_ms: i64,
    /// The sessions it ends.
    pub target: ProviderSessions<'a>,
}

/// A session as listed to its owner.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    /// Its public handle (a hash of the id).
    pub handle: String,
    /// When it started (Unix seconds).
    pub created_at: Option<i64>,
    /// When it was last used (Unix seconds, to the refresh interval).
    pub last_seen_at: Option<i64>,
    /// The browser it started in.
    pub user_agent: Option<String>,
    /// The provider it was signed in through, if any.
    pub oidc_provider: Option<String>,
    /// The name of the passkey it was signed in with, if any (and not removed since).
    pub passkey: Option<String>,
}

fn store_error(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // 128 random bits collide about never, but the contract asks stores to handle it.
        while !self.try_insert(record).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let record = &self.capped(record);
        let data = rmp_serde::to_vec(record).map_err(store_error)?;
        let meta = RowMeta::of(record);
        let updated = on_db!(&self.db, |pool| {
            sqlx::query(
                "UPDATE tower_sessions SET data = $1, expiry_date = $2, user_id = $3, \
                 created_at = $4, last_seen_at = $5, user_agent = $6, oidc_provider = $7, \
                 oidc_sid = $8, passkey_id = $9 WHERE id = $10",
            )
            .bind(data)
            .bind(record.expiry_date)
            .bind(meta.user_id)
            .bind(meta.created_at)
            .bind(meta.last_seen_at)
            .bind(meta.user_agent)
            .bind(meta.oidc_provider)
            .bind(meta.oidc_sid)
            .bind(meta.passkey_id)
            .bind(record.id.to_string())
            .execute(pool)
            .await
            .map_err(store_error)?
            .rows_affected()
        });
        if updated == 0 {
            tracing::debug!(
                session = %tag(&record.id),
                "session was destroyed while this request ran; not writing it back"
            );
        }
        Ok(())
    }

    /// Reads a live session and, in the same statement, the user it belongs to, whom it hands to
    /// the auth backend for this request (see `auth::ssr::backend::prefetched`): one database
    /// round trip per signed-in request instead of two. Expired rows are never returned. The read
    /// runs on connections outside sqlx's pool (`session_read` says why).
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // The pool closed means the database is shut: the readers' own connections must not
        // outlive it.
        if on_db!(&self.db, |pool| pool.is_closed()) {
            return Err(store_error("the database is closed"));
        }
        let id = id.to_string();
        let now = OffsetDateTime::now_utc();
        let row = match &self.reader {
            Reader::Sqlite(reader) => reader.session(&id, now).map_err(store_error)?,
            Reader::Postgres(reader) => reader.session(&id, now).await.map_err(store_error)?,
            Reader::Pool => on_db!(&self.db, |pool| {
                sqlx::query_as(crate::session_read::READ_SESSION)
                    .bind(id)
                    .bind(now)
                    .fetch_optional(pool)
                    .await
            })
            .map_err(store_error)?,
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let record: Record = rmp_serde::from_slice(&row.data).map_err(store_error)?;
        if let (Some(id), Some(username), Some(password_hash), Some(session_stamp)) = (
            row.owner_id,
            row.username,
            row.password_hash,
            row.session_stamp,
        ) {
            crate::backend::prefetched::offer(crate::backend::UserRecord {
                id,
                username,
                password_hash,
                session_stamp,
            });
        }
        Ok(Some(record))
    }

    /// Destroys the session's row (`Session::delete`, which `end_session` calls). A row that is
    /// already gone is no error: the session has ended either way.
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        on_db!(&self.db, |pool| {
            sqlx::query("DELETE FROM tower_sessions WHERE id = $1")
                .bind(id.to_string())
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(store_error)
    }
}

/// The session layer with Signoff's cookie: `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`,
/// `Secure` when configured. A cookie with a `Max-Age` is only sent once a user signs in.
pub fn layer(store: Store, settings: SessionSettings) -> SessionManagerLayer<Store> {
    SessionManagerLayer::new(store)
        .with_name(cookie_name(&settings))
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_secure(settings.cookie_secure)
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(settings.idle_timeout).unwrap_or(time::Duration::MAX),
        ))
}

/// The `Set-Cookie` value that tells the browser to forget the session cookie (see
/// [`AppCookie::removal`]). Every way a session ends sends this one.
pub fn removal_cookie(settings: &SessionSettings) -> http::HeaderValue {
    cookie(settings).removal_header()
}

/// Middleware, directly outside the session layer: the session cookie goes on the wire at most
/// once per response, and well formed. tower-sessions 0.14 writes its own removal when a
/// session was emptied (every sign-out, and every request that carried a cookie of a session
/// that no longer exists) from the request's bare `name=value`, with only `Path` added: no
/// `Secure`, `HttpOnly` or `SameSite`. With the `__Host-` name of the secure mode, browsers refuse
/// that removal and keep the cookie (fixed upstream after 0.14, unreleased). So the last session
/// `Set-Cookie` of the response (the one a browser would apply) decides, and is written again
/// with Signoff's attributes: a removal as [`removal_cookie`], a new id with its `Max-Age`.
pub async fn session_cookie_on_the_wire(
    axum::extract::State(settings): axum::extract::State<SessionSettings>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let cookie = cookie(&settings);
    let headers = response.headers_mut();
    let ours = |value: &http::HeaderValue| {
        value
            .to_str()
            .ok()
            .and_then(crate::cookies::set_cookie_name)
            .is_some_and(|name| name == cookie.name())
    };
    let Some(last) = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .rfind(|value| ours(value))
        .cloned()
    else {
        return response;
    };
    let others: Vec<http::HeaderValue> = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter(|value| !ours(value))
        .cloned()
        .collect();
    headers.remove(http::header::SET_COOKIE);
    for other in others {
        headers.append(http::header::SET_COOKIE, other);
    }
    headers.append(http::header::SET_COOKIE, well_formed(cookie, &last));
    response
}

/// A session `Set-Cookie` as Signoff writes it: the same id and lifetime, Signoff's attributes.
fn well_formed(cookie: AppCookie, set_cookie: &http::HeaderValue) -> http::HeaderValue {
    let parsed = set_cookie
        .to_str()
        .ok()
        .and_then(|text| tower_sessions::cookie::Cookie::parse(text).ok());
    let Some(parsed) = parsed else {
        return cookie.removal_header();
    };
    // A removal has an empty value (cookie's `make_removal`, and ours). A live id may carry
    // `Max-Age=0` too: a session that expires within the second.
    if parsed.value().is_empty() {
        return cookie.removal_header();
    }
    // A session id is URL-safe base64; anything else would not be ours to send.
    let value = parsed.value();
    if !value
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
    {
        tracing::error!("the session layer set a cookie value that is no session id");
        return cookie.removal_header();
    }
    let max_age = parsed
        .max_age()
        .map(|age| Duration::from_secs(age.whole_seconds().max(0).unsigned_abs()));
    http::HeaderValue::from_str(&cookie.set(value, max_age))
        .unwrap_or_else(|_| cookie.removal_header())
}

/// Marks a freshly signed-in session: starts its absolute timeout and sets its first expiry.
pub async fn mark_started(
    session: &Session,
    settings: &SessionSettings,
    user_agent: Option<&str>,
) -> Result<(), tower_sessions::session::Error> {
    let now = OffsetDateTime::now_utc();
    if let Some(agent) = user_agent {
        let agent: String = agent.chars().take(USER_AGENT_MAX_CHARS).collect();
        session.insert(USER_AGENT, agent).await?;
    }
    session.insert(STARTED_AT, now.unix_timestamp()).await?;
    session.insert(REFRESHED_AT, now.unix_timestamp()).await?;
    session.set_expiry(Some(Expiry::AtDateTime(settings.deadline(now, now))));
    Ok(())
}

/// When the session was signed in (Unix seconds), if it is signed in.
pub async fn started_at(session: &Session) -> Result<Option<i64>, tower_sessions::session::Error> {
    session.get::<i64>(STARTED_AT).await
}

/// Middleware, before the session layer: a request carrying the session cookie more than once
/// has no session. Browsers send every cookie whose domain and path match, so two of them mean
/// one was planted (from a sibling subdomain, or by a script on another path); which one is
/// "ours" cannot be told, and the session layer would take the last. They are all removed from
/// the request. A sign-out answered with duplicates still removes the cookie it owns (its
/// removal does not depend on the request's cookie: `auth::logout::end_session`).
pub async fn refuse_duplicate_cookies(
    axum::extract::State(settings): axum::extract::State<SessionSettings>,
    mut request: Request,
    next: Next,
) -> Response {
    let name = cookie_name(&settings);
    let count = crate::cookies::values(request.headers(), name).count();
    if count < 2 {
        return next.run(request).await;
    }
    tracing::warn!(
        count,
        "request carried several session cookies; treated as none"
    );
    let others: Vec<String> = crate::cookies::pairs(request.headers())
        .filter(|(key, _)| *key != name)
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let headers = request.headers_mut();
    headers.remove(http::header::COOKIE);
    if let Ok(value) = http::HeaderValue::from_str(&others.join("; ")) {
        if !others.is_empty() {
            headers.insert(http::header::COOKIE, value);
        }
    }
    next.run(request).await
}

/// Re-asserts a signed-in session's deadline after a handler changed the session (a password
/// change re-keys it). tower-sessions saves a changed session with the layer's default expiry
/// (`now + idle`) unless the request set one, which could carry the session past its absolute
/// timeout.
pub async fn keep_deadline(
    session: &Session,
    settings: &SessionSettings,
) -> Result<(), tower_sessions::session::Error> {
    let now = OffsetDateTime::now_utc();
    let Some(started) = session.get::<i64>(STARTED_AT).await? else {
        return Ok(());
    };
    let started = OffsetDateTime::from_unix_timestamp(started).unwrap_or(now);
    session.set_expiry(Some(Expiry::AtDateTime(settings.deadline(started, now))));
    Ok(())
}

/// Middleware: slides the idle timeout forward for a signed-in session, never past the absolute
/// timeout. Expired sessions are never loaded (the store filters on `expiry_date`), so the server
/// enforces both timeouts whatever the cookie says.
///
/// Opening the event stream is not activity: a page left open must not keep an idle session
/// alive (it reconnects after network blips and server restarts, with no person involved).
pub async fn refresh_expiry(
    axum::extract::State(settings): axum::extract::State<SessionSettings>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == crate::wire::EVENTS_PATH {
        return next.run(request).await;
    }
    if let Err(error) = refresh(&session, &settings).await {
        // The store could not be read: the rest of the stack sees no session, and the request
        // fails or proceeds signed out rather than with stale state.
        tracing::warn!(%error, "could not refresh session expiry");
    }
    next.run(request).await
}

async fn refresh(
    session: &Session,
    settings: &SessionSettings,
) -> Result<(), tower_sessions::session::Error> {
    if session.id().is_none() {
        return Ok(());
    }
    let (Some(started), Some(refreshed)) = (
        session.get::<i64>(STARTED_AT).await?,
        session.get::<i64>(REFRESHED_AT).await?,
    ) else {
        return Ok(());
    };
    let now = OffsetDateTime::now_utc();
    let since_refresh = now.unix_timestamp().saturating_sub(refreshed);
    if since_refresh < settings.refresh_interval().as_secs() as i64 {
        return Ok(());
    }
    let started = OffsetDateTime::from_unix_timestamp(started).unwrap_or(now);
    session.insert(REFRESHED_AT, now.unix_timestamp()).await?;
    session.set_expiry(Some(Expiry::AtDateTime(settings.deadline(started, now))));
    Ok(())
}

/// A short, one-way tag of a session id for logs and the audit trail: lets an operator correlate
/// events of one session without the log ever holding a usable session id.
pub fn tag(id: &Id) -> String {
    handle(id)[..16].to_owned()
}

/// The public name of a session: a SHA-256 of its id, hex. Shown to the user and used to revoke
/// a session; knowing it does not let anyone present the session.
pub fn handle(id: &Id) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.to_string().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_idle_until_the_absolute_limit() {
        let settings = SessionSettings {
            idle_timeout: Duration::from_secs(100),
            absolute_timeout: Duration::from_secs(1000),
            ..SessionSettings::default()
        };
        let start = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(
            settings.deadline(start, start + Duration::from_secs(10)),
            start + Duration::from_secs(110)
        );
        assert_eq!(
            settings.deadline(start, start + Duration::from_secs(950)),
            start + Duration::from_secs(1000)
        );
    }

    #[test]
    fn a_removal_from_the_session_layer_goes_out_well_formed() {
        let secure = AppCookie::session(true);
        // What tower-sessions 0.14 writes for an emptied session.
        let layer_removal = http::HeaderValue::from_static(
            "__Host-signoff_session=; Path=/; Max-Age=0; Expires=Sat, 01 Jan 2000 00:00:00 GMT",
        );
        assert_eq!(well_formed(secure, &layer_removal), secure.removal_header());
        let last_second = http::HeaderValue::from_static("__Host-signoff_session=abc; Max-Age=0");
        assert_eq!(
            well_formed(secure, &last_second).to_str().unwrap(),
            secure.set("abc", Some(Duration::ZERO))
        );
        let set = http::HeaderValue::from_static(
            "__Host-signoff_session=abc-_1; Max-Age=1800; Path=/; Domain=example.com",
        );
        assert_eq!(
            well_formed(secure, &set).to_str().unwrap(),
            secure.set("abc-_1", Some(Duration::from_secs(1800)))
        );
        let odd = http::HeaderValue::from_static("__Host-signoff_session=a\"b; Max-Age=5");
        assert_eq!(well_formed(secure, &odd), secure.removal_header());
    }
}
