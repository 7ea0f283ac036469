//! One database per service: SQLite files in a folder, or databases on one PostgreSQL
//! server. Replicas of a service share its database.

use std::path::PathBuf;

use anyhow::Context as _;
use domain::Context;

use super::Build;
use sqlx::Connection as _;

/// Where the services keep their data.
#[derive(Clone, Debug)]
pub enum Database {
    /// `<dir>/<service>.db`, created when missing.
    Sqlite { dir: PathBuf },
    /// `shoplab_<service>` on the server at this URL (`postgres://user@host:port`; a path
    /// after the host is ignored), created when missing.
    Postgres { server: String },
    /// As `Postgres`, with databases named `<prefix>_<service>`: a test gives its run a
    /// prefix of its own, so runs that share a server never share (or drop) data.
    PostgresPrefixed { server: String, prefix: String },
}

impl Database {
    /// The `--db` URL of `context`'s service.
    pub fn url(&self, context: Context) -> String {
        self.url_named(context.as_str())
    }

    /// The `--db` URL of the process named `name`: a service, `monolith`, or a group of a
    /// topology (`storefront`, `catalog+users`), which keeps one database for its contexts.
    pub fn url_named(&self, name: &str) -> String {
        match self {
            Database::Sqlite { dir } => {
                format!("sqlite://{}", dir.join(format!("{name}.db")).display())
            }
            Database::Postgres { server } => postgres_url(server, &database_name(name)),
            Database::PostgresPrefixed { server, prefix } => {
                postgres_url(server, &format!("{prefix}_{name}"))
            }
        }
    }

    /// Whether the data is on a PostgreSQL server (which a fault proxy can cut off) rather
    /// than in SQLite files inside the processes.
    pub fn is_postgres(&self) -> bool {
        !matches!(self, Database::Sqlite { .. })
    }

    /// The `--db` URL of the monolith's one database.
    pub fn monolith_url(&self) -> String {
        self.url_named("monolith")
    }

    /// Creates what is missing (the folder, the databases `build` needs) and says whether
    /// the data is fresh: no catalog (or monolith) database existed before.
    pub async fn prepare(&mut self, build: Build) -> anyhow::Result<bool> {
        let names: Vec<String> = match build {
            Build::Monolith => vec!["monolith".to_owned()],
            Build::Micro => Context::ALL.iter().map(ToString::to_string).collect(),
        };
        self.prepare_named(&names).await
    }

    /// As [`Database::prepare`], for the processes named `names` (the first decides whether
    /// the data is fresh).
    pub async fn prepare_named(&mut self, names: &[String]) -> anyhow::Result<bool> {
        match self {
            Database::Sqlite { dir } => {
                std::fs::create_dir_all(&*dir)
                    .with_context(|| format!("create the data folder {}", dir.display()))?;
                // Absolute, so the printed URLs and the children do not depend on a cwd.
                *dir = std::fs::canonicalize(&*dir)
                    .with_context(|| format!("resolve {}", dir.display()))?;
                Ok(!dir.join(format!("{}.db", names[0])).exists())
            }
            Database::Postgres { server } | Database::PostgresPrefixed { server, .. } => {
                let server = server.clone();
                let prefix = match &*self {
                    Database::PostgresPrefixed { prefix, .. } => prefix.clone(),
                    _ => "shoplab".to_owned(),
                };
                let mut connection = maintenance(&server).await?;
                let mut fresh = false;
                for (index, name) in names.iter().enumerate() {
                    let name = format!("{prefix}_{name}");
                    let exists: Option<(i32,)> =
                        sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                            .bind(&name)
                            .fetch_optional(&mut connection)
                            .await
                            .with_context(|| format!("look for database {name}"))?;
                    if exists.is_none() {
                        // The name is ours (a prefix the code chose + a context), never user input.
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                            .execute(&mut connection)
                            .await
                            .with_context(|| format!("create database {name}"))?;
                        fresh |= index == 0;
                    }
                }
                connection.close().await.ok();
                Ok(fresh)
            }
        }
    }

