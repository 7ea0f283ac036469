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

use crate::lab::cgroup::ProcessLimits;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use domain::Context;
use noxious::proxy::{ProxyConfig, ProxyRunner, Runner as _, Toxics};
use noxious::signal::{Close, Stop};
use noxious::state::SharedProxyInfo;
use noxious::toxic::{
    StreamDirection, Toxic, ToxicEvent, ToxicEventKind, ToxicEventResult, ToxicKind,
};

use super::child::{Launch, Process};
use super::{Component, Database, Deployment, poll_ready};

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
}

impl NetworkFault {
    /// The noxious toxics that realize this fault.
    fn toxics(self) -> Vec<Toxic> {
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

/// One running fault proxy child.
pub(crate) struct FaultProxy {
    pub link: Link,
    /// `HOST:PORT` the callers connect to.
    pub address: String,
    admin_url: String,
    process: Process,
}

impl FaultProxy {
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Deployment {
    /// Switches `fault` on for `link`, replacing whatever fault it had; on every replica's
    /// proxy of a service.
    pub async fn break_link(&mut self, link: Link, fault: NetworkFault) -> anyhow::Result<()> {
        let toxics = fault.toxics();
        let proxies = self.proxies_of(link)?;
        for proxy in proxies {
            clear(&self.http, proxy).await?;
            for toxic in &toxics {
                let url = format!("{}/toxics", proxy.admin_url);
                let response = self.http.post(&url).json(toxic).send().await;
                expect_success(response, &url).await?;
            }
        }
        Ok(())
    }

    /// Lets everything through `link` again.
    pub async fn heal_link(&mut self, link: Link) -> anyhow::Result<()> {
        for proxy in self.proxies_of(link)? {
            clear(&self.http, proxy).await?;
        }
        Ok(())
    }

    /// The database of `component` goes down (`true`: every connection to it is closed at
    /// once, new ones too) or comes back (`false`). A reset rather than a cut: a database
    /// server that is down refuses and drops connections, and the services set no statement
    /// timeout, so a blackhole would hold queries already sent until the heal instead.
    pub async fn database_down(&mut self, component: Component, down: bool) -> anyhow::Result<()> {
        let link = Link::Database(component);
        if down {
            self.break_link(link, NetworkFault::Reset).await
        } else {
            self.heal_link(link).await
        }
    }

    /// Where the data is kept.
    pub fn database(&self) -> &Database {
        &self.options.database
    }

    /// The links that have a proxy, and so can be broken.
    pub fn proxied_links(&self) -> BTreeSet<Link> {
        self.proxies.iter().map(|proxy| proxy.link).collect()
    }

    /// The fault proxies' PIDs: their CPU belongs to the system under test.
    pub fn proxy_pids(&self) -> Vec<u32> {
        self.proxies.iter().map(FaultProxy::pid).collect()
    }

    /// Puts proxies in front of more services and databases of a running deployment, then
    /// restarts whoever must learn the new addresses (on the ports they had, keeping their
    /// data): the processes over a proxied database, orders and the gateway for a proxied
    /// service. Meant for before the load starts; links already proxied are left alone.
    pub async fn insert_proxies(
        &mut self,
        services: &BTreeSet<Context>,
        databases: &BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        let mut restart: Vec<(Component, usize)> = Vec::new();
        let new_databases: BTreeSet<Context> = databases
            .difference(&self.options.proxied_databases)
            .copied()
            .collect();
        if !new_databases.is_empty() {
            self.options.proxied_databases.extend(&new_databases);
            let before = self.proxies.len();
            self.start_database_proxies().await?;
            for proxy in &self.proxies[before..] {
                if let Link::Database(component) = proxy.link {
                    restart.extend(self.replicas_of(component));
                }
            }
        }
        let new_services: BTreeSet<Context> = services
            .difference(&self.options.proxied)
            .copied()
            .collect();
        if self.options.build == super::Build::Micro && !new_services.is_empty() {
            self.options.proxied.extend(&new_services);
            for context in &new_services {
                self.start_service_proxies(*context).await?;
            }
            if new_services
                .iter()
                .any(|context| super::ORDERS_UPSTREAMS.contains(context))
            {
                restart.extend(self.replicas_of(Component::Service(Context::Orders)));
            }
            restart.extend(self.replicas_of(Component::Gateway));
        }
        // The callees first, so a restarted caller finds them ready.
        restart.sort_by_key(|(component, _)| std::cmp::Reverse(component.stop_tier()));
        restart.dedup();
        // A restart works its flags out afresh, so it picks the proxies up.
        for (component, replica) in restart {
            self.restart(component, replica).await?;
        }
        Ok(())
    }

    /// Starts a proxy for each database `options.proxied_databases` asks for that has none
    /// yet (PostgreSQL only: SQLite is a file inside the process).
    pub(super) async fn start_database_proxies(&mut self) -> anyhow::Result<()> {
        if self.options.proxied_databases.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            self.options.database.is_postgres(),
            "a database fault proxy needs PostgreSQL: SQLite is embedded in the process, \
             with no connection to break"
        );
        let components: Vec<Component> = match self.options.build {
            // Every context's data is in the monolith's one database.
            super::Build::Monolith => vec![Component::Monolith],
            super::Build::Micro => self
                .options
                .proxied_databases
                .iter()
                .map(|context| Component::Service(*context))
                .collect(),
        };
        for component in components {
            let link = Link::Database(component);
            if self.proxies.iter().any(|proxy| proxy.link == link) {
                continue;
            }
            let url = database_url_of(&self.options.database, component);
            let (_, server, _) = split_authority(&url)
                .with_context(|| format!("find the server in {}", super::redact(&url)))?;
            let name = format!("proxy:{component}-db");
            let proxy = self.spawn_proxy(link, name, &server).await?;
            self.proxies.push(proxy);
        }
        Ok(())
    }

    /// Starts a proxy in front of every replica of `context`'s service, if it has none yet.
    pub(super) async fn start_service_proxies(&mut self, context: Context) -> anyhow::Result<()> {
        let link = Link::Service(context);
        if self.proxies.iter().any(|proxy| proxy.link == link) {
            return Ok(());
        }
        let replicas: Vec<(usize, String)> = self
            .members
            .iter()
            .filter(|member| member.component == Component::Service(context))
            .map(|member| (member.replica, member.url.clone()))
            .collect();
        for (replica, url) in replicas {
            let upstream = url.trim_start_matches("http://").to_owned();
            let name = format!("proxy:{context}#{replica}");
            let proxy = self.spawn_proxy(link, name, &upstream).await?;
            self.proxies.push(proxy);
        }
        Ok(())
    }

    /// What callers put in `--upstream` for `context`: its proxies when it has them.
    pub(super) fn upstream_urls(&self, context: Context) -> Vec<String> {
        let link = Link::Service(context);
        let proxied: Vec<String> = self
            .proxies
            .iter()
            .filter(|proxy| proxy.link == link)
            .map(|proxy| format!("http://{}", proxy.address))
            .collect();
        if proxied.is_empty() {
            self.urls(context)
        } else {
            proxied
        }
    }

    /// The `--db` URL of `component`: through its proxy when it has one.
    pub(super) fn database_url(&self, component: Component) -> String {
        let url = database_url_of(&self.options.database, component);
        let proxy = self
            .proxies
            .iter()
            .find(|proxy| proxy.link == Link::Database(component));
        match (proxy, split_authority(&url)) {
            (Some(proxy), Some((before, _, after))) => format!("{before}{}{after}", proxy.address),
            _ => url,
        }
    }

    /// Stops every proxy (after the processes that used them).
    pub(super) async fn stop_proxies(&mut self) -> anyhow::Result<()> {
        for proxy in &mut self.proxies {
            proxy.process.request_stop()?;
        }
        let deadline = self.options.stop_deadline;
        let stopping = self
            .proxies
            .iter_mut()
            .map(|proxy| proxy.process.finish_stop(deadline));
        futures::future::try_join_all(stopping).await?;
        Ok(())
    }

    fn replicas_of(&self, component: Component) -> Vec<(Component, usize)> {
        self.members
            .iter()
            .filter(|member| member.component == component)
            .map(|member| (component, member.replica))
            .collect()
    }

    fn proxies_of(&self, link: Link) -> anyhow::Result<Vec<&FaultProxy>> {
        let proxies: Vec<&FaultProxy> = self
            .proxies
            .iter()
            .filter(|proxy| proxy.link == link)
            .collect();
        anyhow::ensure!(
            !proxies.is_empty(),
            "{link} has no fault proxy in this deployment (see Options::proxied)"
        );
        Ok(proxies)
    }

    async fn spawn_proxy(
        &self,
        link: Link,
        name: String,
        upstream: &str,
    ) -> anyhow::Result<FaultProxy> {
        let launch = Launch {
            label: name.clone(),
            program: self.options.program.clone(),
            args: vec![
                "fault-proxy".to_owned(),
                "--name".to_owned(),
                name.clone(),
                "--upstream".to_owned(),
                upstream.to_owned(),
            ],
            // The pinning settings among them: the proxy runs on the system's cores.
            env: self.options.env.clone(),
            forward_logs: self.options.forward_logs,
            // The lab's own part, not the shop's.
            limits: ProcessLimits::default(),
        };
        let deadline = self.options.start_deadline;
        let (mut process, addresses) = Process::spawn(&launch, 0, deadline).await?;
        let admin_url = addresses
            .admin_url
            .with_context(|| format!("{name} printed no control address"))?;
        // The proxy's own `/ready`: the database behind a database proxy speaks no HTTP.
        poll_ready(&self.http, &mut process, &admin_url, deadline)
            .await
            .with_context(|| format!("start {name}"))?;
        Ok(FaultProxy {
            link,
            address: addresses.url.trim_start_matches("http://").to_owned(),
            admin_url,
            process,
        })
    }
}

/// The `--db` URL `component` has without a proxy (the gateway has no database).
fn database_url_of(database: &Database, component: Component) -> String {
    match component {
        Component::Monolith => database.monolith_url(),
        Component::Service(context) => database.url(context),
        Component::Gateway | Component::FrontDoor => String::new(),
    }
}

async fn clear(http: &reqwest::Client, proxy: &FaultProxy) -> anyhow::Result<()> {
    let url = format!("{}/toxics", proxy.admin_url);
    expect_success(http.delete(&url).send().await, &url).await
}

async fn expect_success(
    response: reqwest::Result<reqwest::Response>,
    url: &str,
) -> anyhow::Result<()> {
    let response = response.with_context(|| format!("call {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {text}");
    Ok(())
}

/// `postgres://user:pw@HOST:PORT/db?x` -> (`postgres://user:pw@`, `HOST:PORT`, `/db?x`); the
/// port defaults to PostgreSQL's 5432.
fn split_authority(url: &str) -> Option<(String, String, String)> {
    let authority_start = url.find("://")? + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host = &authority[host_start..];
    if host.is_empty() {
        return None;
    }
    let server = if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    Some((
        url[..authority_start + host_start].to_owned(),
        server,
        rest[authority_end..].to_owned(),
    ))
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
pub(crate) async fn run(args: FaultProxyArgs) -> anyhow::Result<()> {
    crate::service::die_with_supervisor()?;
    crate::lab::pinning::pin_from_env()?;
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
        Duration::from_secs(1),
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

#[cfg(test)]
mod tests {
    use super::split_authority;

    #[test]
    fn the_database_server_is_found_in_a_postgres_url() {
        let split = |url| split_authority(url).expect("an authority");
        assert_eq!(
            split("postgres://postgres@127.0.0.1:5432/shoplab_orders"),
            (
                "postgres://postgres@".to_owned(),
                "127.0.0.1:5432".to_owned(),
                "/shoplab_orders".to_owned()
            )
        );
        assert_eq!(
            split("postgres://u:p@db/x?sslmode=disable"),
            (
                "postgres://u:p@".to_owned(),
                "db:5432".to_owned(),
                "/x?sslmode=disable".to_owned()
            )
        );
    }
}
