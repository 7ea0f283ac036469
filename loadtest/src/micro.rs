//! `shoplab serve micro`: the microservices build on this machine, one process per service
//! plus the gateway, until Ctrl-C or SIGTERM. A process that exits meanwhile (a crash, an
//! OOM kill, a `kill -9`) is started again on its port under the restart policy of the
//! lab's local platform (`Deployment::heal_until`), and its exit and restart are logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use domain::Context;

use loadtest_platform::local::supervisor::{Build, Database, Deployment, Options};

#[derive(Clone, Debug, clap::Args)]
pub struct MicroArgs {
    /// The gateway's public port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The gateway's admin port (0 picks a free one; printed at start).
    #[arg(long, default_value_t = 0)]
    pub admin_port: u16,
    /// PostgreSQL server (`postgres://user@host:port`): one database `shoplab_<service>`
    /// per service, created when missing. Default: one SQLite file per service in --data-dir.
    #[arg(long)]
    pub db: Option<String>,
    /// Wipe and seed every service with this seed (default: seed 42 when the data is fresh).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Replicas per service, `catalog=2,inventory=3`; replicas share their service's database.
    #[arg(long, value_delimiter = ',', value_parser = parse_replicas)]
    pub replicas: Vec<(Context, usize)>,
    /// Where the SQLite files live (`catalog.db`, `inventory.db`, ...).
    #[arg(long, default_value = "shoplab-micro")]
    pub data_dir: PathBuf,
}

fn parse_replicas(text: &str) -> Result<(Context, usize), String> {
    let (name, count) = text
        .split_once('=')
        .ok_or("expected SERVICE=COUNT, e.g. catalog=2")?;
    if name == "gateway" {
        return Err("the gateway runs once; replicas are for the services behind it".into());
    }
    let context = Context::parse(name).ok_or_else(|| format!("{name:?} is not a service"))?;
    let count: usize = count
        .parse()
        .ok()
        .filter(|count| (1..=16).contains(count))
        .ok_or_else(|| format!("replicas of {name} must be between 1 and 16"))?;
    Ok((context, count))
}

/// Starts the deployment, prints its map, restarts what exits until a signal, then stops
/// every child.
pub(crate) async fn serve(args: MicroArgs) -> anyhow::Result<()> {
    let mut options = options(Build::Micro, args.db, args.data_dir)?;
    options.port = args.port;
    options.admin_port = args.admin_port;
    options.seed = args.seed;
    options.replicas = args.replicas.into_iter().collect::<BTreeMap<_, _>>();
    supervise(options).await
}

/// What every deployment `shoplab serve` starts shares: the supervisor's log, where the
/// data is, the admin and metrics tokens (printed when generated), the token secret and the
/// executable the children run.
pub(crate) fn options(
    build: Build,
    db: Option<String>,
    data_dir: PathBuf,
) -> anyhow::Result<Options> {
    // The supervisor's own log (exits and restarts) in the format its children log in: the
    // same `SHOPLAB_*` settings reach them all.
    let settings =
        api::Settings::load(None, serde_json::Map::new()).context("read the settings")?;
    api::telemetry::init(&settings.log_format);
    let database = match db {
        Some(server)
            if server.starts_with("postgres://") || server.starts_with("postgresql://") =>
        {
            Database::Postgres { server }
        }
        Some(other) => anyhow::bail!(
            "--db takes a PostgreSQL server (postgres://user@host:port), not {other:?}; \
             SQLite files go in --data-dir"
        ),
        None => Database::Sqlite { dir: data_dir },
    };
    // An empty token is no token (the processes would refuse every admin call with it).
    let admin_token = std::env::var("SHOPLAB_ADMIN_TOKEN")
        .ok()
        .filter(|token| !token.is_empty())
        .unwrap_or_else(|| {
            let token = random_secret();
            // Printed, not logged: it is for the person who started the lab.
            println!("admin token (set SHOPLAB_ADMIN_TOKEN to choose one): {token}");
            token
        });
    // Not printed: nobody needs it but the users service and the gateway.
    let token_secret = std::env::var("SHOPLAB_TOKEN_SECRET").unwrap_or_else(|_| random_secret());
    let program = std::env::current_exe().context("find the shoplab executable")?;
    let mut options = Options::new(build, program, database, admin_token, token_secret);
    // One for every process, as the admin token: a scraper holds one credential.
    match std::env::var("SHOPLAB_METRICS_TOKEN") {
        Ok(token) if !token.is_empty() => options.metrics_token = token,
        _ => println!(
            "metrics token (set SHOPLAB_METRICS_TOKEN to choose one): {}",
            options.metrics_token
        ),
    }
    options.stop_deadline = Duration::from_secs(10);
    Ok(options)
}

/// Starts `options`' deployment, prints its map, restarts what exits until a signal, then
/// stops every child.
pub(crate) async fn supervise(options: Options) -> anyhow::Result<()> {
    let build = options.build;

    // One signal future for the whole run: a Ctrl-C that arrives between the end of the
    // start and the wait below must not be lost.
    let shutdown = api::server::shutdown_signal();
    tokio::pin!(shutdown);
    let mut deployment = tokio::select! {
        started = Deployment::start(options) => started?,
        // A Ctrl-C during start drops the half-started deployment, which kills its children.
        _ = &mut shutdown => return Ok(()),
    };
    print!("{}", deployment.map());
    println!(
        "admin API: {} (Authorization: Bearer <admin token>)",
        deployment.admin_url()
    );
    println!("shoplab {build} listening on {}", deployment.url());
    // The restart under way when the signal comes is dropped with the healing: the process
    // being started is killed, and `stop` ends the rest.
    tokio::select! {
        () = &mut shutdown => {}
        _ = deployment.heal_until(std::future::pending()) => {}
    }
    eprintln!("stopping every process (the front first)");
    deployment.stop().await
}

fn random_secret() -> String {
    hex::encode(rand::random::<[u8; 24]>())
}
