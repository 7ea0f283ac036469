//! The seam every platform implements: what the lab asks of the place a build runs.
//!
//! One trait, one implementation per folder (`local/`, `compose/`, `kubernetes/`), and the
//! experiments, `compare` and the workshop written once against it (through [`Target`]),
//! never asking which platform they hold. The required methods are what every platform must
//! do to be measured at all: say where the build answers, deploy it, kill it, watch it heal,
//! stop it. The optional ones (a network fault, a database cut, a CPU quota, the processes'
//! CPU and memory, a null endpoint to calibrate against) have defaults that realize nothing
//! and say why, so a platform that cannot do something records "not applicable: …" in the
//! results instead of a measurement of an undisturbed shop; the capability methods say how
//! the platform behaves where the experiments must plan around it.
//!
//! [`Target`]: crate::Target

use std::any::Any;
use std::collections::BTreeSet;
use std::time::Instant;

use async_trait::async_trait;
use domain::Context;
use domain::faults::{Fault, Layer};
use loadtest_results::component::{Build, Component};
use serde::Serialize;

use crate::injection::Injection;
use crate::meter::Probe;
use crate::sidecars::fault_proxy::NetworkFault;

/// A build running on one platform.
#[async_trait]
pub trait Platform: Send + Sync {
    /// The platform's `--target` name (`local`, `compose`, `kubernetes`).
    fn name(&self) -> &'static str;

    /// The build it runs.
    fn build(&self) -> Build;

    /// The public URL: the lab's front door where the platform has one.
    fn url(&self) -> &str;

    /// The monolith's or the gateway's own URL, past the front door (the throughput sweep
    /// measures the builds without the front door's hop). The public URL by default.
    fn direct_url(&self) -> &str {
        self.url()
    }

    /// The admin API (the monolith's, or the gateway's admin port).
    fn admin_url(&self) -> &str;

    fn admin_token(&self) -> &str;

    /// The token that opens every process's `/metrics` and nothing else, where the platform
    /// gave its processes one; the admin token (which opens `/metrics` too) where it did not.
    fn metrics_token(&self) -> &str {
        self.admin_token()
    }

    /// The components a deploy or fault can target (not the front door).
    fn components(&self) -> Vec<Component> {
        crate::components_of(self.build())
    }

    /// The name the results give the process `component` names: the component's own, or on
    /// a topology between the builds the name of the group hosting its context.
    fn process_name(&self, component: Component) -> String {
        component.to_string()
    }

    /// Every running process of the build as the lab sees it now: the monolith or each
    /// service replica, and the gateway. Empty where the platform shows no processes.
    async fn processes(&self) -> Vec<ProcessView> {
        Vec::new()
    }

    /// What to read each process of the system under test by (CPU and memory). None by
    /// default: the results then say "not measured", never zero.
    async fn probes(&self) -> Vec<(Component, Probe)> {
        Vec::new()
    }

    /// [`Platform::probes`] under the names the results record each process by: the
    /// component's. A platform whose processes are not components (a group of contexts in
    /// a topology between the builds) names them itself.
    async fn named_probes(&self) -> Vec<(String, Probe)> {
        self.probes()
            .await
            .into_iter()
            .map(|(component, probe)| (component.as_str().to_owned(), probe))
            .collect()
    }

    /// [`Platform::processes`] under the names the results record each process by, as
    /// [`Platform::named_probes`] names them: a platform whose processes are not components
    /// (the groups of a topology between the builds) lists them itself, so a page can draw
    /// every process of any topology.
    async fn named_processes(&self) -> Vec<NamedProcess> {
        self.processes()
            .await
            .into_iter()
            .map(|process| NamedProcess {
                name: process.component.as_str().to_owned(),
                replica: process.replica,
                url: process.url,
                pid: process.pid,
                running: process.running,
            })
            .collect()
    }

