//! The per-request session read on SQLite, done on the request's own thread.
//!
//! Every signed-in request reads its session row (and its owner) once. Through sqlx that read is
//! two hops between threads: sqlx runs each SQLite connection on a worker thread of its own and
//! hands results back through channels. Under load the server spent about a third of its CPU in
//! the kernel switching threads for those hops (`bench/README.md` has the profile). An indexed
//! lookup in SQLite itself takes microseconds, less than the hops, so here it runs synchronously
//! on a small pool of read-only connections to the same file.
//!
//! Nothing is cached: every call is a fresh read transaction, which in WAL mode sees every write
//! committed before it began, by this process or any other. A session ended anywhere is refused
//! by the next read, exactly as with sqlx. Writes still go through sqlx.
//!
//! A blocked read would block a runtime thread, so the connections have a short busy timeout: in
//! WAL mode readers never wait for writers, only (rarely, briefly) for a checkpoint's reset of
//! the WAL index. A read that cannot finish becomes a store error, which the stack answers 503.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Readers are opened on demand; at most this many are kept idle between requests. More than the
/// runtime's threads is never needed: a read runs start to finish on one thread.
const MAX_IDLE: usize = 16;
/// See the module comment: readers only wait for a WAL-index reset.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The session read, for both backends (SQLite numbers `$1`, `$2` in order, like PostgreSQL).
/// On SQLite, sqlx stores `expiry_date` as RFC 3339 text in UTC, which sorts like time; `$2` is
/// bound in the same format (see [`expiry_text`]).
pub const READ_SESSION: &str =
    "SELECT s.data, u.id AS owner_id, u.username, u.password_hash, u.session_stamp \
     FROM tower_sessions s LEFT JOIN users u ON u.id = s.user_id \
     WHERE s.id = $1 AND s.expiry_date > $2";

/// A session row and, when someone is signed in to it, its owner's row.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionWithOwner {
    pub data: Vec<u8>,
    pub owner_id: Option<i64>,
    pub username: Option<String>,
    pub password_hash: Option<String>,
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
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.open(),
        }
    }

    fn checkin(&self, connection: Connection) {
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
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
