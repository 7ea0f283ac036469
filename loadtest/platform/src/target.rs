//! A build on a platform, as the experiments, `compare` and the workshop drive it: what every
//! platform shares (the admin API over HTTP: reset, audit, in-process faults, quiescence)
//! written once here, and everything else asked of the [`Platform`] it runs on.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::Topology;
use domain::admin::{Audit, ResetSummary};
use domain::faults::{Fault, Layer};
use loadtest_results::component::{Build, Component};
use serde_json::{Value, json};

use crate::Registration;

use crate::TargetSettings;
use crate::cgroup::ProcessLimits;
use crate::injection::Injection;
use crate::meter::Probe;
use crate::platform::{Drain, NamedProcess, NodeView, Platform, ProcessView, Restart};
use crate::sidecars::fault_proxy::NetworkFault;
use crate::spread::SpreadSource;

/// One running build, or a topology between the builds.
pub struct Target {
    /// Monolith for one process; micro for the microservices and for any topology with a
    /// gateway in front ([`Target::topology`] says which).
    pub build: Build,
    topology: Topology,
    platform: Box<dyn Platform>,
    limits: ProcessLimits,
    http: reqwest::Client,
}

impl Target {
    /// Starts `build` on the platform the settings name and waits until it is ready.
    pub async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Target> {
        let registration = crate::registration(&settings.platform)?;
        let platform = (registration.start)(build, settings).await?;
        Ok(Target {
            build,
            topology: build.topology(),
            platform,
            limits: settings.limits,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        })
    }

    /// Starts any topology on the platform the settings name: the monolith and the
    /// microservices as their builds (with everything the platform realizes for them), a
    /// topology between them where the platform can run one ([`check_topology`] first).
    pub async fn start_topology(
        topology: &Topology,
        settings: &TargetSettings,
    ) -> anyhow::Result<Target> {
        if let Some(build) = Build::of_topology(topology) {
            return Target::start(build, settings).await;
        }
        let registration = crate::registration(&settings.platform)?;
        check_topology(registration, topology)?;
        let start = registration
            .start_topology
            .expect("check_topology refuses a platform without start_topology");
        let platform = start(topology.clone(), settings).await?;
        Ok(Target {
            build: platform.build(),
            topology: topology.clone(),
            platform,
            limits: settings.limits,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        })
    }

    /// The topology it runs: the build's own preset for the two builds.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The topology's preset name or spec, as the results record it.
    pub fn topology_name(&self) -> String {
        self.topology.to_string()
    }

