//! The `kubernetes` platform: the manifests of `deploy/kubernetes/` on the cluster `kubectl`
//! points at, driven through `kubectl` (rollout restart, delete pod, scale).

use std::time::Instant;

use super::{Restart, TargetSettings};
use crate::supervisor::{Build, Component};

/// How the lab reaches a cluster.
#[derive(Clone, Debug, Default)]
pub struct KubernetesSettings {
    /// The `kubectl` to run (default: `kubectl` on PATH).
    pub kubectl: Option<std::path::PathBuf>,
}

pub struct Kubernetes {
    url: String,
    admin_url: String,
    admin_token: String,
}

impl Kubernetes {
    pub(super) async fn start(
        build: Build,
        settings: &TargetSettings,
    ) -> anyhow::Result<Kubernetes> {
        let _ = (build, &settings.kubernetes);
        anyhow::bail!("the kubernetes target is being built")
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn admin_url(&self) -> &str {
        &self.admin_url
    }

    pub(super) fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub(super) async fn wait_all_ready(&mut self) -> anyhow::Result<()> {
        anyhow::bail!("the kubernetes target is being built")
    }

    pub(super) async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        anyhow::bail!("kill {component}: the kubernetes target is being built")
    }

    pub(super) async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        anyhow::bail!("pause {component} {paused}: the kubernetes target is being built")
    }

    pub(super) async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        anyhow::bail!("recreate {component}: the kubernetes target is being built")
    }

    pub(super) async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        anyhow::bail!("roll {component}: the kubernetes target is being built")
    }

    pub(super) async fn roll_bad_release(
        &mut self,
        component: Component,
    ) -> anyhow::Result<String> {
        anyhow::bail!("roll a bad release of {component}: the kubernetes target is being built")
    }

    pub(super) async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        anyhow::bail!("scale {component}: the kubernetes target is being built")
    }

    pub(super) async fn watch_restarts_until(&mut self, until: Instant) -> Vec<Restart> {
        tokio::time::sleep_until(until.into()).await;
        Vec::new()
    }

    pub(super) async fn stop(self) -> anyhow::Result<()> {
        Ok(())
    }
}
