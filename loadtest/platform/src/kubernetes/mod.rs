//! The `kubernetes` platform: the manifests of `deploy/kubernetes/` on the cluster `kubectl`
//! points at, driven through `kubectl` (rollout restart, delete pod, scale). Kubernetes is
//! the process manager here: the lab asks it for deploys and faults and watches what it does.
//!
//! How each operation is realized, and why:
//! - start: the Namespace and the Secret `shoplab` (a fresh admin token and token secret)
//!   sent on stdin to `kubectl apply -f -`, so no secret is ever on a command line; then
//!   `kubectl apply -k <manifests>/overlays/<build>` and `rollout status` of every
//!   Deployment. The front (monolith or gateway) is reached through `--kube-url` when given,
//!   or else through `kubectl port-forward service/<front>`, a child the lab kills by PID.
//! - recreate: `scale --replicas=0`, wait until no pod of the Deployment is left, `scale`
//!   back, `rollout status`. That is a true recreate (every old pod gone before a new one
//!   starts), as compose's `--force-recreate` and the local target's restart are; deleting
//!   the pods instead would let the ReplicaSet start the new ones while the old drain.
//! - roll: `rollout restart` + `rollout status --timeout`: the Deployment's own rolling
//!   update (surge one, `maxUnavailable: 0`, readiness on `/ready`, the preStop pause).
//! - bad release: `set env` a setting no process can parse, so every new pod exits at start;
//!   `rollout status` must fail within [`BAD_RELEASE_DEADLINE`]; then `rollout undo` and
//!   `rollout status` again. The old pods were never taken away (`maxUnavailable: 0`).
//! - kill: `delete pod <pod> --grace-period=0 --force`, the first pod of the component:
//!   no drain, as a crash; the ReplicaSet starts a replacement.
//! - pause: not applicable (Kubernetes has no way to freeze a container).
//! - scale: `scale --replicas=N+1` + `rollout status`.
//! - self-healing: the pods' `restartCount` and `Ready` condition, polled.
//!
//! - load generators (`compare --generators N`): one Indexed Job made from the manifests'
//!   load Job, a pod per node (`kubernetes/generators.rs`).
//!
//! `kubectl` itself, the pods as it describes them and the restart watch are in
//! `kubernetes/kubectl.rs`; the port-forward child in `kubernetes/forward.rs`.

mod forward;
mod generators;
mod kubectl;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use async_trait::async_trait;
use domain::faults::{Fault, Layer};
use futures::FutureExt as _;

use crate::{Injection, Platform, Registration, Restart, TargetSettings};
use loadtest_results::component::{Build, Component};

use forward::FORWARD_DEADLINE;
use kubectl::POLL;

pub use forward::PortForward;
pub use kubectl::{
    ContainerStatus, Kubectl, Pod, PodCondition, PodMetadata, PodSpec, PodStatus, watch_restarts,
};

/// How `--target kubernetes` reaches the cluster (deploy/kubernetes/README.md).
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Kubernetes target")]
pub struct KubernetesArgs {
    /// The kubectl to run (default: kubectl on PATH).
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// The namespace the overlays deploy into (the one their kustomizations name).
    #[arg(long, default_value = "shoplab", value_name = "NAME")]
    pub kube_namespace: String,
    /// The folder holding overlays/monolith and overlays/micro.
    #[arg(long, default_value = "deploy/kubernetes", value_name = "DIR")]
    pub kube_manifests: PathBuf,
    /// The front's public URL (Ingress, LoadBalancer, NodePort); default: kubectl port-forward.
    #[arg(long, value_name = "URL")]
    pub kube_url: Option<String>,
    /// The gateway's admin URL when --kube-url is given (micro build).
    #[arg(long, value_name = "URL")]
    pub kube_admin_url: Option<String>,
    /// How long one rollout may take.
    #[arg(long, default_value_t = 180, value_name = "SECS")]
    pub kube_rollout_timeout: u64,
}

impl KubernetesArgs {
    /// The Kubernetes platform's settings from its flags.
    pub fn settings(&self) -> KubernetesSettings {
        KubernetesSettings {
            kubectl: self.kubectl.clone(),
            namespace: self.kube_namespace.clone(),
            manifests: self.kube_manifests.clone(),
            url: self.kube_url.clone(),
            admin_url: self.kube_admin_url.clone(),
            rollout_timeout: Duration::from_secs(self.kube_rollout_timeout),
        }
    }
}

/// How the lab reaches a cluster (`compare --target kubernetes`).
#[derive(Clone, Debug)]
pub struct KubernetesSettings {
    /// The `kubectl` to run (default: `kubectl` on PATH).
    pub kubectl: Option<PathBuf>,
    /// The namespace the overlays deploy into; it must be the one their kustomizations name
    /// (`shoplab`), since `kubectl` refuses an object whose namespace differs from the flag.
    pub namespace: String,
    /// The folder holding `overlays/monolith` and `overlays/micro`.
    pub manifests: PathBuf,
    /// The front's public URL (an Ingress, a LoadBalancer, a NodePort) when the lab can
    /// reach it; without it the lab runs `kubectl port-forward` to the front's Service.
    pub url: Option<String>,
    /// The gateway's admin URL (micro build) when `url` is given; the monolith serves its
    /// admin API on its public port.
    pub admin_url: Option<String>,
    /// How long one rollout may take (`rollout status --timeout`).
    pub rollout_timeout: Duration,
}

