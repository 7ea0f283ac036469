//! A topology between the two builds (`domain::topology`, e.g. `browse-buy`) as a platform
//! on this machine: [`GroupDeployment`]'s group processes and gateway, with what the
//! throughput experiment asks of a target — the gateway's URL, reset and audit over its
//! admin port, every process's CPU and memory, self-healing, stop.
//!
//! The two ends run as [`super::Local`] (`Target::start_topology` hands them to it), with
//! the front door, deploys, faults and scaling; here the operations that name a process by
//! `Component` (kill, pause, roll, add a replica, proxies, quotas) are not realized, because a
//! group process is no component, and `compare` refuses those experiments on such a topology
//! before anything starts. No front door either: the public URL is the gateway's, the one
//! the throughput sweep uses on every build (`direct_url`).

use std::time::Instant;

use async_trait::async_trait;

use anyhow::Context as _;
use domain::Topology;

use crate::local::supervisor::{Build, Component, GroupDeployment, Options};
use crate::{NamedProcess, Platform, Probe, ProcessView, Restart, TargetSettings};

pub(crate) struct Groups {
    deployment: GroupDeployment,
    /// The SQLite files; removed when the target is dropped.
    _data: Option<tempfile::TempDir>,
}

impl Groups {
    pub(crate) async fn start(
        topology: Topology,
        settings: &TargetSettings,
    ) -> anyhow::Result<Groups> {
        let (database, data) = super::data(&topology.to_string(), settings)?;
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
        Ok(Groups {
            deployment,
            _data: data,
        })
    }

    fn not_realized(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "not applicable: {what} names a process by component, one per context, and the \
             topology {} runs groups of contexts",
            self.deployment.topology()
        )
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

    /// None a deploy or fault could target: see the module's header.
    fn components(&self) -> Vec<Component> {
        Vec::new()
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

    async fn kill(&mut self, _component: Component) -> anyhow::Result<()> {
        Err(self.not_realized("kill"))
    }

    async fn pause(&mut self, _component: Component, _paused: bool) -> anyhow::Result<()> {
        Err(self.not_realized("pause"))
    }

    async fn recreate(&mut self, _component: Component) -> anyhow::Result<()> {
        Err(self.not_realized("recreate"))
    }

    async fn roll(&mut self, _component: Component) -> anyhow::Result<()> {
        Err(self.not_realized("a rolling deploy"))
    }

    async fn roll_bad_release(&mut self, _component: Component) -> anyhow::Result<String> {
        Err(self.not_realized("a bad release"))
    }

    async fn add_replica(&mut self, _component: Component) -> anyhow::Result<usize> {
        Err(self.not_realized("adding a replica"))
    }

    async fn stop(self: Box<Self>) -> anyhow::Result<()> {
        self.deployment.stop().await
    }
}
