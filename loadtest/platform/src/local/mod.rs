//! The `local` platform: the build as real child processes on loopback
//! (`supervisor::Deployment`), behind the lab's front door. The lab is the process manager
//! here: it restarts what exits, puts fault proxies on links, and moves processes into
//! cgroups of its own.

pub mod supervisor;
mod topology;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::faults::Fault;
use nix::sys::signal::Signal;

use std::any::Any;
use std::collections::BTreeSet;

use async_trait::async_trait;
use futures::FutureExt as _;

use crate::cgroup::{self, CpuLimit, ProcessLimits};
use crate::local::supervisor::{
    Build, Component, Database, Deployment, Link, NetworkFault, Options, RunClaim, name_safe,
};
use crate::{Injection, Platform, Probe, ProcessView, Registration, Restart, TargetSettings};

/// The `local` platform's entry in [`crate::PLATFORMS`].
pub(crate) const REGISTRATION: Registration = Registration {
    name: "local",
    start: |build, settings| {
        async move { Ok(Box::new(Local::start(build, settings).await?) as Box<dyn Platform>) }
            .boxed()
    },
    start_topology: Some(|topology, settings| {
        async move {
            Ok(Box::new(topology::Groups::start(topology, settings).await?) as Box<dyn Platform>)
        }
        .boxed()
    }),
    takes_process_limits: true,
    takes_database_server: true,
    has_nodes: false,
    places_generators: false,
    database: None,
};

/// One thing to put back at heal.
enum Undo {
    /// Remove the toxics of a fault proxy.
    Link(Link),
    /// Let the proxy in front of this process's database pass connections again.
    Database(Component),
    /// Lift a cgroup CPU quota and move the process back.
    Cgroup(CpuLimit),
    /// Put back the per-process CPU quota every shop process had before (`None`: none).
    Quota(Option<f64>),
}

/// The databases of one run of `label` (a build or a topology): on PostgreSQL, the run's
/// own ([`Database::of_run`]), claimed; otherwise SQLite files in a temporary folder.
async fn data(label: &str, settings: &TargetSettings) -> anyhow::Result<(Database, RunData)> {
    Ok(match &settings.postgres {
        Some(server) => {
            let database = Database::of_run(server, label);
            let claim = database
                .claim()
                .await?
                .expect("a run's own databases are claimed");
            (database, RunData::Claim(claim))
        }
        None => {
            let data = tempfile::Builder::new()
                .prefix(&format!("shoplab-{}-", name_safe(label)))
                .tempdir()
                .context("create a data folder")?;
            let database = Database::Sqlite {
                dir: data.path().to_owned(),
            };
            (database, RunData::Folder(data))
        }
    })
}

/// What keeps a run's data for as long as the run lives, and gives it back after.
pub(crate) enum RunData {
    /// SQLite files, in a folder removed when this is dropped if not before.
    Folder(tempfile::TempDir),
    /// The run's own databases on a PostgreSQL server.
    Claim(RunClaim),
}

impl RunData {
    /// Once the run's processes are gone: removes its folder, or drops its databases.
    pub(crate) async fn release(self) -> anyhow::Result<()> {
        match self {
            RunData::Folder(folder) => folder.close().context("remove the data folder"),
            RunData::Claim(claim) => claim.release().await,
        }
    }
}

pub struct Local {
    deployment: Deployment,
    data: RunData,
}

impl Local {
    async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Local> {
        let (database, data) = data(build.as_str(), settings).await?;
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let token_secret = hex::encode(rand::random::<[u8; 24]>());
        let mut options = Options::new(
            build,
            settings.program.clone(),
            database,
            admin_token,
            token_secret,
        );
        options.env = settings.env.clone();
        // Both builds behind the same front door, so either can be rolled or scaled out.
        options.front_door = true;
        options.forward_logs = settings.forward_logs;
        options.limits = settings.limits;
        options.stop_deadline = Duration::from_secs(5);
        let deployment = Deployment::start(options)
            .await
            .with_context(|| format!("start the {build} build"))?;
        Ok(Local { deployment, data })
    }

    /// Every process of the system under test right now, fault proxies included (their CPU
    /// is the shop's, not the generator's).
    fn process_probes(&self) -> Vec<(Component, Probe)> {
        let mut probes: Vec<(Component, Probe)> = self
            .deployment
            .members()
            .iter()
            .map(|member| (member.component(), Probe::Pid(member.pid())))
            .collect();
        probes.extend(
            self.deployment
                .proxy_pids()
                .into_iter()
                .map(|pid| (Component::FrontDoor, Probe::Pid(pid))),
        );
        probes
    }