impl Default for KubernetesSettings {
    fn default() -> KubernetesSettings {
        KubernetesSettings {
            kubectl: None,
            namespace: "shoplab".to_owned(),
            manifests: PathBuf::from("deploy/kubernetes"),
            url: None,
            admin_url: None,
            rollout_timeout: Duration::from_secs(180),
        }
    }
}

/// The `kubernetes` platform's entry in [`crate::PLATFORMS`]. Limits, databases and
/// restart policies come from the manifests.
pub(crate) const REGISTRATION: Registration = Registration {
    name: "kubernetes",
    start: |build, settings| {
        async move { Ok(Box::new(Kubernetes::start(build, settings).await?) as Box<dyn Platform>) }
            .boxed()
    },
    start_topology: None,
    takes_process_limits: false,
    takes_database_server: false,
    has_nodes: false,
    places_generators: true,
    database: None,
};

/// One build running on a cluster.
pub struct Kubernetes {
    build: Build,
    kubectl: Kubectl,
    overlay: PathBuf,
    /// The manifests' load Job for this build, the generators' template.
    load_job: PathBuf,
    rollout_timeout: Duration,
    url: String,
    admin_url: String,
    admin_token: String,
    /// Opens every pod's `/metrics` and nothing else.
    metrics_token: String,
    /// `None` when the front is reached at a URL the user gave.
    forward: Option<PortForward>,
    http: reqwest::Client,
}

/// How long the lab waits for a release that will never be ready before it rolls it back.
const BAD_RELEASE_DEADLINE: Duration = Duration::from_secs(20);

impl Kubernetes {
    async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Kubernetes> {
        let kube = &settings.kubernetes;
        let kubectl = Kubectl::new(
            kube.kubectl
                .clone()
                .unwrap_or_else(|| PathBuf::from("kubectl")),
            &kube.namespace,
        );
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let metrics_token = hex::encode(rand::random::<[u8; 16]>());
        let token_secret = hex::encode(rand::random::<[u8; 24]>());
        // A key pair per process, made for this deployment (`domain::trust`).
        let service_keys = domain::trust::Keyring::generate();
        kubectl
            .apply_secret(&admin_token, &metrics_token, &token_secret, &service_keys)
            .await?;
        let overlay = kube.manifests.join("overlays").join(build.as_str());
        kubectl.apply_overlay(&overlay).await?;
        for component in super::components_of(build) {
            kubectl
                .rollout_status(component.as_str(), kube.rollout_timeout)
                .await?;
        }
        let front = front_of(build);
        let (url, admin_url, forward) = match &kube.url {
            Some(url) => {
                let url = url.trim_end_matches('/').to_owned();
                let admin_url = match build {
                    Build::Monolith => url.clone(),
                    Build::Micro => kube
                        .admin_url
                        .clone()
                        .context("--kube-url needs --kube-admin-url for the micro build")?,
                };
                (url, admin_url, None)
            }
            None => {
                let forward =
                    PortForward::start(&kubectl, front, &front_ports(build), None).await?;
                let url = forward.url(8080)?;
                let admin_url = match build {
                    Build::Monolith => url.clone(),
                    Build::Micro => forward.url(8081)?,
                };
                (url, admin_url, Some(forward))
            }
        };
        let target = Kubernetes {
            build,
            kubectl,
            overlay,
            load_job: kube
                .manifests
                .join("load")
                .join(build.as_str())
                .join("job.yaml"),
            rollout_timeout: kube.rollout_timeout,
            url,
            admin_url,
            admin_token,
            metrics_token,
            forward,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        };
        target.wait_front_ready().await?;
        Ok(target)
    }

    /// After an operation on `component`: if it was the front, its pods are new, and a
    /// port-forward to one of the old ones leads nowhere.
    async fn after(&mut self, component: Component) -> anyhow::Result<()> {
        self.follow_front(component.is_front()).await
    }

    /// Starts the port-forward again, on the same local ports, when it died or `force`;
    /// then waits until the front answers through it.
    async fn follow_front(&mut self, force: bool) -> anyhow::Result<()> {
        if let Some(forward) = self.forward.as_mut()
            && (force || !forward.is_running())
        {
            let old = self.forward.take().expect("just matched");
            let locals = old.ports().clone();
            old.stop().await;
            self.forward = Some(
                PortForward::start(
                    &self.kubectl,
                    front_of(self.build),
                    &front_ports(self.build),
                    Some(&locals),
                )
                .await?,
            );
        }
        self.wait_front_ready().await
    }

