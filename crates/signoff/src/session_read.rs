//! The per-request session read: the one query every signed-in request makes, on connections of
//! its own instead of sqlx's pool, because the pool's overhead cost more than the query.
//!
//! * **SQLite** ([`SqliteReader`]). Through sqlx the read is two hops between threads: sqlx runs
//!   each SQLite connection on a worker thread of its own and hands results back through
//!   channels. Under load the server spent about a third of its CPU in the kernel switching
//!   threads for those hops (`bench/README.md` has the profile). An indexed lookup in SQLite
//!   itself takes microseconds, so here it runs synchronously, on a small pool of read-only
//!   connections to the same file. A blocked read would block a runtime thread, so they have a
//!   short busy timeout: in WAL mode readers never wait for writers, only (rarely, briefly) for a
//!   checkpoint's reset of the WAL index.
//! * **PostgreSQL** ([`PgReader`]). sqlx 0.8 pings every connection it takes back into its pool
//!   (`PoolConnection::return_to_pool`): a second round trip to the server for every query, which
//!   was half the database's work per request. These connections go back to their own small
//!   pool without one. That is safe because only a connection whose query completed is kept; one
//!   that failed, or whose request was cancelled mid-query, is dropped. One idle for a second is
//!   pinged before use, as the main pool does.
//!
//! Nothing is cached: every call is a fresh query (on SQLite a fresh WAL read transaction), which
//! sees every write committed before it began, by this process or any other. A session ended
//! anywhere is refused by the next read. Writes still go through sqlx's pool. A read that cannot
//! finish becomes a store error, which the stack answers with 503.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{config::DbConfig, Connection, OpenFlags, OptionalExtension};
use sqlx::{
    postgres::{PgConnectOptions, PgConnection},
    Connection as _, PgPool,
};
use tokio::{sync::Semaphore, time::Instant};

// As the main pool does: a connection idle this long is pinged before it is used.
use crate::db::IDLE_BEFORE_PING;

/// Readers are opened on demand; at most this many are kept idle between requests. More than the
/// runtime's threads is never needed: a read runs start to finish on one thread.
const MAX_IDLE: usize = 16;
/// See the module comment: readers only wait for a WAL-index reset.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The session read, for both backends (SQLite numbers `$1`, `$2` in order, like PostgreSQL).
/// On SQLite, sqlx stores `expiry_date` as RFC 3339 text in UTC, which sorts like time; `$2` is
/// bound in the same format (see `expiry_text`).
pub const READ_SESSION: &str =
    "SELECT s.data, u.id AS owner_id, u.username, u.password_hash, u.session_stamp \
     FROM tower_sessions s LEFT JOIN users u ON u.id = s.user_id \
     WHERE s.id = $1 AND s.expiry_date > $2";

/// A session row and, when someone is signed in to it, its owner's row.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionWithOwner {
    /// The session's data (MessagePack).
    pub data: Vec<u8>,
    /// The signed-in user's id.
    pub owner_id: Option<i64>,
    /// The signed-in user's name.
    pub username: Option<String>,
    /// The signed-in user's password hash.
    pub password_hash: Option<String>,
    /// The signed-in user's session stamp.
    pub session_stamp: Option<String>,
}