    /// A run's own databases on `server`, named `shoplab_run_<label>_<8 hex digits>_<process>`
    /// (`label`: the build or topology, made name-safe). The lab resets what it runs on, and
    /// with the fixed `shoplab_<service>` names `serve --db` uses it would wipe a shop served
    /// from the same server.
    pub fn of_run(server: &str, label: &str) -> Database {
        let label = name_safe(label);
        Database::PostgresPrefixed {
            server: server.to_owned(),
            prefix: format!(
                "{RUN_PREFIX}{label}_{}",
                hex::encode(rand::random::<[u8; 4]>())
            ),
        }
    }

    /// On a run's own databases ([`Database::of_run`]): claims them before they exist, then
    /// drops every run's whose claim is gone — a lab killed with SIGKILL, or whose machine
    /// died, never dropped its own. `None` for SQLite files or the fixed names, which belong
    /// to whoever serves them.
    pub async fn claim(&self) -> anyhow::Result<Option<RunClaim>> {
        let Database::PostgresPrefixed { server, prefix } = self else {
            return Ok(None);
        };
        let mut connection = maintenance(server).await?;
        let claimed = try_lock(&mut connection, prefix).await?;
        anyhow::ensure!(claimed, "the run prefix {prefix} is already claimed");
        let abandoned = sweep_abandoned(server, prefix).await?;
        if abandoned > 0 {
            tracing::warn!(
                databases = abandoned,
                "dropped the databases of lab runs that ended without dropping them"
            );
        }
        Ok(Some(RunClaim {
            connection,
            prefix: prefix.clone(),
        }))
    }
}

/// `label` (a build's or a topology's name) as a database's or a folder's name may hold it: a
/// custom spec's `+` and `,` as `_`.
pub fn name_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Every run's own database names start with this.
const RUN_PREFIX: &str = "shoplab_run_";

/// A run's hold on its own databases ([`Database::of_run`]) for as long as it lives: a
/// session-level advisory lock on the run's prefix, on a connection of its own. PostgreSQL
/// lets go of it when the session ends however the lab ended, a SIGKILL or a lost machine
/// included, so another lab can tell databases a dead run left from a live run's — across
/// machines sharing one server, which a process id could not — and drop only the first.
pub struct RunClaim {
    connection: sqlx::PgConnection,
    /// The run's prefix, which the claim's lock is on.
    prefix: String,
}

impl RunClaim {
    /// Drops the run's databases once its processes are gone, then lets the claim go.
    pub async fn release(mut self) -> anyhow::Result<()> {
        drop_prefixed(&mut self.connection, &self.prefix).await?;
        self.connection.close().await.ok();
        Ok(())
    }
}

/// The advisory lock of a run prefix. `hashtextextended` runs on the server, so every lab
/// maps a prefix to the same key whatever its version of Rust's hashing.
async fn try_lock(connection: &mut sqlx::PgConnection, prefix: &str) -> anyhow::Result<bool> {
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(prefix)
        .fetch_one(&mut *connection)
        .await
        .with_context(|| format!("claim the run prefix {prefix}"))?;
    Ok(locked)
}

/// Drops the databases of every run but `ours` whose claim no session holds; returns how
/// many. A live run holds its claim from before its first database exists until after its
/// last is dropped, so whatever can be locked here was left behind.
async fn sweep_abandoned(server: &str, ours: &str) -> anyhow::Result<usize> {
    let mut connection = maintenance(server).await?;
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE left(datname, $1) = $2")
            .bind(RUN_PREFIX.len() as i32)
            .bind(RUN_PREFIX)
            .fetch_all(&mut connection)
            .await
            .context("list the lab runs' databases")?;
    let prefixes: std::collections::BTreeSet<&str> = names
        .iter()
        .filter_map(|(name,)| run_prefix(name))
        .filter(|prefix| *prefix != ours)
        .collect();
    let mut dropped = 0;
    for prefix in prefixes {
        // Locked by this session, the prefix cannot be claimed by a new run meanwhile; its
        // random part makes that unlikely anyway.
        if try_lock(&mut connection, prefix).await? {
            dropped += drop_prefixed(&mut connection, prefix).await?;
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(prefix)
                .execute(&mut connection)
                .await
                .with_context(|| format!("let go of the run prefix {prefix}"))?;
        }
    }
    connection.close().await.ok();
    Ok(dropped)
}

