//! `shoplab workshop`: the lab as a live page for a room. It starts the chosen topologies
//! (the two builds by default, or any grouping of the contexts, `--topologies`) as real
//! processes (the lab's [`Target`]), drives them with the journeys on demand, and serves one
//! page plus a small JSON API on 127.0.0.1: the processes as boxes coloured by health, each
//! naming the contexts it hosts, per-journey charts updated every second over server-sent
//! events, the controls (load, kill, pause, faults, network cuts, deploys, scaling, heal, a
//! topology picker) and the invariant checker. docs/workshop.md documents the API and the
//! exercises.
//!
//! - [`state`] — what the workshop holds: the targets, the event log, the series;
//! - [`identity`] — what runs in one slot: its topology and what it realizes;
//! - [`picker`] — the topology picker: one running topology stopped, the chosen one started;
//! - [`sampler`] — once a second: drain the journeys' records into per-second points,
//!   poll every process (health, CPU, RSS), publish a tick; and the self-healing loop;
//! - [`load`] — one Goose attack in the background, started, resized and stopped;
//! - [`actions`] — what a control does to a build;
//! - [`api`] — the HTTP face: the page, its assets, the JSON API, the event stream.

mod actions;
mod api;
mod error;
mod guard;
mod identity;
mod load;
mod picker;
mod sampler;
mod state;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use domain::Topology;
use loadtest_platform::{PlatformArgs, Target, TargetSettings};
use loadtest_results::component::Build;

pub(crate) use state::Workshop;

/// Which builds a workshop runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    Monolith,
    Micro,
    Both,
}

impl Arch {
    fn builds(self) -> Vec<Build> {
        match self {
            Arch::Monolith => vec![Build::Monolith],
            Arch::Micro => vec![Build::Micro],
            Arch::Both => Build::BOTH.to_vec(),
        }
    }
}

/// The topologies `--topologies` names, in its order (`domain::topology::parse_list`).
#[derive(Clone, Debug)]
pub struct Topologies(pub Vec<Topology>);

fn parse_topologies(text: &str) -> Result<Topologies, String> {
    domain::topology::parse_list(text).map(Topologies)
}

