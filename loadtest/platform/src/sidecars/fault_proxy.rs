//! Fault proxies: a TCP proxy between the callers and a service, or between a process and its
//! PostgreSQL database, that the lab switches latency, resets, a cut or a bandwidth cap on.
//!
//! The proxy is the `noxious` crate (a Rust port of Toxiproxy) run as a child process of its
//! own — the hidden `shoplab fault-proxy` subcommand — so the CPU it burns is counted with
//! the system under test, never with the load generator. Each proxy prints its control
//! address (`... admin on http://ADDR`) and then the address callers use
//! (`... listening on http://ADDR`), as every child does, and serves a small control API:
//!
//! - `GET /ready` — 200 once it forwards;
//! - `GET /toxics` — the toxics in force (Toxiproxy's JSON: `{"type","name","direction"
//!   (or "stream"),"toxicity","attributes"}`);
//! - `POST /toxics` — adds one (a toxic of the same name is replaced);
//! - `DELETE /toxics` — removes them all (the heal: every open link is closed, see
//!   `remove_all_toxics`); `DELETE /toxics/{name}` — one.
//!
//! A change reaches the connections already open as well as new ones (noxious rebuilds every
//! open link when its toxics change): the services keep their HTTP connections alive, so a
//! fault that only touched new connections would touch almost nothing.
//!
//! noxious 1.0 has no `reset_peer` toxic. A reset is realized with its `timeout` toxic at
//! 1 ms in both directions: every connection, open or new, is closed by the proxy a
//! millisecond after it is (re)linked, with nothing passed through — to the caller the peer
//! hung up before it answered. A cut is the `timeout` toxic at 0 ms in both directions:
//! connections are accepted and nothing ever answers (a blackhole), until the heal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use domain::Context;
use loadtest_results::component::Component;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner as _, Toxics};
use noxious::signal::{Close, Stop};
use noxious::state::SharedProxyInfo;
use noxious::toxic::{
    StreamDirection, Toxic, ToxicEvent, ToxicEventKind, ToxicEventResult, ToxicKind,
};

/// A connection the lab can break: the callers of a service, or a process and its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    /// Every caller (the gateway, orders) -> every replica of this context's service.
    /// Microservices only: the monolith's contexts call each other in-process.
    Service(Context),
    /// This process -> its PostgreSQL database: `Component::Service(context)` (all replicas
    /// share the service's database) or `Component::Monolith` (the one database).
    Database(Component),
}

/// What a proxy does to the bytes that cross it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkFault {
    /// Every answer is held this long before it is passed on.
    Latency { ms: u64 },
    /// Every connection, open or new, is closed before anything passes.
    Reset,
    /// Connections are accepted and nothing passes either way: a blackhole.
    Cut,
    /// Answers flow at most this many KiB per second.
    Bandwidth { kib_per_sec: u64 },
    /// Every connection is closed once this many answer bytes have passed on it.
    Truncate { bytes: u64 },
}

impl NetworkFault {
    /// The noxious toxics that realize this fault.
    pub(crate) fn toxics(self) -> Vec<Toxic> {
        let toxic = |name: &str, kind, direction| Toxic {
            kind,
            name: name.to_owned(),
            toxicity: 1.0,
            direction,
        };
        let both = |name: &str, kind: ToxicKind| {
            vec![
                toxic(&format!("{name}_upstream"), kind, StreamDirection::Upstream),
                toxic(
                    &format!("{name}_downstream"),
                    kind,
                    StreamDirection::Downstream,
                ),
            ]
        };
        match self {
            NetworkFault::Latency { ms } => vec![toxic(
                "latency",
                ToxicKind::Latency {
                    latency: ms,
                    jitter: 0,
                },
                StreamDirection::Downstream,
            )],
            NetworkFault::Reset => both("reset", ToxicKind::Timeout { timeout: 1 }),
            NetworkFault::Cut => both("cut", ToxicKind::Timeout { timeout: 0 }),
            NetworkFault::Bandwidth { kib_per_sec } => vec![toxic(
                "bandwidth",
                ToxicKind::Bandwidth { rate: kib_per_sec },
                StreamDirection::Downstream,
            )],
            NetworkFault::Truncate { bytes } => vec![toxic(
                "truncate",
                ToxicKind::LimitData { bytes },
                StreamDirection::Downstream,
            )],
        }
    }
}