/// Read-only connections to one SQLite file. Cloning is cheap (shared).
#[derive(Clone, Debug)]
pub struct SqliteReader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReader {
    /// A reader for the file at `path`, or `None` when there is no file to share (an in-memory
    /// database lives inside sqlx's own connection).
    pub fn for_file(path: &Path) -> Option<Self> {
        let name = path.to_string_lossy();
        if name.is_empty() || name.starts_with(":memory:") || name.starts_with("file:") {
            return None;
        }
        Some(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The live session `id` (expiry after `now`) and its owner, if any.
    pub fn session(
        &self,
        id: &str,
        now: time::OffsetDateTime,
    ) -> Result<Option<SessionWithOwner>, rusqlite::Error> {
        let connection = self.checkout()?;
        // Counted by the test that checks a request reads the database once; free when the
        // level is off (the callsite is disabled statically).
        tracing::debug!(target: "signoff::session_read", "read session (tower_sessions JOIN users)");
        let row = {
            let mut statement = connection.prepare_cached(READ_SESSION)?;
            statement
                .query_row((id, expiry_text(now)?), |row| {
                    Ok(SessionWithOwner {
                        data: row.get(0)?,
                        owner_id: row.get(1)?,
                        username: row.get(2)?,
                        password_hash: row.get(3)?,
                        session_stamp: row.get(4)?,
                    })
                })
                .optional()
        };
        // A connection whose read failed is dropped rather than reused: whatever went wrong
        // (an I/O error, a corrupted handle) is not handed to the next request.
        if row.is_ok() {
            self.checkin(connection);
        }
        row
    }

    fn checkout(&self) -> Result<Connection, rusqlite::Error> {
        let idle = self.lock_idle().pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn checkin(&self, connection: Connection) {
        let mut idle = self.lock_idle();
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        // NO_MUTEX: a connection is used by one thread at a time (it is checked out), so
        // SQLite's own per-connection mutex would only cost.
        let connection = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        // Reads served from the mapped file instead of copied in by read(2).
        connection.pragma_update(None, "mmap_size", 64 * 1024 * 1024)?;
        // The query planner stability guarantee: plan from the SQL alone, never from the bound
        // values. Without it the SQLite that libsqlite3-sys 0.40 bundles (3.54, built with
        // STAT4) re-prepares the cached statement whenever a bound value changes, which the
        // session id and the time do on every request: the read cost seven times as much
        // (issue 21). Its plan (two primary-key lookups) depends on no value anyway.
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(connection)
    }
}

/// `time` as sqlx's SQLite driver writes an `OffsetDateTime` (RFC 3339), so that comparing the
/// stored text with it compares the instants. (An empty fallback would compare below every
/// expiry and admit expired sessions: a failure is an error.)
fn expiry_text(time: time::OffsetDateTime) -> Result<String, rusqlite::Error> {
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

/// Connections to PostgreSQL for the session read, outside sqlx's pool (see the module comment).
/// Cloning is cheap (shared).
#[derive(Clone, Debug)]
pub struct PgReader {
    inner: Arc<PgInner>,
}

#[derive(Debug)]
struct PgInner {
    options: PgConnectOptions,
    /// Bounds how many reader connections exist (idle or in use): the main pool's size, so an
    /// instance holds at most twice `DATABASE_MAX_CONNECTIONS` connections.
    permits: Semaphore,
    /// How long to wait for a permit and a connection before the read fails (503), as the
    /// main pool does (`DATABASE_ACQUIRE_TIMEOUT`).
    acquire_timeout: Duration,
    idle: Mutex<Vec<(PgConnection, Instant)>>,
}

impl PgReader {
    /// A reader with the main pool's address, size and acquire timeout.
    pub fn for_pool(pool: &PgPool) -> Self {
        let options = pool.options();
        Self {
            inner: Arc::new(PgInner {
                options: (*pool.connect_options()).clone(),
                permits: Semaphore::new(options.get_max_connections() as usize),
                acquire_timeout: options.get_acquire_timeout(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The live session `id` (expiry after `now`) and its owner, if any.
    pub async fn session(
        &self,
        id: &str,
        now: time::OffsetDateTime,
    ) -> Result<Option<SessionWithOwner>, sqlx::Error> {
        let _permit =
            tokio::time::timeout(self.inner.acquire_timeout, self.inner.permits.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?;
        let (mut connection, reused) =
            tokio::time::timeout(self.inner.acquire_timeout, self.checkout())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let mut row = read(&mut connection, id, now).await;
        // A reused connection can have died since its last query (a database restart, a proxy
        // timing it out) without anyone noticing: one retry on a fresh connection.
        if reused && matches!(row, Err(sqlx::Error::Io(_))) {
            connection = tokio::time::timeout(
                self.inner.acquire_timeout,
                PgConnection::connect_with(&self.inner.options),
            )
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
            row = read(&mut connection, id, now).await;
        }
        if row.is_ok() {
            self.lock_idle().push((connection, Instant::now()));
        }
        row
    }

    /// An idle connection (pinged first if it sat for a second) or a new one, and whether it
    /// was reused.
    async fn checkout(&self) -> Result<(PgConnection, bool), sqlx::Error> {
        loop {
            let Some((mut connection, since)) = self.lock_idle().pop() else {
                break;
            };
            if since.elapsed() < IDLE_BEFORE_PING {
                return Ok((connection, true));
            }
            if connection.ping().await.is_ok() {
                return Ok((connection, false));
            }
        }
        Ok((
            PgConnection::connect_with(&self.inner.options).await?,
            false,
        ))
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn read(
    connection: &mut PgConnection,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<Option<SessionWithOwner>, sqlx::Error> {
    sqlx::query_as(READ_SESSION)
        .bind(id)
        .bind(now)
        .fetch_optional(connection)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// The cached read is prepared once per connection: new ids and times only rebind it.
    #[test]
    fn the_read_is_not_prepared_again_for_new_values() {
        let dir = std::env::temp_dir().join(format!("signoff-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let path = dir.join("db.sqlite");
        let _ = std::fs::remove_file(&path);
        let writer = Connection::open(&path).expect("database");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL,
                     password_hash TEXT NOT NULL, session_stamp TEXT NOT NULL);
                 CREATE TABLE tower_sessions (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL,
                     expiry_date TEXT NOT NULL, user_id INTEGER);
                 CREATE INDEX tower_sessions_expiry ON tower_sessions (expiry_date);
                 INSERT INTO users VALUES (1, 'ada', 'hash', 'stamp');
                 INSERT INTO tower_sessions VALUES ('a', x'00', '2999-01-01T00:00:00Z', 1);
                 INSERT INTO tower_sessions VALUES ('b', x'00', '2999-01-01T00:00:00Z', NULL);",
            )
            .expect("schema");
        let reader = SqliteReader::for_file(&path).expect("a file");
        let start = time::OffsetDateTime::now_utc();
        for (step, id) in ["a", "b", "c", "a"].into_iter().enumerate() {
            let now = start + time::Duration::milliseconds(step as i64);
            let row = reader.session(id, now).expect("read");
            assert_eq!(row.is_some(), id != "c", "session {id}");
        }
        let connection = reader.checkout().expect("the idle connection");
        let statement = connection.prepare_cached(READ_SESSION).expect("cached");
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
        drop(statement);
        drop(connection);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
