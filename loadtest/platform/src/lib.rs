//! A build of the shop as the experiments see it, wherever it runs: reset the data, read the
//! audit, switch in-process faults, kill / pause / redeploy / scale a component, break the
//! network or the CPU under it, and what it costs in CPU and memory.
//!
//! Three platforms run it, and the experiments are written once against [`Target`]:
//!
//! - [`local`] — real child processes on loopback, started and restarted by the lab itself
//!   (`supervisor::Deployment`): the lab is the process manager;
//! - [`compose`] — containers of `docker-compose.yml`, deployed, broken and measured through
//!   the Docker engine; the engine's restart policy is the process manager;
//! - [`kubernetes`] — the manifests of `deploy/kubernetes/`, driven through `kubectl`;
//!   Kubernetes is the process manager.
//!
//! What a platform cannot do is said, never faked: an operation it has no way to realize
//! answers with an [`Injection`] whose `not_realized` starts "not applicable:" or
//! "unavailable:", and the experiment records that instead of a measurement.

mod child;
pub mod compose;
pub mod kubernetes;
pub mod local;
mod meter;
pub mod sidecars;
mod tool;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::admin::{Audit, ResetSummary};
use serde::Serialize;
use serde_json::{Value, json};

use crate::local::cgroup::{CpuLimit, ProcessLimits};
use crate::local::supervisor::{Build, Component, Deployment, Link, NetworkFault};

pub use meter::{Meter, Probe, Usage};

/// Where the builds run (`compare --target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Child processes on this machine's loopback.
    Local,
    /// Containers of docker-compose.yml on this machine's Docker engine.
    Compose,
    /// The manifests of deploy/kubernetes/ on the cluster kubectl points at.
    Kubernetes,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Local => "local",
            Platform::Compose => "compose",
            Platform::Kubernetes => "kubernetes",
        }
    }
}

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
    pub platform: Platform,
    /// The compose target's settings (used when `platform` is `Compose`).
    pub compose: compose::ComposeSettings,
    /// The Kubernetes target's settings (used when `platform` is `Kubernetes`).
    pub kubernetes: kubernetes::KubernetesSettings,
}

/// One running build.
pub struct Target {
    pub build: Build,
    runtime: Runtime,
    limits: ProcessLimits,
    http: reqwest::Client,
}

/// The platform the build runs on, with what it needs to drive it.
enum Runtime {
    Local(local::Local),
    Compose(compose::Compose),
    Kubernetes(kubernetes::Kubernetes),
}

/// What a fault the platform realizes (a network fault, a database cut, a CPU limit) left in
/// force: what to say about it and how to undo it.
#[derive(Default)]
pub struct Injection {
    /// Why the fault could not be realized on this build, platform or backend ("not
    /// applicable: ...", "unavailable: ..."); nothing is in force then.
    pub not_realized: Option<String>,
    /// What was in force: the proxy's toxics, the CPU quota, the network left.
    pub note: Option<String>,
    undo: Vec<Undo>,
}

impl Injection {
    /// An in-process fault: nothing for the platform to undo, only a note.
    pub fn noted(note: String) -> Injection {
        Injection {
            note: Some(note),
            ..Injection::default()
        }
    }

    fn not_realized(why: impl Into<String>) -> Injection {
        Injection {
            not_realized: Some(why.into()),
            ..Injection::default()
        }
    }

    fn applied(note: String, undo: Vec<Undo>) -> Injection {
        Injection {
            not_realized: None,
            note: Some(note),
            undo,
        }
    }
}

/// One thing to put back at heal.
enum Undo {
    /// Remove the toxics of a fault proxy (local).
    Link(Link),
    /// Let the proxy in front of this process's database pass connections again (local).
    Database(Component),
    /// Lift a cgroup v1 CPU quota and move the process back (local).
    Cgroup(CpuLimit),
    /// Platform-specific undo steps (compose, Kubernetes), run by the platform.
    Platform(PlatformUndo),
}

/// An undo step of the container platforms.
pub(crate) enum PlatformUndo {
    Compose(compose::Restore),
}