impl std::fmt::Display for NetworkFault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkFault::Latency { ms } => write!(formatter, "latency {ms} ms on every answer"),
            NetworkFault::Reset => formatter.write_str("reset: every connection closed at once"),
            NetworkFault::Cut => formatter.write_str("cut: connections accepted, nothing passes"),
            NetworkFault::Bandwidth { kib_per_sec } => {
                write!(formatter, "bandwidth {kib_per_sec} KiB/s on answers")
            }
            NetworkFault::Truncate { bytes } => {
                write!(
                    formatter,
                    "truncate: connections closed after {bytes} answer bytes"
                )
            }
        }
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Service(context) => write!(formatter, "callers -> {context}"),
            Link::Database(component) => write!(formatter, "{component} -> database"),
        }
    }
}

/// `shoplab fault-proxy` (hidden): one noxious proxy and its control API.
#[derive(Debug, clap::Args)]
pub struct FaultProxyArgs {
    /// Names the proxy in logs (`proxy:catalog#1`, `proxy:monolith-db`).
    #[arg(long)]
    name: String,
    /// Where it forwards to: `HOST:PORT`.
    #[arg(long)]
    upstream: String,
    /// The port callers connect to (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The port of the control API (0 = any free port).
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
}

/// Runs one proxy until SIGTERM/SIGINT.
pub async fn run(args: FaultProxyArgs) -> anyhow::Result<()> {
    crate::child::die_with_supervisor()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();

    // noxious binds the address it is given and does not say which port it got, so a free
    // port is found first. Nothing else on this machine is told about it meanwhile, and the
    // listening socket is bound again at once (with SO_REUSEADDR, as tokio binds).
    let listen = std::net::TcpListener::bind(("127.0.0.1", args.port))
        .and_then(|listener| listener.local_addr())
        .with_context(|| format!("find a port for {}", args.name))?;
    let config = ProxyConfig {
        name: args.name.clone(),
        listen: listen.to_string(),
        upstream: args.upstream.clone(),
        enabled: true,
        rand_seed: None,
    };
    let runner = Runner::start(&config)
        .await
        .with_context(|| format!("listen on {listen}"))?;

    let control = tokio::net::TcpListener::bind(("127.0.0.1", args.admin_port))
        .await
        .context("bind the control port")?;
    let control_address = control.local_addr()?;
    let state = Arc::new(ControlState {
        name: args.name.clone(),
        config,
        runner: tokio::sync::Mutex::new(Some(runner)),
    });
    let router = Router::new()
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/toxics",
            get(list_toxics).post(add_toxic).delete(remove_all_toxics),
        )
        .route("/toxics/{name}", delete(remove_toxic))
        .with_state(state.clone());
    // The supervisor reads these two lines, the control address first.
    println!(
        "shoplab fault-proxy {} admin on http://{control_address}",
        args.name
    );
    println!(
        "shoplab fault-proxy {} listening on http://{listen}",
        args.name
    );
    api::server::serve(
        control,
        router,
        api::server::shutdown_signal(),
        api::server::Limits {
            drain: Duration::from_secs(1),
            ..api::server::Limits::default()
        },
    )
    .await?;
    if let Some(runner) = state.runner.lock().await.take() {
        runner.stop().await;
    }
    Ok(())
}

