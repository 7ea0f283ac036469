//! The lab on a PostgreSQL server: a run's databases are its own and gone when it stops, so a
//! shop served from the same server (`serve --db`, the fixed `shoplab_<service>` names) is
//! never reset or dropped by a lab run.

use std::collections::BTreeSet;

use loadtest_results::component::Build;
use sqlx::Connection as _;

use crate::support::target_settings;

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
