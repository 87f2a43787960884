//! The database: which backend a `DATABASE_URL` selects, its pool, and its migrations.
//! This is the only module that decides between backends; everything else writes its SQL once,
//! with `$1…$n` placeholders (which sqlx accepts for SQLite too), and runs it through [`on_db!`](crate::on_db).

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

/// The embedded default: a SQLite file next to the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/signoff.db";

/// Pool limits. Both are configurable because they are what an operator tunes under load.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections open at most (`DATABASE_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// How long a PostgreSQL connection may sit in the pool before it is pinged on checkout.
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A connected database. Cloning is cheap (the pool is shared).
#[derive(Clone, Debug)]
pub enum Database {
    /// The embedded default, for one instance.
    Sqlite(SqlitePool),
    /// For several instances sharing one database.
    Postgres(PgPool),
}

/// Runs the same code against whichever pool a [`Database`] holds: `on_db!(db, |pool| …)`.
/// The body is compiled once per backend, so it must be valid SQL for both.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}

#[derive(Debug, thiserror::Error)]
/// Why the database could not be opened or migrated at start-up.
pub enum DatabaseSetupError {
    #[error("DATABASE_URL: unsupported database {0:?}; expected a sqlite: or postgres: URL")]
    /// `DATABASE_URL` names neither SQLite nor PostgreSQL.
    Unsupported(String),
    #[error("DATABASE_URL: {0}")]
    /// `DATABASE_URL` could not be parsed.
    InvalidUrl(sqlx::Error),
    #[error("could not create the database directory {path}: {source}")]
    /// The SQLite file's directory could not be created.
    CreateDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    #[error("could not open the database: {0}")]
    /// The database did not accept a connection.
    Connect(sqlx::Error),
    #[error("could not apply database migrations: {0}")]
    /// A migration failed.
    Migrate(#[from] sqlx_core::migrate::MigrateError),
}

impl Database {
    /// Opens the database a URL names. A SQLite file (and its directory) is created if missing.
    pub async fn connect(url: &str, pool: PoolSettings) -> Result<Self, DatabaseSetupError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(DatabaseSetupError::InvalidUrl)?
                    .create_if_missing(true)
                    // WAL lets readers run while one writer commits; the busy timeout makes
                    // concurrent writers wait instead of failing with SQLITE_BUSY.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                create_parent_dir(options.get_filename())?;
                // Instances opening a new file together can deadlock switching it to WAL; SQLite
                // answers that at once with SQLITE_BUSY instead of waiting out the busy timeout.
                // The file is fine: try again shortly.
                let pool = retry_at_start_up(
                    "database busy at start-up",
                    || {
                        SqlitePoolOptions::new()
                            .max_connections(pool.max_connections)
                            .acquire_timeout(pool.acquire_timeout)
                            // sqlx pings every connection before handing it out by default. A
                            // SQLite connection is a file handle that cannot silently die like a
                            // socket, and each ping is a round trip to the connection's worker
                            // thread: `/api/me` went from 12,200 to 14,000 req/s without it.
                            .test_before_acquire(false)
                            .connect_with(options.clone())
                    },
                    // A new file's first connection (WAL switch, fsyncs) can also take longer than
                    // the acquire timeout on a machine busy writing to disk: that is not fatal
                    // either.
                    |error| is_sqlite_busy(error) || matches!(error, sqlx::Error::PoolTimedOut),
                )
                .await
                .map_err(DatabaseSetupError::Connect)?;
                Ok(Database::Sqlite(pool))
            }
            "postgres" | "postgresql" => {
                let options =
                    PgConnectOptions::from_str(url).map_err(DatabaseSetupError::InvalidUrl)?;
                let pool = PgPoolOptions::new()
                    .max_connections(pool.max_connections)
                    .acquire_timeout(pool.acquire_timeout)
                    // A connection that died with the server is noticed before it is handed out:
                    // one that sat idle is pinged first. One released less than a second ago was
                    // pinged by sqlx on release, so it skips this round trip, which under load
                    // is every checkout.
                    .test_before_acquire(false)
                    .before_acquire(|connection, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= IDLE_BEFORE_PING {
                                sqlx::Connection::ping(connection).await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(options)
                    .await
                    .map_err(DatabaseSetupError::Connect)?;
                Ok(Database::Postgres(pool))
            }
            other => Err(DatabaseSetupError::Unsupported(other.to_owned())),
        }
    }

    /// Brings the schema up to date. Runs at every start; already-applied migrations are skipped.
    ///
    /// Instances may start together. On PostgreSQL sqlx holds an advisory lock while migrating.
    /// On SQLite it has no lock, so two processes can both try the same migration; each
    /// migration is applied in one transaction with its bookkeeping row, so the loser's attempt
    /// rolls back, and running the migrator again finds the work done.
    pub async fn migrate(&self) -> Result<(), DatabaseSetupError> {
        match self {
            Database::Postgres(pool) => {
                crate::migrations::postgres().await?.run(pool).await?;
            }
            Database::Sqlite(pool) => {
                let migrator = crate::migrations::sqlite().await?;
                retry_at_start_up(
                    "migration raced another instance",
                    || migrator.run(pool),
                    |_| true,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Answers whether the database is reachable right now (for `/healthz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Closes every connection; later queries fail as if the database were down.
    pub async fn close(&self) {
        on_db!(self, |pool| pool.close().await)
    }

    /// Counts the rows of the session table (tests and benchmarks check that logout leaves none).
    pub async fn session_row_count(&self) -> Result<i64, sqlx::Error> {
        on_db!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM tower_sessions"
        )
        .fetch_one(pool)
        .await)
    }

    /// Claims this period's run of a shared periodic job. Exactly one instance gets `true` per
    /// `period`: the one whose update advances the job's row.
    pub async fn claim_job(&self, job: &str, period: Duration) -> Result<bool, sqlx::Error> {
        let now = crate::now_ms();
        let due_before = now - period.as_millis() as i64;
        let claimed = on_db!(self, |pool| sqlx::query(
            "UPDATE maintenance SET last_run_ms = $1 WHERE job = $2 AND last_run_ms <= $3"
        )
        .bind(now)
        .bind(job)
        .bind(due_before)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(claimed == 1)
    }
}

/// Runs a start-up step up to five times, pausing longer each time, while `transient` says its
/// error is one that instances starting together cause and a moment's wait cures.
async fn retry_at_start_up<T, E, F>(
    what: &str,
    mut step: impl FnMut() -> F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(error) if attempt < 5 && transient(&error) => {
                tracing::info!(%error, attempt, "{what}; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, extended codes included (the primary code is the low byte).
fn is_sqlite_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    error
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
}

fn create_parent_dir(file: &Path) -> Result<(), DatabaseSetupError> {
    // In-memory databases have no file; `:memory:` has no parent worth creating.
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| DatabaseSetupError::CreateDir {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}
