//! The lab on a PostgreSQL server: a run's databases are its own and gone when it stops, so a
//! shop served from the same server (`serve --db`, the fixed `shoplab_<service>` names) is
//! never reset or dropped by a lab run.

use std::collections::BTreeSet;

use loadtest_results::component::Build;
use sqlx::Connection as _;

use crate::support::target_settings;

/// Held for the whole of every test that runs the lab on the PostgreSQL server (these two and
/// the suite's): the first two count the run databases (`shoplab_run_*`) that appeared while
/// they ran as their own, and another lab on the server meanwhile would add some.
pub static RUN_DATABASES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The databases on the server whose names start with `prefix`.
async fn databases(admin: &mut sqlx::PgConnection, prefix: &str) -> BTreeSet<String> {
    let names: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database")
        .fetch_all(admin)
        .await
        .expect("the server lists its databases");
    names
        .into_iter()
        .map(|(name,)| name)
        .filter(|name| name.starts_with(prefix))
        .collect()
}

pub async fn a_lab_run_on_postgres_uses_databases_of_its_own_and_drops_them_when_it_stops(
    server: String,
) {
    let _alone = RUN_DATABASES.lock().await;
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {server} answers: {error}"));
    let fixed_before = databases(&mut admin, "shoplab_monolith").await;
    let runs_before = databases(&mut admin, "shoplab_run_monolith_").await;

    let mut settings = target_settings();
    settings.postgres = Some(server.clone());
    let target = loadtest_platform::Target::start(Build::Monolith, &settings)
        .await
        .unwrap_or_else(|error| panic!("the monolith starts on {server}: {error:#}"));
    target
        .reset(&settings)
        .await
        .unwrap_or_else(|error| panic!("the monolith resets: {error:#}"));
    let ours: BTreeSet<String> = databases(&mut admin, "shoplab_run_monolith_")
        .await
        .difference(&runs_before)
        .cloned()
        .collect();
    let stopped = target.stop().await;

    assert_eq!(
        ours.len(),
        1,
        "one database of the run's own for the monolith: {ours:?}"
    );
    assert!(
        ours.iter().all(|name| name.ends_with("_monolith")),
        "{ours:?}"
    );
    assert_eq!(
        databases(&mut admin, "shoplab_monolith").await,
        fixed_before,
        "the fixed name a served shop uses was neither made nor dropped"
    );
    stopped.unwrap_or_else(|error| panic!("the target stops: {error:#}"));
    let left: BTreeSet<String> = databases(&mut admin, "shoplab_run_monolith_")
        .await
        .intersection(&ours)
        .cloned()
        .collect();
    assert!(
        left.is_empty(),
        "dropped at stop, yet still there: {left:?}"
    );
}

/// A lab killed with SIGKILL never drops its databases. The next run on the server drops
/// those of every run whose claim (a session advisory lock on its prefix) no session holds,
/// and never a live run's: here a database left by a dead run (no session claims its prefix),
/// and a live run's, started first and still running.
pub async fn a_run_drops_the_databases_a_dead_run_left_and_keeps_a_live_runs(server: String) {
    let _alone = RUN_DATABASES.lock().await;
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {server} answers: {error}"));
    let mut settings = target_settings();
    settings.postgres = Some(server.clone());
    let runs_before = databases(&mut admin, "shoplab_run_monolith_").await;
    let live = loadtest_platform::Target::start(Build::Monolith, &settings)
        .await
        .unwrap_or_else(|error| panic!("the monolith starts on {server}: {error:#}"));
    let live_ones: BTreeSet<String> = databases(&mut admin, "shoplab_run_monolith_")
        .await
        .difference(&runs_before)
        .cloned()
        .collect();
    assert_eq!(live_ones.len(), 1, "the live run's database: {live_ones:?}");
    // Named as a run names its own, with a random part of 8 hex digits.
    let left = format!(
        "shoplab_run_monolith_{}_monolith",
        hex::encode(rand::random::<[u8; 4]>())
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{left}\"")))
        .execute(&mut admin)
        .await
        .expect("a dead run's database is made");

    let next = loadtest_platform::Target::start(Build::Monolith, &settings)
        .await
        .unwrap_or_else(|error| panic!("a second run starts on {server}: {error:#}"));
    let there = databases(&mut admin, "shoplab_run_monolith_").await;
    let next_stopped = next.stop().await;
    let live_stopped = live.stop().await;

    assert!(
        !there.contains(&left),
        "the database a dead run left is still there after the next run started"
    );
    assert!(
        live_ones.is_subset(&there),
        "the live run's database was dropped by the next run: {live_ones:?} not in {there:?}"
    );
    next_stopped.unwrap_or_else(|error| panic!("the second run stops: {error:#}"));
    live_stopped.unwrap_or_else(|error| panic!("the live run stops: {error:#}"));
}
