//! Where a build of the shop runs, as the lab sees it: reset the data, read the audit,
//! switch in-process faults, kill / pause / redeploy / scale a component, break the network
//! or the CPU under it, and what it costs in CPU and memory.
//!
//! The seam is one trait, [`Platform`], with one folder per implementation, registered in
//! [`PLATFORMS`]; the experiments, `compare` and the workshop are written once against
//! [`Target`] (a build on some platform) and never ask which one:
//!
//! - [`local`] — real child processes on loopback, started and restarted by the lab itself
//!   (`supervisor::Deployment`): the lab is the process manager;
//! - [`compose`] — containers of `docker-compose.yml`, deployed, broken and measured through
//!   the Docker engine; the engine's restart policy is the process manager;
//! - [`kubernetes`] — the manifests of `deploy/kubernetes/`, driven through `kubectl`;
//!   Kubernetes is the process manager;
//! - [`swarm`] — a stack rendered from `docker-compose.yml` on a Docker Swarm (by default
//!   one of docker-in-docker nodes the lab makes): Swarm is the process manager and the
//!   scheduler, and nodes can be lost and drained.
//!
//! [`sidecars`] are the lab's own processes beside a build on every platform (the front
//! door, the fault proxy).
//!
//! What a platform cannot do is said, never faked: an operation it has no way to realize
//! answers with an [`Injection`] whose `not_realized` starts "not applicable:" or
//! "unavailable:", and the experiment records that instead of a measurement.

pub mod cgroup;
mod child;
pub mod compose;
mod injection;
pub mod kubernetes;
pub mod local;
mod meter;
pub mod pinning;
mod platform;
pub mod sidecars;
pub mod spread;
pub mod swarm;
mod target;
mod tool;

use futures::future::BoxFuture;
use loadtest_results::component::Build;

use crate::cgroup::ProcessLimits;

/// The longest the lab's HTTP clients keep an idle pooled connection: under every shop
/// server's idle timeout, so a call never rides a connection the server is closing (the
/// shop's own rule, `api::server::CLIENT_POOL_IDLE`, re-exported for the lab's crates that do
/// not link `api`).
pub use api::server::CLIENT_POOL_IDLE;
pub use injection::Injection;
pub use meter::{Meter, Probe, Usage};
pub use platform::{
    Drain, GeneratorJob, GeneratorOutput, NamedProcess, NodeView, Platform, ProcessView, Restart,
};
pub use target::{Target, check_topology, components_of};

/// How the lab starts a build.
#[derive(Clone, Debug)]
pub struct TargetSettings {
    pub program: std::path::PathBuf,
    /// `None`: SQLite files in a fresh temporary folder. `Some`: a PostgreSQL server.
    pub postgres: Option<String>,
    pub seed: u64,
    pub products: u32,
    pub users: u32,
    /// Initial stock of every product; large, so the buy journey never runs out.
    pub stock: i64,
    /// More `SHOPLAB_*` settings for every child.
    pub env: Vec<(String, String)>,
    pub forward_logs: bool,
    /// Per-process limits of the shop's processes (none by default; local target only).
    pub limits: ProcessLimits,
    /// The platform's `--target` name (one of [`crate::PLATFORMS`]).
    pub platform: String,
    /// The compose platform's settings (its flag group; read by the compose platform only).
    pub compose: compose::ComposeSettings,
    /// The Kubernetes platform's settings (its flag group).
    pub kubernetes: kubernetes::KubernetesSettings,
    /// The swarm platform's settings (its flag group, and the compose flags it shares).
    pub swarm: swarm::SwarmSettings,
}

/// Where the builds run, as `compare` and `workshop` both take it: `--target` and every
/// platform's own flag group.
#[derive(Clone, Debug, clap::Args)]
pub struct PlatformArgs {
    /// Where the builds run: `local` (child processes on this machine), `compose` (the
    /// containers of docker-compose.yml on this machine's Docker engine; build the images
    /// first: deploy/docker/build-images.sh), `kubernetes` (deploy/kubernetes/ on the
    /// cluster kubectl points at) or `swarm` (a Docker Swarm the lab makes of
    /// docker-in-docker nodes, or --swarm-manager's; images from deploy/docker/ and
    /// deploy/swarm/build-images.sh).
    #[arg(
        long,
        default_value = "local",
        value_parser = clap::builder::PossibleValuesParser::new(platform_names())
    )]
    pub target: String,
    /// Drive the throughput sweep from this many load generators the platform places, one
    /// per node, their measurements merged: on swarm the tasks of a replicated service (the
    /// image shoplab/shoplab:<tag>, built with SHOPLAB_LAB_IMAGE=1
    /// deploy/docker/build-images.sh), on kubernetes the pods of an Indexed Job (made from
    /// deploy/kubernetes/load/<build>/job.yaml). 0: the lab's own process is the generator.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub generators: u16,
    #[command(flatten)]
    pub compose: compose::ComposeArgs,
    #[command(flatten)]
    pub kubernetes: kubernetes::KubernetesArgs,
    #[command(flatten)]
    pub swarm: swarm::SwarmArgs,
}

/// Starts a build on one platform and waits until it is ready.
pub type Start =
    for<'a> fn(Build, &'a TargetSettings) -> BoxFuture<'a, anyhow::Result<Box<dyn Platform>>>;

/// Starts a topology between the builds (`domain::topology`) on one platform and waits until
/// it is ready.
pub type StartTopology = for<'a> fn(
    domain::Topology,
    &'a TargetSettings,
) -> BoxFuture<'a, anyhow::Result<Box<dyn Platform>>>;

/// One platform the lab can run a build on, and what `compare` must know of it before it
/// starts anything (so a flag the platform would ignore is refused before any measurement).
pub struct Registration {
    /// The `--target` value.
    pub name: &'static str,
    pub start: Start,
    /// How the platform starts a topology between the two builds; None where it runs the
    /// two builds only (its files describe those two).
    pub start_topology: Option<StartTopology>,
    /// The platform holds each shop process to `--process-cpu` / `--process-memory`.
    pub takes_process_limits: bool,
    /// The platform runs the build against the PostgreSQL server `--db` names.
    pub takes_database_server: bool,
    /// The platform runs on nodes it can lose and drain (the `nodes` experiment).
    pub has_nodes: bool,
    /// The platform places load generators on nodes of their own (`--generators`,
    /// [`Platform::run_generators`]).
    pub places_generators: bool,
    /// The database the platform brings itself, for the results (`None`: SQLite files, or
    /// `--db`'s server).
    pub database: Option<&'static str>,
}

/// Every platform, by `--target` name. Adding one is a folder, a line here and its flag
/// group in `compare`.
pub const PLATFORMS: &[Registration] = &[
    local::REGISTRATION,
    compose::REGISTRATION,
    kubernetes::REGISTRATION,
    swarm::REGISTRATION,
];

/// The registration of the platform called `name`, or an error naming the ones there are.
pub fn registration(name: &str) -> anyhow::Result<&'static Registration> {
    PLATFORMS
        .iter()
        .find(|platform| platform.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = PLATFORMS.iter().map(|platform| platform.name).collect();
            anyhow::anyhow!(
                "no platform called {name:?}; there are {}",
                names.join(", ")
            )
        })
}

/// The `--target` values, for the command line's parser.
pub fn platform_names() -> impl Iterator<Item = &'static str> {
    PLATFORMS.iter().map(|platform| platform.name)
}
