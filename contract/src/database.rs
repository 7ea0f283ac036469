//! A fresh, empty database for one started target: a SQLite file in a temporary folder by
//! default, or a uniquely named PostgreSQL database when `SHOPLAB_TEST_POSTGRES_URL` is set.
//!
//! Every case gets its own database so cases can run in parallel and a failed case leaves
//! nothing behind for the next one.

use anyhow::{Context as _, Result};
use sqlx::Connection as _;

/// Where PostgreSQL tests connect, e.g. `postgres://postgres@127.0.0.1:5432` (no database).
pub const POSTGRES_URL_ENV: &str = "SHOPLAB_TEST_POSTGRES_URL";

/// A database that exists until `drop_database` is awaited.
pub struct TestDatabase {
    /// The URL a server is given (`sqlite://...` or `postgres://.../shoplab_contract_...`).
    pub url: String,
    kind: Kind,
}

enum Kind {
    /// Deleted with the folder when dropped.
    Sqlite(tempfile::TempDir),
    Postgres {
        server_url: String,
        name: String,
    },
}

impl TestDatabase {
    /// Creates a database of the kind the environment asks for.
    pub async fn create() -> Result<TestDatabase> {
        match std::env::var(POSTGRES_URL_ENV) {
            Ok(server_url) if !server_url.trim().is_empty() => {
                TestDatabase::create_postgres(server_url.trim()).await
            }
            _ => TestDatabase::create_sqlite(),
        }
    }

    pub fn create_sqlite() -> Result<TestDatabase> {
        let folder = tempfile::TempDir::new().context("create a temporary folder")?;
        let url = format!("sqlite://{}", folder.path().join("shop.db").display());
        Ok(TestDatabase {
            url,
            kind: Kind::Sqlite(folder),
        })
    }

    pub async fn create_postgres(server_url: &str) -> Result<TestDatabase> {
        let server_url = server_url.trim_end_matches('/').to_owned();
        let name = format!("shoplab_contract_{}", crate::client::unique_suffix());
        let mut connection = maintenance_connection(&server_url).await?;
        // The name is ours (hex digits and underscores), so formatting it in is safe.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .with_context(|| format!("create database {name}"))?;
        connection.close().await.ok();
        let url = format!("{server_url}/{name}");
        Ok(TestDatabase {
            url,
            kind: Kind::Postgres { server_url, name },
        })
    }

    /// Deletes the database; the server using it must be stopped first (PostgreSQL's
    /// `WITH (FORCE)` disconnects stragglers anyway).
    pub async fn drop_database(self) -> Result<()> {
        match self.kind {
            Kind::Sqlite(folder) => folder.close().context("delete the sqlite folder"),
            Kind::Postgres { server_url, name } => {
                let mut connection = maintenance_connection(&server_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await
                .with_context(|| format!("drop database {name}"))?;
                connection.close().await.ok();
                Ok(())
            }
        }
    }
}

/// A connection to the `postgres` maintenance database, where databases are created.
async fn maintenance_connection(server_url: &str) -> Result<sqlx::PgConnection> {
    let url = format!("{server_url}/postgres");
    sqlx::PgConnection::connect(&url)
        .await
        .with_context(|| format!("connect to {url} ({POSTGRES_URL_ENV})"))
}
