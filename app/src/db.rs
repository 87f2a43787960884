//! The database: which backend a `DATABASE_URL` selects, its pool, and its migrations.
//! This is the only module that decides between backends.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    SqlitePool,
};

/// The embedded default: a SQLite file next to the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/signoff.db";

/// Pool limits. Both are configurable because they are what an operator tunes under load.
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
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

/// A connected database. Cloning is cheap (the pool is shared).
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum DatabaseSetupError {
    #[error("DATABASE_URL: unsupported database {0:?}; this build supports sqlite: URLs")]
    Unsupported(String),
    #[error("DATABASE_URL: {0}")]
    InvalidUrl(sqlx::Error),
    #[error("could not create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not open the database: {0}")]
    Connect(sqlx::Error),
    #[error("could not apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
                let pool = SqlitePoolOptions::new()
                    .max_connections(pool.max_connections)
                    .acquire_timeout(pool.acquire_timeout)
                    .connect_with(options)
                    .await
                    .map_err(DatabaseSetupError::Connect)?;
                Ok(Database::Sqlite(pool))
            }
            other => Err(DatabaseSetupError::Unsupported(other.to_owned())),
        }
    }

    /// Brings the schema up to date. Runs at every start; already-applied migrations are skipped.
    pub async fn migrate(&self) -> Result<(), DatabaseSetupError> {
        match self {
            Database::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Answers whether the database is reachable right now (for `/healthz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Database::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        }
    }

    /// Closes every connection; later queries fail as if the database were down.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
        }
    }

    /// Counts the rows of the session table (tests and benchmarks check that logout leaves none).
    pub async fn session_row_count(&self) -> Result<i64, sqlx::Error> {
        match self {
            Database::Sqlite(pool) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM tower_sessions")
                    .fetch_one(pool)
                    .await
            }
        }
    }
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
