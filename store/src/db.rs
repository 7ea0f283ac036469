//! Opening a database, running a context's migrations, and mapping sqlx errors to domain
//! meanings.

use std::str::FromStr;
use std::time::Duration;

use domain::{Context, DomainError};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Transaction};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One pool's connections at one moment (for the `db_pool_*` gauges of `/metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// `reader` or `writer` on SQLite; `shared` on PostgreSQL, where one pool serves both.
    pub pool: &'static str,
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Clone, Debug)]
pub struct DbOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// A database and its pools.
///
/// SQLite allows one writer at a time; concurrent write transactions on separate connections
/// fail with `SQLITE_BUSY` when one tries to upgrade its lock. So on SQLite every write goes
/// through a one-connection writer pool (writers queue in the pool, with its acquire timeout)
/// while reads use a pool of their own (WAL lets them run beside the writer). On PostgreSQL
/// both are the same pool and row locks do the work.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    reader: AnyPool,
    writer: AnyPool,
}

impl Db {
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(sqlx::Error::Configuration(
                format!("unsupported database url {url:?}: use sqlite://PATH or postgres://...")
                    .into(),
            ));
        };
        let connect_options = connect_options(url, backend)?;
        let pool = |max_connections: u32| {
            AnyPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .after_connect(move |connection, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            configure_sqlite(connection).await?;
                        }
                        Ok(())
                    })
                })
        };
        let reader = pool(options.max_connections)
            .connect_with(connect_options.clone())
            .await?;
        let writer = match backend {
            Backend::Sqlite => pool(1).connect_with(connect_options).await?,
            Backend::Postgres => reader.clone(),
        };
        Ok(Db {
            backend,
            reader,
            writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// What each pool holds right now; the pools count, nothing is queried.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        let pool_use = |pool: &'static str, connections: &AnyPool| PoolUse {
            pool,
            open: connections.size(),
            idle: u32::try_from(connections.num_idle()).unwrap_or(u32::MAX),
            max: connections.options().get_max_connections(),
        };
        match self.backend {
            Backend::Sqlite => vec![
                pool_use("reader", &self.reader),
                pool_use("writer", &self.writer),
            ],
            Backend::Postgres => vec![pool_use("shared", &self.reader)],
        }
    }

    /// A write transaction. On SQLite it takes the write lock at `BEGIN IMMEDIATE`, where the
    /// busy timeout waits for another process's writer: a plain (deferred) `BEGIN` reads
    /// first and upgrades at its first write, and an upgrade that meets another process's
    /// write lock fails at once with `SQLITE_BUSY`, the busy timeout never consulted (SQLite
    /// refuses to wait there, as the two could deadlock). The one writer connection keeps
    /// this process's own writers in line; the file is shared with another process whenever
    /// two run on it: a rolling deploy's old and new process, the scale experiment's two
    /// monoliths.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Runs the migrations of the given contexts (each context owns its own set; the
    /// monolith runs all of them on one database, a service only its own).
    pub async fn migrate(&self, contexts: &[Context]) -> Result<(), sqlx::migrate::MigrateError> {
        for &context in contexts {
            let mut migrator = migrator(self.backend, context);
            // Several contexts share one database in the monolith, so each migrator must
            // tolerate versions it does not know (they belong to its neighbours).
            migrator.set_ignore_missing(true);
            migrator.run(&self.writer).await?;
        }
        Ok(())
    }

    /// The database answers a trivial query within the pool's acquire timeout.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Empties the given tables and restarts their id sequences.
    pub async fn wipe(
        &self,
        connection: &mut AnyConnection,
        tables: &[&'static str],
    ) -> Result<(), sqlx::Error> {
        for table in tables {
            let statement = match self.backend {
                Backend::Postgres => format!("TRUNCATE {table} RESTART IDENTITY"),
                // An INTEGER PRIMARY KEY without AUTOINCREMENT restarts at 1 on an empty table.
                Backend::Sqlite => format!("DELETE FROM {table}"),
            };
            // The table names are compile-time constants of this crate, never input.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

fn connect_options(url: &str, backend: Backend) -> Result<AnyConnectOptions, sqlx::Error> {
    let url = match backend {
        // Create the file on first start: the embedded default must run with nothing set up.
        Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => {
            format!("{url}?mode=rwc")
        }
        _ => url.to_owned(),
    };
    let options = AnyConnectOptions::from_str(&url)?;
    Ok(options.disable_statement_logging())
}

async fn configure_sqlite(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    // WAL lets readers run beside the writer; NORMAL sync is durable across process crashes
    // (the lab kills processes, not machines); busy_timeout covers other processes' locks.
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA busy_timeout = 5000",
    ] {
        sqlx::query(pragma).execute(&mut *connection).await?;
    }
    connection.ping().await
}

fn migrator(backend: Backend, context: Context) -> Migrator {
    match (backend, context) {
        (Backend::Sqlite, Context::Catalog) => sqlx::migrate!("migrations/sqlite/catalog"),
        (Backend::Sqlite, Context::Inventory) => sqlx::migrate!("migrations/sqlite/inventory"),
        (Backend::Sqlite, Context::Cart) => sqlx::migrate!("migrations/sqlite/cart"),
        (Backend::Sqlite, Context::Orders) => sqlx::migrate!("migrations/sqlite/orders"),
        (Backend::Sqlite, Context::Payments) => sqlx::migrate!("migrations/sqlite/payments"),
        (Backend::Sqlite, Context::Users) => sqlx::migrate!("migrations/sqlite/users"),
        (Backend::Sqlite, Context::Recommendations) => {
            sqlx::migrate!("migrations/sqlite/recommendations")
        }
        (Backend::Postgres, Context::Catalog) => sqlx::migrate!("migrations/postgres/catalog"),
        (Backend::Postgres, Context::Inventory) => sqlx::migrate!("migrations/postgres/inventory"),
        (Backend::Postgres, Context::Cart) => sqlx::migrate!("migrations/postgres/cart"),
        (Backend::Postgres, Context::Orders) => sqlx::migrate!("migrations/postgres/orders"),
        (Backend::Postgres, Context::Payments) => sqlx::migrate!("migrations/postgres/payments"),
        (Backend::Postgres, Context::Users) => sqlx::migrate!("migrations/postgres/users"),
        (Backend::Postgres, Context::Recommendations) => {
            sqlx::migrate!("migrations/postgres/recommendations")
        }
    }
}

/// Maps a database error to its domain meaning: a pool that cannot hand out a connection
/// or a dead connection is `Unavailable` (503, retryable); anything else is a bug (500).
pub fn db_error(error: sqlx::Error) -> DomainError {
    match error {
        sqlx::Error::PoolTimedOut => DomainError::Unavailable("database busy".into()),
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            DomainError::Unavailable("database unavailable".into())
        }
        sqlx::Error::Database(ref database) if is_busy(database.message()) => {
            DomainError::Unavailable("database busy".into())
        }
        other => {
            tracing::error!(error = %other, "database error");
            DomainError::Internal(format!("database: {other}"))
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("could not serialize")
}

/// `$first, $first+1, ...` placeholders for one row of `columns` values. `Any` has no
/// array binding and its query builder writes `?`, which PostgreSQL rejects, so the few
/// multi-value statements build their placeholder lists here (numbers only, never input).
pub(crate) fn placeholders(first: usize, columns: usize) -> String {
    let numbers: Vec<String> = (first..first + columns).map(|n| format!("${n}")).collect();
    format!("({})", numbers.join(", "))
}

/// Placeholders for `rows` rows of `columns` values: `($1, $2), ($3, $4)`.
pub(crate) fn row_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| placeholders(1 + row * columns, columns))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per multi-row INSERT while seeding; stays under SQLite's 999-parameter floor.
pub(crate) const SEED_BATCH_ROWS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(row_placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(4, 1), "($4)");
    }
}
