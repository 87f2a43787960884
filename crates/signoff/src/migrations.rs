//! The schema's migrations, compiled into the binary and run by sqlx's migrator.
//!
//! sqlx's `migrate!` macro would embed them, but it needs the `migrate` and `macros` features of
//! the `sqlx` crate, which name `sqlx-mysql` as a weak dependency; Cargo then records MySQL's
//! driver in Cargo.lock even though nothing enables it (rust-lang/cargo#10801), and every scanner
//! that reads the lock file sees MySQL code in an auth server that has none. So the files are
//! listed here, read with `include_str!`, and handed to the same migrator (`sqlx-core`'s, with the
//! same `_sqlx_migrations` bookkeeping and SHA-384 checksums the macro produced), so databases
//! migrated by earlier releases carry on.
//!
//! Adding a migration: put the file in `migrations/<backend>/` and its name in the list below
//! (`every_file_is_listed` fails otherwise). Never edit a shipped one: databases in the field
//! hold its checksum (`shipped_migrations_are_unchanged` fails).

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx_core::{
    error::BoxDynError,
    migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator},
    sql_str::{AssertSqlSafe, SqlSafeStr},
};

/// One migration file: its name (`<version>_<description>.sql`) and its SQL.
type File = (&'static str, &'static str);

macro_rules! files {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../migrations/", $dir, "/", $name)))),*]
    };
}

/// PostgreSQL's migrations, oldest first.
const POSTGRES: &[File] = files!("postgres":
    "20261125000001_init.sql",
    "20261125000002_abuse.sql",
    "20261201000005_oidc.sql",
    "20261203000006_names.sql",
    "20261204000007_mail.sql",
    "20261204000008_recovery.sql",
    "20261205000009_passkeys.sql",
);

/// SQLite's migrations, oldest first.
const SQLITE: &[File] = files!("sqlite":
    "20261125000001_init.sql",
    "20261125000002_session_security.sql",
    "20261125000003_maintenance.sql",
    "20261125000004_abuse.sql",
    "20261201000005_oidc.sql",
    "20261203000006_names.sql",
    "20261204000007_mail.sql",
    "20261204000008_recovery.sql",
    "20261205000009_passkeys.sql",
);

/// The migrator of PostgreSQL's schema.
pub(crate) async fn postgres() -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(POSTGRES)).await
}

/// The migrator of SQLite's schema.
pub(crate) async fn sqlite() -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(SQLITE)).await
}

#[derive(Debug)]
struct Embedded(&'static [File]);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self.0.iter().map(migration).collect();
        Box::pin(std::future::ready(migrations))
    }
}

/// A file as `migrate!` reads it: the version before the first `_`, the rest (underscores as
/// spaces) as the description, the SQL as written (its SHA-384 is the checksum), and
/// `-- no-transaction` on the first line to run it outside a transaction.
fn migration(&(name, sql): &File) -> Result<Migration, BoxDynError> {
    let stem = name
        .strip_suffix(".sql")
        .ok_or_else(|| format!("migration {name}: not a .sql file"))?;
    let (version, description) = stem
        .split_once('_')
        .ok_or_else(|| format!("migration {name}: expected <version>_<description>.sql"))?;
    let version = version
        .parse()
        .map_err(|error| format!("migration {name}: version: {error}"))?;
    Ok(Migration::new(
        version,
        Cow::Owned(description.replace('_', " ")),
        MigrationType::Simple,
        AssertSqlSafe(sql).into_sql_str(),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(files: &[File]) -> Vec<String> {
        files.iter().map(|(name, _)| (*name).to_owned()).collect()
    }

    fn on_disk(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .expect("migrations directory")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_is_listed() {
        assert_eq!(listed(POSTGRES), on_disk("postgres"));
        assert_eq!(listed(SQLITE), on_disk("sqlite"));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The checksums databases in the field hold (`_sqlx_migrations.checksum`, written by sqlx
    /// 0.8's `migrate!` in earlier releases; `sha384sum migrations/*/*.sql` gives them).
    #[test]
    fn shipped_migrations_are_unchanged() {
        const SHIPPED: &[(&str, &str)] = &[
            ("postgres/20261125000001_init.sql", "d04c84d6db8fe59e6ecf2f63898b50c9e0a4c63c958a57312327e7b01bae4f0fbb3758798fc06ac342e3646e8e9358e7"),
            ("postgres/20261125000002_abuse.sql", "75a7cbf24cde4bf4319b2238a5fa74fe4d0f3d962725ea1735f893aea9f6dcef31ac761f1ddbd7ff40e6c182fb525274"),
            ("postgres/20261201000005_oidc.sql", "91dc2f61fa204d2e21945757a045dbf8485a04f076750f71288546193044f005cf413db584d41c281af8d85d928327ec"),
            ("postgres/20261203000006_names.sql", "b05c2a18cafc7326baa5689103deda4bc466b0c99dd3accbc862fb32d194c20003026267eaeed06815dd4427ef91f89b"),
            ("sqlite/20261125000001_init.sql", "dd98e7cfafd31e57437dad05156537d6c2c740754a5b33846d7e01af5d4ae2ff7b766b1aa475d6485e67f2201f2fcea8"),
            ("sqlite/20261125000002_session_security.sql", "55332454df6f56bb23649b2fdbdfe6a9f7dbd77402bc9e78cdf34c4706df3ab534d3915af6c57b95222f4a5f337c276a"),
            ("sqlite/20261125000003_maintenance.sql", "026199d3b78d1bd325b5f8fcfdf6b7d4a32d7d388cefc1ffdd4adfb537dd9c4b30597663f70ed3bcba7df75bdbd34806"),
            ("sqlite/20261125000004_abuse.sql", "c4427b30677fcea9f0c94a8453cb5616e4f2835aa223a3a4c54cf18d086fee9bdae7fd3264c793ccecc492135a34b797"),
            ("sqlite/20261201000005_oidc.sql", "85ad4f9951cd08a2f23165c0c929a4826030ee99ecb19e2e23ea978ddb4edea39adf2414b050463ab8815bc97423fd66"),
            ("sqlite/20261203000006_names.sql", "79f69d36dda4c9db3cd9f32cedeeb2306a6981d8e43078301a40219663616b9f0b6a7baced083a99f5ca205bb4278616"),
        ];
        let embedded = POSTGRES
            .iter()
            .map(|file| ("postgres", file))
            .chain(SQLITE.iter().map(|file| ("sqlite", file)));
        for (backend, file) in embedded {
            let name = format!("{backend}/{}", file.0);
            let Some((_, expected)) = SHIPPED.iter().find(|(shipped, _)| *shipped == name) else {
                continue; // not shipped yet
            };
            let read = migration(file).expect("a valid migration");
            assert_eq!(
                &hex(&read.checksum),
                expected,
                "{name} was edited after release"
            );
        }
    }

    #[test]
    fn files_are_read_as_migrate_reads_them() {
        let read = migration(&SQLITE[1]).expect("a valid migration");
        assert_eq!(read.version, 20261125000002);
        assert_eq!(read.description, "session security");
        assert!(!read.no_tx);
        assert!(migration(&("init.sql", "")).is_err());
        assert!(migration(&("x_init.sql", "")).is_err());
        assert!(migration(&("1_init.txt", "")).is_err());
    }
}