    async fn wait_front_ready(&self) -> anyhow::Result<()> {
        let url = format!("{}/ready", self.url);
        let until = Instant::now() + FORWARD_DEADLINE;
        loop {
            let answer = self.http.get(&url).send().await;
            match answer {
                Ok(response) if response.status().is_success() => return Ok(()),
                answer if Instant::now() >= until => {
                    let seen = match answer {
                        Ok(response) => response.status().to_string(),
                        Err(error) => error.to_string(),
                    };
                    anyhow::bail!("{url} not ready within {FORWARD_DEADLINE:?}: {seen}");
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

#[async_trait]
impl Platform for Kubernetes {
    fn name(&self) -> &'static str {
        REGISTRATION.name
    }

    fn build(&self) -> Build {
        self.build
    }

    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault.spec().layer {
            Layer::Process | Layer::InProcess => Ok(()),
            Layer::Network => Err(
                "not applicable: the kubernetes target has no network fault (it \
                 needs a network policy controller the lab does not assume)"
                    .into(),
            ),
            Layer::Resource => {
                Err("not applicable: a pod's CPU limit changes only by replacing the pod".into())
            }
            Layer::Dependency => Err("unavailable: SQLite is embedded in the process; there is \
                 no connection to a database server to cut"
                .into()),
        }
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn admin_url(&self) -> &str {
        &self.admin_url
    }

    fn admin_token(&self) -> &str {
        &self.admin_token
    }

    fn metrics_token(&self) -> &str {
        &self.metrics_token
    }

    /// Waits until every Deployment has rolled out and the front answers `/ready`.
    async fn restore(&mut self) -> anyhow::Result<usize> {
        for component in super::components_of(self.build) {
            self.kubectl
                .rollout_status(component.as_str(), self.rollout_timeout)
                .await?;
        }
        // Kubernetes brings pods back itself; none had to be restarted by the lab.
        self.follow_front(false).await.map(|()| 0)
    }

    async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl.kill_first_pod(deployment(component)?).await?;
        self.after(component).await
    }

    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: kubernetes cannot freeze a container (pause {component}: {paused})"
        )
    }

    async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl
            .recreate(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await
    }

    async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl
            .roll(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await
    }

    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        let why = self
            .kubectl
            .roll_bad_release(
                deployment(component)?,
                BAD_RELEASE_DEADLINE,
                self.rollout_timeout,
            )
            .await?;
        // The old pods kept serving, so a port-forward to one of them still stands; it is
        // checked all the same.
        self.follow_front(false).await?;
        Ok(why)
    }

    async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        let replicas = self
            .kubectl
            .add_replica(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await?;
        Ok(replicas)
    }

    async fn quota_every_process(&mut self, _cores: f64) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(
            "not applicable: on Kubernetes a pod's CPU limit is its manifest's \
             (deploy/kubernetes/), and changing it replaces the pods (a rolling update): the \
             first half would not measure the processes the second half scales",
        ))
    }

    /// Watches Kubernetes restart what fails until `until`: a component with fewer ready
    /// pods than it had at the start, or a pod whose restart count went up, is down; ready
    /// again, that is one restart, with how long it was down.
    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        let names: Vec<&str> = super::components_of(self.build)
            .into_iter()
            .map(Component::as_str)
            .collect();
        let restarts = watch_restarts(&self.kubectl, &names, until).await;
        if restarts
            .iter()
            .any(|restart| restart.component == front_of(self.build))
            && let Err(error) = self.follow_front(true).await
        {
            tracing::warn!(error = format!("{error:#}"), "the front's port-forward");
        }
        restarts
    }

    async fn run_generators(
        &mut self,
        job: &crate::GeneratorJob,
    ) -> anyhow::Result<Vec<crate::GeneratorOutput>> {
        generators::run(&self.kubectl, &self.load_job, front_of(self.build), job).await
    }

    /// Kills the port-forward (by PID) and deletes everything the overlay made, its
    /// namespace included, waiting until it is gone so that the next build can start.
    async fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        if let Some(forward) = self.forward.take() {
            forward.stop().await;
        }
        self.kubectl.delete_overlay(&self.overlay).await
    }
}

/// The Service the public traffic enters by.
fn front_of(build: Build) -> &'static str {
    match build {
        Build::Monolith => "monolith",
        Build::Micro => "gateway",
    }
}

/// The front's ports: the public API, and the gateway's admin API.
fn front_ports(build: Build) -> Vec<u16> {
    match build {
        Build::Monolith => vec![8080],
        Build::Micro => vec![8080, 8081],
    }
}

/// The Deployment that runs a component: named as the component.
fn deployment(component: Component) -> anyhow::Result<&'static str> {
    match component {
        Component::FrontDoor => {
            anyhow::bail!("not applicable: the kubernetes target runs no front door of the lab's")
        }
        component => Ok(component.as_str()),
    }
}