    /// The platform's `--target` name.
    pub fn platform_name(&self) -> &'static str {
        self.platform.name()
    }

    /// Capability: the lab restarts what exits (see [`Platform::lab_restarts_processes`]).
    pub fn lab_restarts_processes(&self) -> bool {
        self.platform.lab_restarts_processes()
    }

    /// Capability: whether a replica can be added here, or why not.
    pub fn adds_replicas(&self) -> Result<(), String> {
        self.platform.adds_replicas()
    }

    /// Capability: how much slower than a local restart a deploy is here.
    pub fn deploy_pace(&self) -> u32 {
        self.platform.deploy_pace()
    }

    /// The per-process limits every shop process is held to (local platform).
    pub fn limits(&self) -> &ProcessLimits {
        &self.limits
    }

    /// The public URL: the front door's.
    pub fn url(&self) -> &str {
        self.platform.url()
    }

    /// The monolith's or the gateway's own URL, past the front door (the throughput sweep
    /// measures the builds without the front door's hop).
    pub fn direct_url(&self) -> &str {
        self.platform.direct_url()
    }

    pub fn admin_url(&self) -> &str {
        self.platform.admin_url()
    }

    pub fn admin_token(&self) -> &str {
        self.platform.admin_token()
    }

    /// What the lab's scrapes of `/metrics` send: the read-only metrics token where the
    /// platform has one ([`Platform::metrics_token`]).
    pub fn metrics_token(&self) -> &str {
        self.platform.metrics_token()
    }

    /// Processes that exited and wait for the lab to restart them (local platform).
    pub fn exited(&mut self) -> Vec<(Component, usize)> {
        self.platform.exited()
    }

    /// Starts an exited process again (where the lab is the process manager).
    pub async fn restart(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        self.platform.restart(component, replica).await
    }

    /// Every running process of the build.
    pub async fn processes(&self) -> Vec<ProcessView> {
        self.platform.processes().await
    }

    /// Every running process under its name, group processes of a topology between the
    /// builds too ([`Platform::named_processes`]).
    pub async fn named_processes(&self) -> Vec<NamedProcess> {
        self.platform.named_processes().await
    }

    /// The `/metrics` URL of every shop process the lab can reach, a group's of a topology
    /// between the builds too (none on a swarm, whose tasks sit on an overlay out of this
    /// machine's reach). It answers [`Target::metrics_token`]. The lab's front door is left
    /// out: its public port forwards every path, `/metrics` included, to a backend, so its
    /// URL would count the gateway's hops a second time.
    pub async fn metrics_urls(&self) -> Vec<String> {
        self.named_processes()
            .await
            .into_iter()
            .filter(|process| !process.url.is_empty())
            .filter(|process| process.name != Component::FrontDoor.as_str())
            .map(|process| format!("{}/metrics", process.url))
            .collect()
    }

    /// What to read each process of the system under test by (its CPU and memory), fault
    /// proxies and the front door included where the lab runs them on the shop's cores.
    pub async fn probes(&self) -> Vec<(Component, Probe)> {
        self.platform.probes().await
    }

    /// [`Target::probes`] under the names the results record each process by (a group
    /// process of a topology by its group's name).
    pub async fn named_probes(&self) -> Vec<(String, Probe)> {
        self.platform.named_probes().await
    }

    /// The base URL of the front door's null endpoint (`GET /null`), and the catalog
    /// service's own URL where the lab can reach it, for the calibration; an error saying
    /// why where the platform has nothing fair to calibrate against.
    pub async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        self.platform.calibration_urls().await
    }

    /// The service token for the calibration's direct call to the catalog service (in
    /// [`domain::trust::TOKEN_HEADER`]), where the platform holds the deployment's keys.
    pub fn calibration_service_token(&self) -> Option<String> {
        self.platform.calibration_service_token()
    }

    /// Where `component`'s requests per replica are counted ([`crate::spread`]): the gateway
    /// for a service of the micro build, the lab's front door for the public process. None
    /// where neither counts them (no front door on this platform).
    pub async fn spread_source(&self, component: Component) -> Option<SpreadSource> {
        match component {
            Component::Service(_) => {
                SpreadSource::gateway(self.url(), self.metrics_token(), component).ok()
            }
            Component::Monolith | Component::Gateway => self
                .platform
                .front_door_control_url()
                .await
                .map(|control| SpreadSource::front_door(&control)),
            Component::FrontDoor => None,
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

    /// Waits until no reservation is held, no order is pending (a saga left to its recovery
    /// loop) and no confirmed order owes its stock commit: nothing is in flight any more. Gives up (and says so) after
    /// `deadline`.
    pub async fn quiesce(&self, deadline: Duration) -> anyhow::Result<(Audit, bool)> {
        let until = Instant::now() + deadline;
        loop {
            let audit = self.audit().await?;
            let held =
                audit.reservations.iter().any(|reservation| {
                    reservation.state == domain::inventory::ReservationState::Held
                }) || audit.orders.iter().any(|order| {
                    // A confirmed order whose stock commit is owed still holds its
                    // reservation, so the held test above already waits for it; said
                    // here too, since it is a saga that has not finished.
                    order.status == domain::orders::OrderStatus::Pending
                        || order.stock_commit_pending
                });
            if !held || Instant::now() >= until {
                return Ok((audit, !held));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Self-healing until `until`: a process that exits is started again, by the lab
    /// (local) or by the platform's own restart policy, which the lab watches. Returns each
    /// restart with how long the process was gone.
    pub async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.platform.self_heal_until(until).await
    }

    /// After a heal: every process is back and ready (restarted by the lab, or waited for
    /// while the platform restarts it). Returns how many had to come back.
    pub async fn restore(&mut self) -> anyhow::Result<usize> {
        self.platform.restore().await
    }

    /// The nodes the build runs on (empty off a cluster).
    pub async fn nodes(&self) -> Vec<NodeView> {
        self.platform.nodes().await
    }

    /// A node dies; returns once every replica runs elsewhere.
    pub async fn lose_node(&mut self, node: &str) -> anyhow::Result<()> {
        self.platform.lose_node(node).await
    }

    /// A node drained for maintenance; returns once its tasks run elsewhere.
    pub async fn drain_node(&mut self, node: &str, drain: Drain) -> anyhow::Result<()> {
        self.platform.drain_node(node, drain).await
    }

    /// A lost or drained node back in service.
    pub async fn return_node(&mut self, node: &str) -> anyhow::Result<()> {
        self.platform.return_node(node).await
    }

    /// The platform beyond its name, for the environment stamp.
    pub fn describe(&self) -> Option<String> {
        self.platform.describe()
    }

    /// `kill -9` a component (its first replica), as a crash would.
    pub async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.platform.kill(component).await
    }

    /// SIGSTOP / SIGCONT (`docker pause` / `unpause` on compose).
    pub async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        self.platform.pause(component, paused).await
    }

    /// Recreate deploy: stop the running process (SIGTERM, drain), start a new one in its
    /// place, wait for `/ready`.
    pub async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.platform.recreate(component).await
    }

    /// Rolling deploy: start the new process, wait until it is ready, move traffic to it,
    /// drain and stop the old one.
    pub async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.platform.roll(component).await
    }

    /// A rolling deploy of a release that never gets ready; the old process must keep
    /// serving. Returns why the new one failed.
    pub async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        self.platform.roll_bad_release(component).await
    }

    /// One more replica of `component`, ready and receiving traffic; returns how many run.
    pub async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        self.platform.add_replica(component).await
    }

    /// The components a deploy or fault can target in this build (not the front door).
    pub fn components(&self) -> Vec<Component> {
        self.platform.components()
    }

    /// The name the results give the process `component` names (a group's name on a
    /// topology between the builds).
    pub fn process_name(&self, component: Component) -> String {
        self.platform.process_name(component)
    }

    /// Puts what the network faults of a run need in place before the load starts (on the
    /// local platform: fault proxies in front of these services and databases).
    pub async fn place_proxies(
        &mut self,
        services: &BTreeSet<Context>,
        databases: &BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        self.platform
            .prepare_network_faults(services, databases)
            .await
    }

    /// Whether the build's data lives in a database server (which can be cut off).
    pub fn is_postgres(&self) -> bool {
        self.platform.has_database_server()
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
        self.platform.break_calls(context, fault).await
    }

    /// The database holding the process's data drops every connection.
    pub async fn database_down(&mut self, process: Component) -> anyhow::Result<Injection> {
        self.platform.database_down(process).await
    }

    /// Every replica of `process` held to `cores` of CPU.
    pub async fn limit_cpu(&mut self, process: Component, cores: f64) -> anyhow::Result<Injection> {
        self.platform.limit_cpu(process, cores).await
    }

    /// Every shop process held to `cores` of CPU each, the ones started later too, until
    /// the injection is lifted ([`Platform::quota_every_process`]); `not_realized` says why
    /// where the platform cannot.
    pub async fn quota_every_process(&mut self, cores: f64) -> anyhow::Result<Injection> {
        self.platform.quota_every_process(cores).await
    }

    /// Injects one fault of the catalogue (`domain::faults`) into `context`: into the
    /// process that runs it (kill, pause, CPU limit; the whole monolith on that build), into
    /// its code (the in-process kinds, through the admin API), onto the link from its callers
    /// (the network kinds) or its database (`db_down`). The one place a catalogue kind meets
    /// a platform operation; a kind the platform cannot realize comes back `not_realized`.
    pub async fn inject(&mut self, context: Context, fault: Fault) -> anyhow::Result<Injection> {
        if let Err(why) = self.realizes(fault) {
            return Ok(Injection::not_realized(why));
        }
        let process = self.build.process_of(context);
        match fault {
            Fault::Kill => self.kill(process).await.map(|()| Injection::default()),
            Fault::Pause => self
                .pause(process, true)
                .await
                .map(|()| Injection::default()),
            Fault::Latency { .. } | Fault::Errors { .. } | Fault::Hang | Fault::Abort => self
                .fault(context, fault.name(), fault.params())
                .await
                .map(|()| Injection::default()),
            Fault::CpuHog { .. } | Fault::Leak { .. } => {
                self.fault(context, fault.name(), fault.params()).await?;
                // What the hog or the leak ran into decides what it did: say it.
                Ok(Injection::noted(format!(
                    "{} {}; limits in force: {}",
                    fault.name(),
                    fault.params(),
                    self.limits.describe()
                )))
            }
            Fault::NetLatency { ms } => {
                self.break_calls(context, NetworkFault::Latency { ms })
                    .await
            }
            Fault::NetReset => self.break_calls(context, NetworkFault::Reset).await,
            Fault::NetCut => self.break_calls(context, NetworkFault::Cut).await,
            Fault::NetBandwidth { kib_per_sec } => {
                self.break_calls(context, NetworkFault::Bandwidth { kib_per_sec })
                    .await
            }
            Fault::NetTruncate { bytes } => {
                self.break_calls(context, NetworkFault::Truncate { bytes })
                    .await
            }
            Fault::DbDown => self.database_down(process).await,
            Fault::CpuLimit { cores } => self.limit_cpu(process, cores).await,
        }
    }

    /// Whether `fault` can be injected into this build on this platform, and why not: the
    /// build's own limits (the monolith has no network between contexts), then the
    /// platform's.
    pub fn realizes(&self, fault: Fault) -> Result<(), String> {
        if self.build == Build::Monolith && fault.spec().layer == Layer::Network {
            return Err(
                "not applicable: the monolith's contexts call each other in-process; there is \
                 no network between them to break"
                    .into(),
            );
        }
        self.platform.realizes(fault)
    }

    /// Undoes what [`Target::inject`] did for `fault`: thaws a paused process, clears the
    /// in-process faults, and puts back the injection's own steps. A process the fault took
    /// down is not restarted here ([`Target::restore`] does that).
    pub async fn heal(
        &mut self,
        context: Context,
        fault: Fault,
        injection: Injection,
    ) -> anyhow::Result<()> {
        match fault.spec().layer {
            Layer::Process if fault == Fault::Pause => {
                self.pause(self.build.process_of(context), false).await?;
            }
            // A process an abort took down cannot be asked; its restart clears it.
            Layer::InProcess => {
                let _ = self.heal_faults().await;
            }
            _ => {}
        }
        self.lift(injection).await
    }

    /// Puts back what an injection changed.
    pub async fn lift(&mut self, injection: Injection) -> anyhow::Result<()> {
        for step in injection.undo {
            self.platform.undo(step).await?;
        }
        Ok(())
    }

    /// `shoplab load` as several generators placed by the platform (see
    /// [`Platform::run_generators`]).
    pub async fn run_generators(
        &mut self,
        job: &crate::GeneratorJob,
    ) -> anyhow::Result<Vec<crate::GeneratorOutput>> {
        self.platform.run_generators(job).await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.platform.stop().await
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

/// Whether `platform` can run `topology`: the two builds run everywhere; a topology between
/// them only where the platform registered a way to start one. Asked before anything starts.
pub fn check_topology(platform: &Registration, topology: &Topology) -> anyhow::Result<()> {
    if Build::of_topology(topology).is_some() || platform.start_topology.is_some() {
        return Ok(());
    }
    let able: Vec<&str> = crate::PLATFORMS
        .iter()
        .filter(|other| other.start_topology.is_some())
        .map(|other| other.name)
        .collect();
    anyhow::bail!(
        "the topology {topology} runs on --target {} only: the {} platform's files describe \
         the monolith and the microservices",
        able.join(", "),
        platform.name
    )
}