/// The run prefix of one of [`Database::of_run`]'s names: up to its 8 hex digits. A label is
/// a build's or a topology's name, whose words are never 8 hex digits.
fn run_prefix(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(RUN_PREFIX)?;
    let mut end = RUN_PREFIX.len();
    for word in rest.split('_') {
        end += word.len();
        if word.len() == 8 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(&name[..end]);
        }
        end += 1;
    }
    None
}

/// Drops every `<prefix>_*` database on the server; returns how many.
async fn drop_prefixed(connection: &mut sqlx::PgConnection, prefix: &str) -> anyhow::Result<usize> {
    // `_` is a LIKE wildcard: the prefix is matched as it is written, then `_` and more.
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE left(datname, $1) = $2")
            .bind(prefix.len() as i32 + 1)
            .bind(format!("{prefix}_"))
            .fetch_all(&mut *connection)
            .await
            .with_context(|| format!("list the databases {prefix}_*"))?;
    for (name,) in &names {
        // The name came from the server's catalogue under a run prefix.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut *connection)
        .await
        .with_context(|| format!("drop database {name}"))?;
    }
    Ok(names.len())
}

/// A connection to `server`'s maintenance database, where databases are listed, made and
/// dropped.
async fn maintenance(server: &str) -> anyhow::Result<sqlx::PgConnection> {
    let url = postgres_url(server, "postgres");
    sqlx::PgConnection::connect(&url)
        .await
        .with_context(|| format!("connect to {}", redact(&url)))
}

fn database_name(name: impl std::fmt::Display) -> String {
    format!("shoplab_{name}")
}

/// `server` with its path replaced by `/database`; a query string is kept.
fn postgres_url(server: &str, database: &str) -> String {
    let (without_query, query) = match server.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (server, String::new()),
    };
    let authority_start = without_query.find("://").map_or(0, |at| at + 3);
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    format!("{base}/{database}{query}")
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_gets_its_own_postgres_database_on_the_same_server() {
        let database = Database::Postgres {
            server: "postgres://postgres@127.0.0.1:5432".into(),
        };
        assert_eq!(
            database.url(Context::Inventory),
            "postgres://postgres@127.0.0.1:5432/shoplab_inventory"
        );
        assert_eq!(
            postgres_url(
                "postgres://u:p@db:5432/ignored?sslmode=disable",
                "shoplab_users"
            ),
            "postgres://u:p@db:5432/shoplab_users?sslmode=disable"
        );
    }

    #[test]
    fn a_run_prefix_is_read_back_from_each_of_its_databases_names() {
        for label in ["monolith", "browse-buy", "catalog+users,cart"] {
            let Database::PostgresPrefixed { prefix, .. } =
                Database::of_run("postgres://127.0.0.1:5432", label)
            else {
                panic!("a run's databases are prefixed");
            };
            for process in ["monolith", "gateway", "cart+orders+payments", "users"] {
                let name = format!("{prefix}_{process}");
                assert_eq!(run_prefix(&name), Some(prefix.as_str()), "{name}");
            }
        }
        assert_eq!(run_prefix("shoplab_monolith"), None);
        assert_eq!(run_prefix("shoplab_run_monolith_monolith"), None);
    }

    #[test]
    fn each_service_gets_its_own_sqlite_file_in_the_data_folder() {
        let database = Database::Sqlite {
            dir: PathBuf::from("/data"),
        };
        assert_eq!(database.url(Context::Cart), "sqlite:///data/cart.db");
    }
}
