//! A topology between the two builds (`domain::topology`, e.g. `browse-buy`) as a platform
//! on this machine: [`GroupDeployment`]'s group processes and gateway, with what the
//! throughput, deploy and fault experiments ask of a target — the gateway's URL, reset and
//! audit over its admin port, every process's CPU and memory, kill, pause, recreate and roll,
//! self-healing, stop.
//!
//! A component names a process as on the monolith, where every context is the one process:
//! `Service(context)` is the process of the group hosting `context`, so killing `payments`
//! on `cart+orders+payments` kills that whole group's process, and rolling it rolls that
//! process. The deploy experiment deploys each group once (by its first context), not the
//! gateway: no front door runs in front of it here (the public URL is the gateway's, the one
//! the throughput sweep uses on every build, `direct_url`), so it could only be recreated.
//! Not realized, with the reason: a replica (the scale experiment, which `compare` refuses
//! on such a topology before anything starts), fault proxies and CPU quotas.

use std::time::Instant;

use async_trait::async_trait;

use anyhow::Context as _;
use domain::Topology;

use domain::faults::{Fault, Layer};
use nix::sys::signal::Signal;

use crate::local::supervisor::{Build, Component, GroupDeployment, Options};
use crate::{NamedProcess, Platform, Probe, ProcessView, Restart, TargetSettings};

pub(crate) struct Groups {
    deployment: GroupDeployment,
    data: super::RunData,
}

impl Groups {
    pub(crate) async fn start(
        topology: Topology,
        settings: &TargetSettings,
    ) -> anyhow::Result<Groups> {
        let (database, data) = super::data(&topology.to_string(), settings).await?;
        // The build only picks defaults Options has for both; a group deployment reads the
        // topology, not the build.
        let mut options = Options::new(
            Build::Micro,
            settings.program.clone(),
            database,
            hex::encode(rand::random::<[u8; 16]>()),
            hex::encode(rand::random::<[u8; 24]>()),
        );
        options.env = settings.env.clone();
        options.forward_logs = settings.forward_logs;
        options.limits = settings.limits;
        options.stop_deadline = std::time::Duration::from_secs(5);
        let deployment = GroupDeployment::start(options, topology.clone())
            .await
            .with_context(|| format!("start the topology {topology}"))?;
        Ok(Groups { deployment, data })
    }

    fn not_realized(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "not applicable: {what} on the topology {}: the lab runs one process per group \
             of contexts here, without replicas, fault proxies or quotas",
            self.deployment.topology()
        )
    }

    /// The process a component names: the group's hosting the context, or the gateway.
    fn process_of(&self, component: Component) -> anyhow::Result<String> {
        match component {
            Component::Service(context) => Ok(self.deployment.process_hosting(context)),
            Component::Gateway => Ok("gateway".to_owned()),
            // The monolith names every context's process on that build; here there are several.
            Component::Monolith | Component::FrontDoor => Err(anyhow::anyhow!(
                "the topology {} has no {component} process",
                self.deployment.topology()
            )),
        }
    }
}

#[async_trait]
impl Platform for Groups {
    fn name(&self) -> &'static str {
        "local"
    }

    /// Every topology with a gateway in front is recorded as the micro build, its spec
    /// beside it (`Outcome::topology`).
    fn build(&self) -> Build {
        Build::Micro
    }

    fn url(&self) -> &str {
        self.deployment.url()
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

    /// One per group, named by the first context it hosts (its process is the one every
    /// context of the group names); not the gateway, which is not rolled here.
    fn components(&self) -> Vec<Component> {
        self.deployment
            .groups_by_context()
            .into_iter()
            .map(Component::Service)
            .collect()
    }

    /// The group's name for a context's component (`checkout` for `payments` on `coarse`).
    fn process_name(&self, component: Component) -> String {
        self.process_of(component)
            .unwrap_or_else(|_| component.to_string())
    }

    /// A group process is no component; [`Platform::named_probes`] names it.
    async fn processes(&self) -> Vec<ProcessView> {
        Vec::new()
    }

    /// Each group process and the gateway, under its name, for a page to draw.
    async fn named_processes(&self) -> Vec<NamedProcess> {
        self.deployment
            .processes()
            .into_iter()
            .map(|(name, pid, url)| NamedProcess {
                name,
                replica: 1,
                url,
                pid: Some(pid),
                running: None,
            })
            .collect()
    }

    async fn named_probes(&self) -> Vec<(String, Probe)> {
        self.deployment
            .pids()
            .into_iter()
            .map(|(name, pid)| (name, Probe::Pid(pid)))
            .collect()
    }

    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.deployment
            .heal_until(tokio::time::sleep_until(until.into()))
            .await
    }

    async fn restore(&mut self) -> anyhow::Result<usize> {
        self.deployment.restart_exited().await
    }

    async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        let name = self.process_of(component)?;
        self.deployment.kill(&name).await
    }

    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        let name = self.process_of(component)?;
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        self.deployment.signal(&name, signal)
    }

    async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        let name = self.process_of(component)?;
        self.deployment.restart(&name).await
    }

    async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        let name = self.process_of(component)?;
        self.deployment.roll(&name).await
    }

    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        let name = self.process_of(component)?;
        self.deployment.roll_bad_release(&name).await
    }

    async fn add_replica(&mut self, _component: Component) -> anyhow::Result<usize> {
        Err(self.not_realized("adding a replica"))
    }

    fn adds_replicas(&self) -> Result<(), String> {
        Err(self.not_realized("adding a replica").to_string())
    }

    /// Each exited group process by the component that names it (its first context), the
    /// gateway as itself.
    fn exited(&mut self) -> Vec<(Component, usize)> {
        let exited = self.deployment.exited();
        let topology = self.deployment.topology();
        exited
            .into_iter()
            .filter_map(|name| {
                if name == "gateway" {
                    return Some(Component::Gateway);
                }
                topology
                    .groups()
                    .iter()
                    .find(|group| group.name() == name)
                    .and_then(|group| group.contexts().first())
                    .map(|context| Component::Service(*context))
            })
            .map(|component| (component, 1))
            .collect()
    }

    /// Starts an exited group process (or the gateway) again on its port.
    async fn restart(&mut self, component: Component, _replica: usize) -> anyhow::Result<()> {
        let name = self.process_of(component)?;
        self.deployment.restart(&name).await
    }

    /// The process and in-process kinds, as everywhere; not the network and resource kinds,
    /// whose proxies and cgroups the lab keys by component.
    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault.spec().layer {
            Layer::Process | Layer::InProcess => Ok(()),
            layer => Err(format!(
                "not applicable: {} ({} faults) on the topology {}: the lab puts no fault \
                 proxies or CPU limits on a group's process yet",
                fault.name(),
                layer.as_str(),
                self.deployment.topology()
            )),
        }
    }

    /// The lab is the process manager here, as for the two builds on this machine.
    fn lab_restarts_processes(&self) -> bool {
        true
    }

    fn deploy_pace(&self) -> u32 {
        1
    }

    async fn stop(self: Box<Self>) -> anyhow::Result<()> {
        let groups = *self;
        let stopped = groups.deployment.stop().await;
        // Released even when the stop failed: its processes are gone either way.
        let released = groups.data.release().await;
        stopped.and(released)
    }
}
