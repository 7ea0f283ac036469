//! The faults compose realizes through the engine: a service cut off its project network
//! (`docker network disconnect`) and a container's CPU limit (`docker update --cpus`), with
//! the steps that put each back at heal.

use domain::Context;
use loadtest_results::component::Component;

use super::Compose;
use super::engine::docker;
use crate::Injection;
use crate::sidecars::fault_proxy::NetworkFault;

/// An undo step of the compose platform.
pub(super) enum Restore {
    /// Reconnect the container to the project network under its service's DNS name.
    Reconnect { container: String, alias: String },
    /// Give the container its CPU limit back (in nano-CPUs; 0 = none).
    Cpus { container: String, nano_cpus: u64 },
}

impl Compose {
    /// A network fault between the service and its callers: only a cut is realized here.
    pub(super) async fn disconnect(
        &mut self,
        context: Context,
        fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        if !matches!(fault, NetworkFault::Cut) {
            return Ok(Injection::not_realized(format!(
                "not applicable: {fault} needs a proxy on the link (tc netem is not in this \
                 kernel, and the compose file has none); the local target has them"
            )));
        }
        let network = self.network();
        let mut undo = Vec::new();
        for container in self.of(Component::Service(context)).await? {
            docker(&["network", "disconnect", "--force", &network, &container.id]).await?;
            undo.push(Restore::Reconnect {
                container: container.id.clone(),
                alias: container.service.clone(),
            });
        }
        Ok(Injection::applied(
            format!("docker network disconnect: {context} left {network}"),
            undo,
        ))
    }

    /// Every container of `process` held to `cores` (`docker update --cpus`).
    pub(super) async fn update_cpus(
        &mut self,
        process: Component,
        cores: f64,
    ) -> anyhow::Result<Injection> {
        let mut undo = Vec::new();
        let mut names = Vec::new();
        for container in self.of(process).await? {
            docker(&["update", "--cpus", &cores.to_string(), &container.id]).await?;
            names.push(container.name.clone());
            undo.push(Restore::Cpus {
                container: container.id.clone(),
                nano_cpus: container.nano_cpus,
            });
        }
        Ok(Injection::applied(
            format!("docker update --cpus {cores}: {}", names.join(", ")),
            undo,
        ))
    }

    pub(super) async fn restore_step(&mut self, undo: Restore) -> anyhow::Result<()> {
        match undo {
            Restore::Reconnect { container, alias } => {
                let network = self.network();
                docker(&[
                    "network", "connect", "--alias", &alias, &network, &container,
                ])
                .await
                .map(drop)
            }
            Restore::Cpus {
                container,
                nano_cpus,
            } => {
                let cpus = format!("{}", nano_cpus as f64 / 1e9);
                docker(&["update", "--cpus", &cpus, &container])
                    .await
                    .map(drop)
            }
        }
    }
}
