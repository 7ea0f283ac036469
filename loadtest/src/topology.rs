//! `shoplab serve topology SPEC`: the shop as any grouping of its contexts into processes
//! (`domain::topology`), on this machine, until Ctrl-C or SIGTERM. The two ends are the two
//! builds as `serve monolith`'s process and `serve micro` start them, under the local
//! platform's self-healing; anything between is one `shoplab service <group>` process per
//! group, each over its group's one database, and the gateway in front
//! (`GroupDeployment`), a process that exits started again on its port.

use std::path::PathBuf;

use domain::Topology;
use domain::topology::PRESETS;
use loadtest_platform::local::supervisor::{Build, GroupDeployment};

#[derive(Clone, Debug, clap::Args)]
pub struct TopologyArgs {
    /// A preset (monolith, satellites, browse-buy, coarse, micro) or processes separated
    /// by `,` and the contexts each hosts joined by `+`, e.g.
    /// `catalog+recommendations,inventory,cart+orders+payments,users`.
    #[arg(value_parser = parse_topology)]
    pub topology: Topology,
    /// The public port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The gateway's admin port (0 picks a free one; printed at start).
    #[arg(long, default_value_t = 0)]
    pub admin_port: u16,
    /// PostgreSQL server (`postgres://user@host:port`): one database `shoplab_<process>`
    /// per process, created when missing. Default: one SQLite file per process in --data-dir.
    #[arg(long)]
    pub db: Option<String>,
    /// Wipe and seed every process with this seed (default: seed 42 when the data is fresh).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the SQLite files live (`<process>.db`).
    #[arg(long, default_value = "shoplab-topology")]
    pub data_dir: PathBuf,
}

fn parse_topology(text: &str) -> Result<Topology, String> {
    Topology::parse(text).map_err(|error| error.to_string())
}

/// The presets and why a team would choose each, for `--help`.
pub(crate) fn presets_help() -> String {
    let lines: Vec<String> = PRESETS
        .iter()
        .map(|preset| format!("  {:<11} {}", preset.name, preset.why))
        .collect();
    format!("Presets:\n{}", lines.join("\n"))
}

/// Starts the topology's processes, prints their map, restarts what exits until a signal,
/// then stops them all.
pub(crate) async fn serve(args: TopologyArgs) -> anyhow::Result<()> {
    let topology = args.topology;
    let build = match topology.preset() {
        Some("monolith") => Some(Build::Monolith),
        Some("micro") => Some(Build::Micro),
        _ => None,
    };
    let mut options = crate::micro::options(build.unwrap_or(Build::Micro), args.db, args.data_dir)?;
    options.port = args.port;
    options.admin_port = args.admin_port;
    options.seed = args.seed;
    if build.is_some() {
        return crate::micro::supervise(options).await;
    }
    let shutdown = api::server::shutdown_signal();
    tokio::pin!(shutdown);
    let mut deployment = tokio::select! {
        started = GroupDeployment::start(options, topology.clone()) => started?,
        // A Ctrl-C during start drops the half-started deployment, which kills its children.
        _ = &mut shutdown => return Ok(()),
    };
    print!("{}", deployment.map());
    println!(
        "admin API: {} (Authorization: Bearer <admin token>)",
        deployment.admin_url()
    );
    println!("shoplab {topology} listening on {}", deployment.url());
    // A process that exits is started again on its port, as `serve micro` restarts its
    // services; the restart under way when the signal comes is dropped with the healing.
    tokio::select! {
        () = &mut shutdown => {}
        _ = deployment.heal_until(std::future::pending()) => {}
    }
    eprintln!("stopping every process (gateway first)");
    deployment.stop().await?;
    Ok(())
}