    /// The front door's null endpoint and the catalog service's own URL, for the
    /// calibration. Refused by default: a platform without the lab's front door on the
    /// shop's cores has nothing fair to calibrate against.
    async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        anyhow::bail!(
            "the {} platform runs no null endpoint on the shop's cores to calibrate against",
            self.name()
        )
    }

    /// The service token the calibration sends with its direct call to the catalog
    /// service, which refuses calls without one (`domain::trust`). The lab generated the
    /// deployment's keys, so it signs as the gateway, whose hop the rung stands for: the
    /// service's rung then pays the same verification the gateway's hop does. None where the
    /// platform holds no keys.
    fn calibration_service_token(&self) -> Option<String> {
        None
    }

    /// The control URL of the lab's front door before the public process, whose `/metrics`
    /// counts the responses of each backend ([`crate::spread`]). None where the lab runs no
    /// front door.
    async fn front_door_control_url(&self) -> Option<String> {
        None
    }

    /// Self-healing until `until`: a process that exits is started again, by the lab or by
    /// the platform's own restart policy, which the lab watches. Each restart with how long
    /// the process was gone. A platform may watch past `until` for a process the lab
    /// killed, so a heal slower than the fault window is still timed; the caller reads the
    /// clock after the return.
    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart>;

    /// After a heal: every process is back and ready. How many had to come back.
    async fn restore(&mut self) -> anyhow::Result<usize>;

    /// `kill -9` a component's first replica, as a crash would.
    async fn kill(&mut self, component: Component) -> anyhow::Result<()>;

    /// Freeze (SIGSTOP, `docker pause`) or thaw a component's processes.
    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()>;

    /// Recreate deploy: stop the running process, start a new one in its place, ready.
    async fn recreate(&mut self, component: Component) -> anyhow::Result<()>;

    /// Rolling deploy: the new process ready, traffic moved to it, the old one drained.
    async fn roll(&mut self, component: Component) -> anyhow::Result<()>;

    /// A rolling deploy of a release that never gets ready; the old process keeps serving.
    /// Why the new one failed.
    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String>;

    /// One more replica of `component`, ready and receiving traffic; how many run now.
    async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize>;

    /// Puts what the network faults of a run need in place before the load starts, so
    /// every window pays the same path. Nothing by default.
    async fn prepare_network_faults(
        &mut self,
        _services: &BTreeSet<Context>,
        _databases: &BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// Whether the build's data lives in a database server the lab can cut off.
    fn has_database_server(&self) -> bool {
        false
    }

    /// A network fault between `context`'s callers and its service (the micro build).
    async fn break_calls(
        &mut self,
        _context: Context,
        _fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(format!(
            "not applicable: the {} platform has no way to break one link between services",
            self.name()
        )))
    }

    /// The database holding `process`'s data drops every connection.
    async fn database_down(&mut self, _process: Component) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(format!(
            "unavailable: the {} platform has no connection to a database server to cut",
            self.name()
        )))
    }

    /// Every replica of `process` held to `cores` of CPU.
    async fn limit_cpu(&mut self, _process: Component, _cores: f64) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(format!(
            "not applicable: the {} platform cannot change a running process's CPU limit",
            self.name()
        )))
    }

    /// Capability: every process of the shop (the monolith, each service replica, the
    /// gateway; not the lab's own front door and proxies) held to `cores` of CPU time each,
    /// the ones started later (a replica, a restart) from their start, until the injection
    /// is lifted. The scale experiment's quota: it makes one process the bottleneck on a
    /// machine whose cores the shop's processes would otherwise share. Not realized by
    /// default, with the reason.
    async fn quota_every_process(&mut self, cores: f64) -> anyhow::Result<Injection> {
        let _ = cores;
        Ok(Injection::not_realized(format!(
            "not applicable: the {} platform cannot hold each of the shop's processes to a \
             CPU quota of the lab's choosing",
            self.name()
        )))
    }

    /// Puts back one step of an injection this platform made. The step is the platform's
    /// own type, boxed so that [`Injection`] stays one type for every platform: only the
    /// platform that made a step ever sees it again, and it downcasts to its own type.
    async fn undo(&mut self, step: Box<dyn Any + Send>) -> anyhow::Result<()> {
        let _ = step;
        anyhow::bail!("the {} platform made no step to undo", self.name())
    }

    /// Processes that have exited and wait for the lab to start them again (where the lab is
    /// the process manager; see [`Platform::lab_restarts_processes`]). Elsewhere the
    /// platform restarts them itself, and none wait.
    fn exited(&mut self) -> Vec<(Component, usize)> {
        Vec::new()
    }

    /// Starts an exited process again, on its old address. Refused where the platform is
    /// its own process manager.
    async fn restart(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: the {} platform restarts {component}#{replica} itself",
            self.name()
        )
    }

    /// The nodes the build runs on, each with the tasks it holds; empty where the platform
    /// runs on this one machine alone.
    async fn nodes(&self) -> Vec<NodeView> {
        Vec::new()
    }

    /// A node dies as a host would: its engine and every task on it at once. Returns once
    /// the platform runs every replica it wants elsewhere.
    async fn lose_node(&mut self, node: &str) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: the {} platform has no node {node} to lose",
            self.name()
        )
    }

    /// Planned maintenance: the platform moves every task off the node. Returns once they
    /// all run elsewhere.
    async fn drain_node(&mut self, node: &str, _drain: Drain) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: the {} platform has no node {node} to drain",
            self.name()
        )
    }

    /// The node back in service after [`Platform::lose_node`] or [`Platform::drain_node`].
    async fn return_node(&mut self, node: &str) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: the {} platform has no node {node}",
            self.name()
        )
    }

    /// What the environment stamp says of the platform beyond its name (the cluster's
    /// size, where its database lives).
    fn describe(&self) -> Option<String> {
        None
    }

    /// Capability: whether this platform realizes `fault` at all, and why not, asked before
    /// anything is tried (the workshop greys a control out with the reason). By default the
    /// process and in-process kinds are realized everywhere (a kill, a pause, the admin API)
    /// and the kinds that need a mechanism of the platform's (network, resource, dependency)
    /// are not.
    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault.spec().layer {
            Layer::Process | Layer::InProcess => Ok(()),
            layer => Err(format!(
                "not applicable: the {} platform has no mechanism for {} ({} faults)",
                self.name(),
                fault.name(),
                layer.as_str()
            )),
        }
    }

    /// Capability: whether [`Platform::add_replica`] can add a replica here; the reason
    /// where it cannot, for a control to be greyed before anyone asks.
    fn adds_replicas(&self) -> Result<(), String> {
        Ok(())
    }

    /// Capability: the lab itself restarts what exits (the local platform). Elsewhere the
    /// platform's restart policy does, and a killed process comes back while the lab
    /// watches.
    fn lab_restarts_processes(&self) -> bool {
        false
    }

    /// Capability: how many times longer than a local process restart a deploy takes here
    /// (an engine call, a container start, a stop grace), for the deploy experiment's load
    /// ceiling. Measured: several seconds per deploy on compose against a fraction of one
    /// locally, hence 12 on the container platforms.
    fn deploy_pace(&self) -> u32 {
        12
    }

    /// Runs `shoplab load` as `job.count` generators the platform places on machines of
    /// its own (one per node), against the build's front from inside the cluster, and
    /// returns what each printed. Where the platform cannot place generators, an error
    /// that says so.
    async fn run_generators(&mut self, job: &GeneratorJob) -> anyhow::Result<Vec<GeneratorOutput>> {
        let _ = job;
        anyhow::bail!(
            "the {} platform cannot place load generators on machines of its own; \
             --generators needs --target swarm",
            self.name()
        )
    }

    /// Stops the build and removes what the lab created for it.
    async fn stop(self: Box<Self>) -> anyhow::Result<()>;
}