    fn front_door_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        let null_base = self
            .deployment
            .member(Component::FrontDoor, 1)?
            .admin_url()
            .context("the front door has a control port")?
            .to_owned();
        let catalog = match self.deployment.build() {
            Build::Monolith => None,
            Build::Micro => Some(
                self.deployment
                    .member(Component::Service(Context::Catalog), 1)?
                    .url()
                    .to_owned(),
            ),
        };
        Ok((null_base, catalog))
    }

    /// Any process that exits before `until` is started again under the supervisor's
    /// restart policy (`supervisor::RestartPolicy`, the one `shoplab serve micro` uses too).
    async fn heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.deployment
            .heal_until(tokio::time::sleep_until(until.into()))
            .await
    }

    /// Starts again whatever has exited; returns how many.
    async fn restart_exited(&mut self) -> anyhow::Result<usize> {
        let gone = self.deployment.exited();
        for (component, replica) in &gone {
            self.deployment.restart(*component, *replica).await?;
        }
        Ok(gone.len())
    }

    fn freeze(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        self.deployment.signal(component, 1, signal)
    }

    fn running_components(&self) -> Vec<Component> {
        let mut components: Vec<Component> = self
            .deployment
            .members()
            .iter()
            .map(|member| member.component())
            .filter(|component| *component != Component::FrontDoor)
            .collect();
        components.dedup();
        components
    }

    /// The fault proxy in front of every replica of the context gets the fault.
    async fn break_link(
        &mut self,
        context: Context,
        fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        let link = Link::Service(context);
        self.deployment.break_link(link, fault).await?;
        Ok(Injection::applied(
            format!("fault proxy on {link}: {fault}"),
            vec![Undo::Link(link)],
        ))
    }

    async fn cut_database(&mut self, process: Component) -> anyhow::Result<Injection> {
        if !self.deployment.database().is_postgres() {
            return Ok(Injection::not_realized(
                "unavailable: SQLite is embedded in the process; there is no connection to a \
                 database server to cut (run with --db postgres://...)",
            ));
        }
        self.deployment.database_down(process, true).await?;
        let whose = match process {
            Component::Monolith => "the monolith's one database (every context's data)".to_owned(),
            other => format!("{other}'s own database"),
        };
        Ok(Injection::applied(
            format!(
                "fault proxy on {}: {whose} drops every connection",
                Link::Database(process)
            ),
            vec![Undo::Database(process)],
        ))
    }

    /// Every shop process, and every one started from now on, under a CPU quota of its own.
    fn quota_all(&mut self, cores: f64) -> Injection {
        let asked = ProcessLimits {
            cpu_cores: Some(cores),
            memory_mib: None,
        };
        if let Err(why) = cgroup::check_available(&asked) {
            return Injection::not_realized(format!("unavailable: {why:#}"));
        }
        let previous = self.deployment.cpu_quota();
        match self.deployment.set_cpu_quota(Some(cores)) {
            Ok(in_force) => Injection::applied(
                format!(
                    "{} CPU quota of {cores:.2} cores on every shop process, replicas started \
                     later too: {}",
                    cgroup::Version::detect().as_str(),
                    in_force.join("; ")
                ),
                vec![Undo::Quota(previous)],
            ),
            Err(error) => {
                // Nothing half-done stays in force.
                let _ = self.deployment.set_cpu_quota(previous);
                Injection::not_realized(format!("unavailable: {error:#}"))
            }
        }
    }

    /// Every replica of `process` under a cgroup CPU quota.
    fn quota(&mut self, process: Component, cores: f64) -> Injection {
        let pids: Vec<u32> = self
            .deployment
            .members()
            .iter()
            .filter(|member| member.component() == process)
            .map(|member| member.pid())
            .collect();
        let mut limits: Vec<CpuLimit> = Vec::new();
        for pid in pids {
            match cgroup::limit_cpu(pid, cores) {
                Ok(limit) => limits.push(limit),
                // Nothing half-done stays in force: the limits already set are lifted on drop.
                Err(error) => return Injection::not_realized(format!("unavailable: {error:#}")),
            }
        }
        let described: Vec<String> = limits.iter().map(CpuLimit::describe).collect();
        Injection::applied(
            format!(
                "{} CPU limit: {}",
                cgroup::Version::detect().as_str(),
                described.join("; ")
            ),
            limits.into_iter().map(Undo::Cgroup).collect(),
        )
    }
}