/// `shoplab workshop` flags.
#[derive(Clone, Debug, clap::Args)]
pub struct WorkshopArgs {
    /// Which build(s) to start: side by side on the same charts with `both`.
    #[arg(
        long,
        value_enum,
        default_value = "both",
        conflicts_with = "topologies"
    )]
    pub arch: Arch,
    /// The topologies to run side by side instead of --arch's builds, comma-separated, as
    /// `compare --topologies` takes them: presets (monolith, satellites, browse-buy, coarse,
    /// micro) or specs naming all seven contexts, such as
    /// `catalog+recommendations,inventory,cart+orders+payments,users`. The page's picker
    /// changes them while the workshop runs. Between the two builds, on --target local only.
    #[arg(long, value_name = "TOPOLOGY", value_parser = parse_topologies)]
    pub topologies: Option<Topologies>,
    /// The page's port (0 = any free port; the address is printed either way).
    #[arg(long, default_value_t = 8088)]
    pub port: u16,
    /// The page's address. Loopback by default: the page can kill processes, so it is
    /// offered to the network only when asked.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Seed of the shop's data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How long one start of the load may run at most before it stops by itself, in
    /// seconds: a forgotten load must not run all night.
    #[arg(long, default_value_t = 900)]
    pub load_limit_s: u64,
    /// How long a dead process stays dead before the self-healing loop restarts it, in
    /// milliseconds. Long enough for the room to see the box turn red; 0 restarts at once.
    #[arg(long, default_value_t = 5_000)]
    pub restart_delay_ms: u64,
    /// Forward the shop processes' logs to this terminal.
    #[arg(long)]
    pub logs: bool,
    /// Where the builds run (`--target`, default local): on a platform that restarts what
    /// exits itself the self-healing controls are greyed out, and so is every control it does
    /// not realize, with the reason.
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// Runs the workshop until Ctrl-C or SIGTERM; stops the load and every process on the way
/// out.
pub async fn run(args: WorkshopArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.platform.generators == 0,
        "--generators drives compare's throughput sweep; the workshop's load comes from its \
         own process"
    );
    let settings = TargetSettings {
        program: std::env::current_exe().context("find the shoplab executable")?,
        postgres: None,
        seed: args.seed,
        // Smaller than the lab's 1000 products and 100 users: a reset (the checker's "start
        // again") then takes a moment, and the shapes the exercises show are the same.
        products: 200,
        users: 50,
        stock: 1_000_000,
        env: Vec::new(),
        forward_logs: args.logs,
        limits: Default::default(),
        platform: args.platform.target.clone(),
        // The containers get every core: the workshop pins nothing (the room's load
        // generator and the shop share the machine, as the page says).
        compose: args.platform.compose.settings(Vec::new()),
        kubernetes: args.platform.kubernetes.settings(),
        swarm: args.platform.swarm.settings(&args.platform.compose, 0),
    };
    let topologies: Vec<Topology> = match &args.topologies {
        Some(topologies) => topologies.0.clone(),
        None => args
            .arch
            .builds()
            .into_iter()
            .map(Build::topology)
            .collect(),
    };
    // Every topology is checked against the platform before the first process starts.
    let registration = loadtest_platform::registration(&settings.platform)?;
    for topology in &topologies {
        loadtest_platform::check_topology(registration, topology)?;
    }
    let mut targets = Vec::new();
    for topology in &topologies {
        eprintln!("starting the topology {topology} ...");
        let target = Target::start_topology(topology, &settings).await?;
        targets.push(target);
    }
    let workshop = Workshop::new(targets, settings, &args).await?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port))
        .await
        .with_context(|| format!("bind the workshop page to {}:{}", args.bind, args.port))?;
    let address = listener.local_addr()?;
    // The line tests and scripts wait for; keep its shape.
    println!("workshop: http://{address}/");
    for (name, url) in workshop.public_urls() {
        println!("  {name}: {url}");
    }
    serve(workshop.clone(), listener, shutdown_signal()).await?;
    eprintln!("stopping the load and every process ...");
    let _ = load::stop(&workshop, "the workshop is stopping").await;
    workshop.shut_down().await
}

/// Serves the page and the API on `listener` until `shutdown` resolves, with the sampler
/// and the self-healing loop running beside it.
async fn serve(
    workshop: Arc<Workshop>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sampler = tokio::spawn(sampler::run(workshop.clone()));
    let healer = tokio::spawn(sampler::self_heal(workshop.clone()));
    let stopping = workshop.clone();
    let address = listener
        .local_addr()
        .context("read the workshop page's address")?;
    // The shop's connection limits (the defaults of `api::Settings`): the page is one
    // browser's, but it listens on a port anyone on the host can open.
    let served = ::api::server::serve(
        listener,
        api::router(workshop, address),
        async move {
            shutdown.await;
            // Open event streams would hold the graceful shutdown until the drain
            // deadline: end them.
            stopping.close_streams();
        },
        ::api::server::Limits::default(),
    )
    .await
    .context("serve the workshop page");
    // Aborted and awaited, so neither holds the workshop any more when it is taken apart.
    sampler.abort();
    healer.abort();
    let _ = sampler.await;
    let _ = healer.await;
    served
}

/// Ctrl-C or SIGTERM. Goose installs its own Ctrl-C handler with the first attack, which
/// then only stops that attack; SIGTERM (and a second Ctrl-C, which Goose turns into an
/// exit) still end the workshop, and the children die with it (`PR_SET_PDEATHSIG`).
async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

/// How often the page gets a tick.
const TICK: Duration = Duration::from_secs(1);