impl Target {
    /// Starts `build` on the platform the settings name and waits until it is ready.
    pub async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Target> {
        let runtime = match settings.platform {
            Platform::Local => Runtime::Local(local::Local::start(build, settings).await?),
            Platform::Compose => Runtime::Compose(compose::Compose::start(build, settings).await?),
            Platform::Kubernetes => {
                Runtime::Kubernetes(kubernetes::Kubernetes::start(build, settings).await?)
            }
        };
        Ok(Target {
            build,
            runtime,
            limits: settings.limits,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    pub fn platform(&self) -> Platform {
        match self.runtime {
            Runtime::Local(_) => Platform::Local,
            Runtime::Compose(_) => Platform::Compose,
            Runtime::Kubernetes(_) => Platform::Kubernetes,
        }
    }

    /// The per-process limits every shop process is held to (local target).
    pub fn limits(&self) -> &ProcessLimits {
        &self.limits
    }

    /// The public URL: the front door's.
    pub fn url(&self) -> &str {
        match &self.runtime {
            Runtime::Local(local) => local.deployment.url(),
            Runtime::Compose(compose) => compose.url(),
            Runtime::Kubernetes(kubernetes) => kubernetes.url(),
        }
    }

    /// The monolith's or the gateway's own URL, past the front door (the throughput sweep
    /// measures the builds without the front door's hop).
    pub fn direct_url(&self) -> &str {
        match &self.runtime {
            Runtime::Local(local) => local.deployment.direct_url(),
            Runtime::Compose(compose) => compose.direct_url(),
            Runtime::Kubernetes(kubernetes) => kubernetes.url(),
        }
    }

    pub fn admin_url(&self) -> &str {
        match &self.runtime {
            Runtime::Local(local) => local.deployment.admin_url(),
            Runtime::Compose(compose) => compose.admin_url(),
            Runtime::Kubernetes(kubernetes) => kubernetes.admin_url(),
        }
    }

    pub fn admin_token(&self) -> &str {
        match &self.runtime {
            Runtime::Local(local) => local.deployment.admin_token(),
            Runtime::Compose(compose) => compose.admin_token(),
            Runtime::Kubernetes(kubernetes) => kubernetes.admin_token(),
        }
    }

    /// The local target's processes (`None` on the container platforms).
    pub fn deployment(&mut self) -> Option<&mut Deployment> {
        match &mut self.runtime {
            Runtime::Local(local) => Some(&mut local.deployment),
            _ => None,
        }
    }

    /// What to read each process of the system under test by (its CPU and memory), fault
    /// proxies and the front door included where the lab runs them on the shop's cores.
    pub async fn probes(&self) -> Vec<(Component, Probe)> {
        match &self.runtime {
            Runtime::Local(local) => local.probes(),
            Runtime::Compose(compose) => compose.probes().await,
            Runtime::Kubernetes(_) => Vec::new(),
        }
    }

    /// The base URL of the front door's null endpoint (`GET /null`), and the catalog
    /// service's own URL where the lab can reach it, for the calibration.
    pub async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        match &self.runtime {
            Runtime::Local(local) => local.calibration_urls(),
            Runtime::Compose(compose) => compose.calibration_urls().await,
            Runtime::Kubernetes(_) => {
                anyhow::bail!("the kubernetes target runs no null endpoint to calibrate against")
            }
        }
    }

    /// Wipes and seeds every context; returns how seeded users log in.
    pub async fn reset(&self, settings: &TargetSettings) -> anyhow::Result<ResetSummary> {
        let body = json!({
            "products": settings.products,
            "stock": settings.stock,
            "users": settings.users,
            "seed": settings.seed,
        });
        let answer = self
            .admin(reqwest::Method::POST, "/admin/reset", Some(body))
            .await
            .context("reset the data")?;
        serde_json::from_value(answer).context("read the reset summary")
    }

    pub async fn audit(&self) -> anyhow::Result<Audit> {
        let answer = self
            .admin(reqwest::Method::GET, "/admin/audit", None)
            .await?;
        serde_json::from_value(answer).context("read the audit snapshot")
    }

    /// Switches an in-process fault on for `context` (both builds take the same body).
    pub async fn fault(&self, context: Context, kind: &str, params: Value) -> anyhow::Result<()> {
        let body = json!({ "context": context, "kind": kind, "params": params });
        self.admin(reqwest::Method::POST, "/admin/faults", Some(body))
            .await
            .map(drop)
    }

    /// Clears every in-process fault.
    pub async fn heal_faults(&self) -> anyhow::Result<()> {
        self.admin(reqwest::Method::DELETE, "/admin/faults", None)
            .await
            .map(drop)
    }

    /// Waits until no reservation is held and no order is pending (a saga left to its
    /// recovery loop): nothing is in flight any more. Gives up (and says so) after
    /// `deadline`.
    pub async fn quiesce(&self, deadline: Duration) -> anyhow::Result<(Audit, bool)> {
        let until = Instant::now() + deadline;
        loop {
            let audit = self.audit().await?;
            let held =
                audit.reservations.iter().any(|reservation| {
                    reservation.state == domain::inventory::ReservationState::Held
                }) || audit
                    .orders
                    .iter()
                    .any(|order| order.status == domain::orders::OrderStatus::Pending);
            if !held || Instant::now() >= until {
                return Ok((audit, !held));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Self-healing until `until`: a process that exits is started again, by the lab (local)
    /// or by the platform's own restart policy, which the lab watches. Returns each restart
    /// with how long the process was gone.
    pub async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        match &mut self.runtime {
            Runtime::Local(local) => local.self_heal_until(until).await,
            Runtime::Compose(compose) => compose.watch_restarts_until(until).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.watch_restarts_until(until).await,
        }
    }

    /// After a heal: every process is back and ready (restarted by the lab, or waited for
    /// while the platform restarts it). Returns how many had to come back.
    pub async fn restore(&mut self) -> anyhow::Result<usize> {
        match &mut self.runtime {
            Runtime::Local(local) => local.restart_exited().await,
            Runtime::Compose(compose) => compose.wait_all_healthy().await,
            Runtime::Kubernetes(kubernetes) => kubernetes.wait_all_ready().await.map(|()| 0),
        }
    }

    /// `kill -9` a component (its first replica), as a crash would.
    pub async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.kill(component, 1).await,
            Runtime::Compose(compose) => compose.kill(component).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.kill(component).await,
        }
    }

    /// SIGSTOP / SIGCONT (`docker pause` / `unpause` on compose).
    pub async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        match &mut self.runtime {
            Runtime::Local(local) => local.pause(component, paused),
            Runtime::Compose(compose) => compose.pause(component, paused).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.pause(component, paused).await,
        }
    }

    /// Recreate deploy: stop the running process (SIGTERM, drain), start a new one in its
    /// place, wait for `/ready`.
    pub async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.restart(component, 1).await,
            Runtime::Compose(compose) => compose.recreate(component).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.recreate(component).await,
        }
    }

    /// Rolling deploy: start the new process, wait until it is ready, move traffic to it,
    /// drain and stop the old one.
    pub async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.roll(component, 1).await,
            Runtime::Compose(compose) => compose.roll(component).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.roll(component).await,
        }
    }

    /// A rolling deploy of a release that never gets ready; the old process must keep
    /// serving. Returns why the new one failed.
    pub async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.roll_bad_release(component, 1).await,
            Runtime::Compose(compose) => compose.roll_bad_release(component).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.roll_bad_release(component).await,
        }
    }

    /// One more replica of `component`, ready and receiving traffic; returns how many run.
    pub async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.add_replica(component).await,
            Runtime::Compose(compose) => compose.add_replica(component).await,
            Runtime::Kubernetes(kubernetes) => kubernetes.add_replica(component).await,
        }
    }

    /// The components a deploy or fault can target in this build (not the front door).
    pub fn components(&self) -> Vec<Component> {
        match &self.runtime {
            Runtime::Local(local) => local.components(),
            Runtime::Compose(_) | Runtime::Kubernetes(_) => components_of(self.build),
        }
    }

    /// Puts fault proxies in front of these services and databases before the load starts
    /// (local target; the container platforms break their networks in other ways).
    pub async fn place_proxies(
        &mut self,
        services: &std::collections::BTreeSet<Context>,
        databases: &std::collections::BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.insert_proxies(services, databases).await,
            Runtime::Compose(_) | Runtime::Kubernetes(_) => Ok(()),
        }
    }

    /// Whether the build's data lives in a database server (which can be cut off).
    pub fn is_postgres(&mut self) -> bool {
        match &mut self.runtime {
            Runtime::Local(local) => local.deployment.database().is_postgres(),
            Runtime::Compose(_) | Runtime::Kubernetes(_) => false,
        }
    }

    /// A network fault between `context`'s callers and its service.
    pub async fn break_calls(
        &mut self,
        context: Context,
        fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        if self.build == Build::Monolith {
            return Ok(Injection::not_realized(format!(
                "not applicable: the monolith's contexts call {context} in-process; there is \
                 no network between them to break"
            )));
        }
        match &mut self.runtime {
            Runtime::Local(local) => local.break_calls(context, fault).await,
            Runtime::Compose(compose) => compose.break_calls(context, fault).await,
            Runtime::Kubernetes(_) => Ok(Injection::not_realized(
                "not applicable: the kubernetes target has no network fault (it needs a \
                 network policy controller the lab does not assume)",
            )),
        }
    }

    /// The database holding the process's data drops every connection.
    pub async fn database_down(&mut self, process: Component) -> anyhow::Result<Injection> {
        match &mut self.runtime {
            Runtime::Local(local) => local.database_down(process).await,
            Runtime::Compose(_) | Runtime::Kubernetes(_) => Ok(Injection::not_realized(
                "unavailable: SQLite is embedded in the process; there is no connection to a \
                 database server to cut",
            )),
        }
    }

    /// Every replica of `process` held to `cores` of CPU.
    pub async fn limit_cpu(&mut self, process: Component, cores: f64) -> anyhow::Result<Injection> {
        match &mut self.runtime {
            Runtime::Local(local) => Ok(local.limit_cpu(process, cores)),
            Runtime::Compose(compose) => compose.limit_cpu(process, cores).await,
            Runtime::Kubernetes(_) => Ok(Injection::not_realized(
                "not applicable: a pod's CPU limit changes only by replacing the pod",
            )),
        }
    }

    /// Puts back what an injection changed.
    pub async fn lift(&mut self, injection: Injection) -> anyhow::Result<()> {
        for undo in injection.undo {
            match (undo, &mut self.runtime) {
                (Undo::Link(link), Runtime::Local(local)) => {
                    local.deployment.heal_link(link).await?;
                }
                (Undo::Database(process), Runtime::Local(local)) => {
                    local.deployment.database_down(process, false).await?;
                }
                (Undo::Cgroup(limit), _) => limit.lift()?,
                (Undo::Platform(PlatformUndo::Compose(undo)), Runtime::Compose(compose)) => {
                    compose.undo(undo).await?;
                }
                _ => anyhow::bail!("an undo step of another platform"),
            }
        }
        Ok(())
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        match self.runtime {
            Runtime::Local(local) => local.deployment.stop().await,
            Runtime::Compose(compose) => compose.stop().await,
            Runtime::Kubernetes(kubernetes) => kubernetes.stop().await,
        }
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.admin_url()))
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The components of a build as the container platforms deploy them: the monolith, or every
/// service and the gateway.
pub fn components_of(build: Build) -> Vec<Component> {
    match build {
        Build::Monolith => vec![Component::Monolith],
        Build::Micro => Context::ALL
            .iter()
            .map(|context| Component::Service(*context))
            .chain([Component::Gateway])
            .collect(),
    }
}

/// One self-healing restart.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    pub component: String,
    #[serde(skip)]
    pub at: Instant,
    pub backoff_ms: u64,
    /// From noticing the exit to the new process answering `/ready`.
    pub down_ms: u64,
    pub error: Option<String>,
}