#[async_trait]
impl Platform for Local {
    fn name(&self) -> &'static str {
        REGISTRATION.name
    }

    fn build(&self) -> Build {
        self.deployment.build()
    }

    fn url(&self) -> &str {
        self.deployment.url()
    }

    fn direct_url(&self) -> &str {
        self.deployment.direct_url()
    }

    fn admin_url(&self) -> &str {
        self.deployment.admin_url()
    }

    fn admin_token(&self) -> &str {
        self.deployment.admin_token()
    }

    fn metrics_token(&self) -> &str {
        self.deployment.metrics_token()
    }

    fn components(&self) -> Vec<Component> {
        self.running_components()
    }

    async fn processes(&self) -> Vec<ProcessView> {
        self.deployment
            .members()
            .iter()
            .map(|member| ProcessView {
                component: member.component(),
                replica: member.replica(),
                url: member.url().to_owned(),
                pid: Some(member.pid()),
                running: None,
                cpu_quota_cores: member.cpu_quota(),
            })
            .collect()
    }

    async fn probes(&self) -> Vec<(Component, Probe)> {
        self.process_probes()
    }

    async fn front_door_control_url(&self) -> Option<String> {
        self.front_door_urls().ok().map(|(control, _)| control)
    }

    async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        self.front_door_urls()
    }

    fn calibration_service_token(&self) -> Option<String> {
        self.deployment.service_keys().calibration_token()
    }

    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.heal_until(until).await
    }

    async fn restore(&mut self) -> anyhow::Result<usize> {
        self.restart_exited().await
    }

    async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.kill(component, 1).await
    }

    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        self.freeze(component, paused)
    }

    async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.restart(component, 1).await
    }

    async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.roll(component, 1).await
    }

    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        self.deployment.roll_bad_release(component, 1).await
    }

    async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        self.deployment.add_replica(component).await
    }

    async fn prepare_network_faults(
        &mut self,
        services: &BTreeSet<Context>,
        databases: &BTreeSet<Context>,
    ) -> anyhow::Result<()> {
        self.deployment.insert_proxies(services, databases).await
    }

    fn has_database_server(&self) -> bool {
        self.deployment.database().is_postgres()
    }

    async fn break_calls(
        &mut self,
        context: Context,
        fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        self.break_link(context, fault).await
    }

    async fn database_down(&mut self, process: Component) -> anyhow::Result<Injection> {
        self.cut_database(process).await
    }

    async fn limit_cpu(&mut self, process: Component, cores: f64) -> anyhow::Result<Injection> {
        Ok(self.quota(process, cores))
    }

    async fn quota_every_process(&mut self, cores: f64) -> anyhow::Result<Injection> {
        Ok(self.quota_all(cores))
    }

    async fn undo(&mut self, step: Box<dyn Any + Send>) -> anyhow::Result<()> {
        let step = step
            .downcast::<Undo>()
            .map_err(|_| anyhow::anyhow!("an undo step of another platform"))?;
        match *step {
            Undo::Link(link) => self.deployment.heal_link(link).await,
            Undo::Database(process) => self.deployment.database_down(process, false).await,
            Undo::Cgroup(limit) => limit.lift(),
            Undo::Quota(previous) => self.deployment.set_cpu_quota(previous).map(drop),
        }
    }

    fn exited(&mut self) -> Vec<(Component, usize)> {
        self.deployment.exited()
    }

    async fn restart(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        self.deployment.restart(component, replica).await
    }

    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault {
            Fault::DbDown if !self.has_database_server() => Err(
                "unavailable: SQLite is embedded in the process; there is no connection to a \
                 database server to cut (run with --db postgres://...)"
                    .into(),
            ),
            // Every other kind: the lab's own proxies, signals and cgroups.
            _ => Ok(()),
        }
    }

    fn lab_restarts_processes(&self) -> bool {
        true
    }

    fn deploy_pace(&self) -> u32 {
        1
    }

    async fn stop(self: Box<Self>) -> anyhow::Result<()> {
        let local = *self;
        let stopped = local.deployment.stop().await;
        // Released even when the stop failed: its processes are gone either way.
        let released = local.data.release().await;
        stopped.and(released)
    }
}