/// `shoplab load`, run by the platform as several generators.
#[derive(Clone, Debug)]
pub struct GeneratorJob {
    /// Generators, each told its share as `SHOPLAB_GENERATOR=<k>/<count>` (1-based).
    pub count: usize,
    /// `shoplab load`'s arguments after `load`, without `--base-url` (the platform gives
    /// its front's address inside the cluster) and without `--generator`.
    pub args: Vec<String>,
    /// CPU cores each generator may use (its limit), so its share of them is known.
    pub cpus: f64,
    /// The longest the whole job may take, placement and start included.
    pub deadline: std::time::Duration,
}

/// What one generator printed on stdout, and where it ran.
#[derive(Clone, Debug)]
pub struct GeneratorOutput {
    /// The generator's name: its task or pod, and its node.
    pub generator: String,
    pub stdout: String,
}

/// One process of a running topology under its name ([`Platform::named_processes`]): a
/// component's (`catalog`, `gateway`, `monolith`, `front-door`) or a group's (`core`,
/// `catalog+recommendations`).
#[derive(Clone, Debug)]
pub struct NamedProcess {
    pub name: String,
    /// 1-based.
    pub replica: usize,
    /// Where the lab reaches it (for `/ready`); empty where it cannot.
    pub url: String,
    pub pid: Option<u32>,
    /// The platform's own word on whether it runs, where `url` is empty.
    pub running: Option<bool>,
}

/// One process of a running build, as the platform shows it.
#[derive(Clone, Debug)]
pub struct ProcessView {
    pub component: Component,
    /// 1-based.
    pub replica: usize,
    /// Where the lab reaches it (for `/ready`).
    pub url: String,
    /// Its PID on this machine, where the lab can read its CPU and memory by it.
    pub pid: Option<u32>,
    /// The platform's own word on whether it runs (a swarm task that passed its
    /// healthcheck), where the lab cannot reach the process to ask (`url` empty); `None`:
    /// ask `url`.
    pub running: Option<bool>,
    /// The CPU quota in force on it (cores), read back from its cgroup where the platform
    /// holds it to one of the lab's ([`Platform::quota_every_process`], `--process-cpu`);
    /// `None` where none is, or the platform does not say.
    pub cpu_quota_cores: Option<f64>,
}

/// How a node is drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// The orchestrator's drain as it is: each task on the node stops and is started
    /// elsewhere. A service with one replica there is down between the two.
    Plain,
    /// The maintenance procedure for services without a spare: the node first takes no new
    /// tasks, each service with a task on it gets one more replica elsewhere and the lab waits
    /// until those run, then the node is drained; the extra replicas go when the node
    /// returns. This is what a PodDisruptionBudget asks of Kubernetes users too: a drain
    /// without downtime needs a replica that stays up.
    WithSpares,
}

/// One node of a cluster, as the platform shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub hostname: String,
    /// Runs the cluster's control plane.
    pub manager: bool,
    /// Holds the build's database.
    pub holds_database: bool,
    /// The components with a task on it now (one entry per task).
    pub tasks: Vec<Component>,
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