/// One noxious proxy runner: its listener, its links, its toxics.
struct Runner {
    info: SharedProxyInfo,
    events: bmrng::RequestSender<ToxicEvent, ToxicEventResult>,
    stopper: noxious::signal::Stopper,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Runner {
    /// Binds `config.listen` and forwards to `config.upstream`, with no toxics.
    async fn start(config: &ProxyConfig) -> std::io::Result<Runner> {
        let (listener, info): (noxious::socket::TcpListener, _) =
            ProxyRunner::initialize_proxy(config.clone(), Toxics::empty()).await?;
        let (events, receiver) = bmrng::channel(16);
        let (stop, stopper) = Stop::new();
        let (_closed, closer) = Close::new();
        let task = tokio::spawn(ProxyRunner::run_proxy(
            listener,
            info.clone(),
            receiver,
            stop,
            closer,
        ));
        Ok(Runner {
            info,
            events,
            stopper,
            task,
        })
    }

    /// Stops accepting and ends every link (the stop reaches each link's own signal), which
    /// closes both sides of every proxied connection.
    async fn stop(self) {
        self.stopper.stop();
        let _ = self.task.await;
    }
}

struct ControlState {
    name: String,
    config: ProxyConfig,
    /// `None` only while a heal replaces it.
    runner: tokio::sync::Mutex<Option<Runner>>,
}

type Answer<T> = Result<T, (StatusCode, String)>;

impl ControlState {
    async fn toxics(&self) -> Vec<Toxic> {
        match self.runner.lock().await.as_ref() {
            Some(runner) => runner.info.state.lock().toxics.clone().into_vec(),
            None => Vec::new(),
        }
    }

    /// Hands one change to the proxy's runner, which applies it to every open link.
    async fn send(&self, kind: ToxicEventKind) -> Answer<()> {
        let event = ToxicEvent::new(self.name.clone(), kind);
        let events = match self.runner.lock().await.as_ref() {
            Some(runner) => runner.events.clone(),
            None => return Err((StatusCode::SERVICE_UNAVAILABLE, "healing".to_owned())),
        };
        match events.send_receive(event).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err((StatusCode::NOT_FOUND, error.to_string())),
            Err(error) => Err((StatusCode::SERVICE_UNAVAILABLE, error.to_string())),
        }
    }
}

async fn list_toxics(State(state): State<Arc<ControlState>>) -> Json<Vec<Toxic>> {
    Json(state.toxics().await)
}

async fn add_toxic(
    State(state): State<Arc<ControlState>>,
    Json(mut toxic): Json<Toxic>,
) -> Answer<Json<Toxic>> {
    toxic.set_default_name();
    if state
        .toxics()
        .await
        .iter()
        .any(|old| old.name == toxic.name)
    {
        state
            .send(ToxicEventKind::RemoveToxic(toxic.name.clone()))
            .await?;
    }
    state.send(ToxicEventKind::AddToxic(toxic.clone())).await?;
    Ok(Json(toxic))
}

async fn remove_toxic(
    State(state): State<Arc<ControlState>>,
    Path(name): Path<String>,
) -> Answer<StatusCode> {
    state.send(ToxicEventKind::RemoveToxic(name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The heal: a fresh runner on the same port, with no toxics, in place of the old one,
/// whose every link is closed.
///
/// Why not remove the toxics one by one: noxious 1.0.4 rebuilds the open links from a
/// snapshot of its client map, and a connection accepted while a change is applied can miss
/// it and keep the old toxics for good. Seen under load in CI, even after a second pass over
/// the links: after a latency fault was healed, the gateway kept using such a connection and
/// every page stayed slow. Closing the links is what a healed network partition often does
/// anyway; callers reconnect on a clean link (idempotent calls are retried by their hop).
/// Between the old listener's close and the new one's bind, a connection is refused.
async fn remove_all_toxics(State(state): State<Arc<ControlState>>) -> Answer<StatusCode> {
    let mut runner = state.runner.lock().await;
    let had_toxics = runner.as_ref().is_some_and(|runner| {
        !runner
            .info
            .state
            .lock()
            .toxics
            .clone()
            .into_vec()
            .is_empty()
    });
    if !had_toxics {
        return Ok(StatusCode::NO_CONTENT);
    }
    if let Some(old) = runner.take() {
        old.stop().await;
    }
    let fresh = Runner::start(&state.config).await.map_err(|error| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("bind {} again: {error}", state.config.listen),
        )
    })?;
    *runner = Some(fresh);
    Ok(StatusCode::NO_CONTENT)
}
