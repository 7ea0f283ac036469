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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{Restart, TargetSettings};
use crate::supervisor::{Build, Component};

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

/// One build running on a cluster.
pub struct Kubernetes {
    build: Build,
    kubectl: Kubectl,
    overlay: PathBuf,
    rollout_timeout: Duration,
    url: String,
    admin_url: String,
    admin_token: String,
    /// `None` when the front is reached at a URL the user gave.
    forward: Option<PortForward>,
    http: reqwest::Client,
}

/// `kubectl` with the namespace of the build, every call bounded in time.
#[derive(Clone, Debug)]
pub struct Kubectl {
    program: PathBuf,
    namespace: String,
}

/// A `kubectl port-forward` child and the local ports it listens on, remote port -> local.
pub struct PortForward {
    child: tokio::process::Child,
    service: String,
    ports: BTreeMap<u16, u16>,
    /// The last lines the child wrote to stderr, for the error when it dies.
    stderr: Arc<Mutex<Vec<String>>>,
}

/// A pod as `kubectl get pods -o json` describes it (the fields the lab reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Pod {
    pub metadata: PodMetadata,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PodMetadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "deletionTimestamp", default)]
    pub deletion_timestamp: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus {
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    #[serde(rename = "containerStatuses", default)]
    pub container_statuses: Vec<ContainerStatus>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ContainerStatus {
    #[serde(rename = "restartCount", default)]
    pub restart_count: u64,
}

/// Any one kubectl call that is not a rollout (those carry their own `--timeout`).
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// How long the lab waits for a release that will never be ready before it rolls it back.
const BAD_RELEASE_DEADLINE: Duration = Duration::from_secs(20);
/// The bad release's defect: a setting that does not parse, so every process of the new
/// release exits at start (api::Settings rejects it), whichever component it is.
const BAD_RELEASE_ENV: &str = "SHOPLAB_SHUTDOWN_DRAIN_MS=not-a-number";
/// How often pods are polled while the lab waits for them or watches them.
const POLL: Duration = Duration::from_millis(250);
/// How long the front may take to answer `/ready` through a new port-forward.
const FORWARD_DEADLINE: Duration = Duration::from_secs(30);

impl Kubernetes {
    pub(super) async fn start(
        build: Build,
        settings: &TargetSettings,
    ) -> anyhow::Result<Kubernetes> {
        let kube = &settings.kubernetes;
        let kubectl = Kubectl::new(
            kube.kubectl
                .clone()
                .unwrap_or_else(|| PathBuf::from("kubectl")),
            &kube.namespace,
        );
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let token_secret = hex::encode(rand::random::<[u8; 24]>());
        kubectl.apply_secret(&admin_token, &token_secret).await?;
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
            rollout_timeout: kube.rollout_timeout,
            url,
            admin_url,
            admin_token,
            forward,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        target.wait_front_ready().await?;
        Ok(target)
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

    /// Waits until every Deployment has rolled out and the front answers `/ready`.
    pub(super) async fn wait_all_ready(&mut self) -> anyhow::Result<()> {
        for component in super::components_of(self.build) {
            self.kubectl
                .rollout_status(component.as_str(), self.rollout_timeout)
                .await?;
        }
        self.follow_front(false).await
    }

    pub(super) async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl.kill_first_pod(deployment(component)?).await?;
        self.after(component).await
    }

    pub(super) async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        anyhow::bail!(
            "not applicable: kubernetes cannot freeze a container (pause {component}: {paused})"
        )
    }

    pub(super) async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl
            .recreate(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await
    }

    pub(super) async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.kubectl
            .roll(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await
    }

    pub(super) async fn roll_bad_release(
        &mut self,
        component: Component,
    ) -> anyhow::Result<String> {
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

    pub(super) async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        let replicas = self
            .kubectl
            .add_replica(deployment(component)?, self.rollout_timeout)
            .await?;
        self.after(component).await?;
        Ok(replicas)
    }

    /// Watches Kubernetes restart what fails until `until`: a component with fewer ready
    /// pods than it had at the start, or a pod whose restart count went up, is down; ready
    /// again, that is one restart, with how long it was down.
    pub(super) async fn watch_restarts_until(&mut self, until: Instant) -> Vec<Restart> {
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

    /// Kills the port-forward (by PID) and deletes everything the overlay made, its
    /// namespace included, waiting until it is gone so that the next build can start.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(forward) = self.forward.take() {
            forward.stop().await;
        }
        self.kubectl.delete_overlay(&self.overlay).await
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
            let locals = old.ports.clone();
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

impl Kubectl {
    /// `program` with `--namespace <namespace>` before every command.
    pub fn new(program: impl Into<PathBuf>, namespace: &str) -> Kubectl {
        Kubectl {
            program: program.into(),
            namespace: namespace.to_owned(),
        }
    }

    /// Runs one command, bounded by `deadline`; its stdout, or its stderr in the error.
    pub async fn run(&self, args: &[&str], deadline: Duration) -> anyhow::Result<String> {
        self.run_with_input(args, None, deadline).await
    }

    /// The Namespace and the Secret `shoplab` that every pod reads its two secrets from,
    /// given on stdin: a secret on kubectl's command line would be readable in `ps`.
    pub async fn apply_secret(&self, admin_token: &str, token_secret: &str) -> anyhow::Result<()> {
        let objects = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": { "name": self.namespace },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": { "name": "shoplab", "namespace": self.namespace },
                    "type": "Opaque",
                    "stringData": {
                        "admin-token": admin_token,
                        "token-secret": token_secret,
                    },
                },
            ],
        });
        self.run_with_input(
            &["apply", "-f", "-"],
            Some(objects.to_string().into_bytes()),
            CALL_DEADLINE,
        )
        .await
        .map(drop)
        .context("create the secret shoplab")
    }

    pub async fn apply_overlay(&self, overlay: &Path) -> anyhow::Result<()> {
        let overlay = overlay.display().to_string();
        self.run(&["apply", "-k", &overlay], CALL_DEADLINE)
            .await
            .map(drop)
    }

    /// Deletes what the overlay made and waits until it is gone.
    pub async fn delete_overlay(&self, overlay: &Path) -> anyhow::Result<()> {
        let overlay = overlay.display().to_string();
        // A namespace takes a while to finalize; the next build's apply would fail on one
        // that is still terminating.
        let deadline = Duration::from_secs(300);
        let timeout = format!("--timeout={}s", deadline.as_secs());
        self.run(
            &[
                "delete",
                "-k",
                &overlay,
                "--ignore-not-found",
                "--wait",
                &timeout,
            ],
            deadline + Duration::from_secs(10),
        )
        .await
        .map(drop)
    }

    /// `rollout status`, failing when the rollout has not finished within `timeout`.
    pub async fn rollout_status(&self, deployment: &str, timeout: Duration) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        let timeout_flag = format!("--timeout={}s", timeout.as_secs().max(1));
        self.run(
            &["rollout", "status", &target, &timeout_flag],
            timeout + Duration::from_secs(10),
        )
        .await
        .map(drop)
    }

    /// The Deployment's own rolling update, to the end.
    pub async fn roll(&self, deployment: &str, timeout: Duration) -> anyhow::Result<()> {
        let target = format!("deployment/{deployment}");
        self.run(&["rollout", "restart", &target], CALL_DEADLINE)
            .await?;
        self.rollout_status(deployment, timeout).await
    }

    /// Every pod gone, then as many new ones as there were, ready.
    pub async fn recreate(&self, deployment: &str, timeout: Duration) -> anyhow::Result<()> {
        let replicas = self.replicas(deployment).await?;
        let target = format!("deployment/{deployment}");
        self.run(&["scale", &target, "--replicas=0"], CALL_DEADLINE)
            .await?;
        let until = Instant::now() + timeout;
        loop {
            if self.pods(deployment).await?.is_empty() {
                break;
            }
            anyhow::ensure!(
                Instant::now() < until,
                "the pods of {deployment} did not go within {timeout:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        let scale = format!("--replicas={replicas}");
        self.run(&["scale", &target, &scale], CALL_DEADLINE).await?;
        self.rollout_status(deployment, timeout).await
    }

    /// A release that never gets ready: it must not roll out within `deadline`; it is
    /// undone. Returns why it failed.
    pub async fn roll_bad_release(
        &self,
        deployment: &str,
        deadline: Duration,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let target = format!("deployment/{deployment}");
        self.run(&["set", "env", &target, BAD_RELEASE_ENV], CALL_DEADLINE)
            .await?;
        let rolled = self.rollout_status(deployment, deadline).await;
        // Undone whatever happened: a bad release must never stay.
        self.run(&["rollout", "undo", &target], CALL_DEADLINE)
            .await?;
        self.rollout_status(deployment, timeout).await?;
        match rolled {
            Ok(()) => anyhow::bail!("the bad release of {deployment} rolled out"),
            Err(error) => Ok(format!(
                "{BAD_RELEASE_ENV}: not rolled out within {deadline:?} ({error:#}); rolled back"
            )),
        }
    }

    /// One more replica; returns how many there are now.
    pub async fn add_replica(&self, deployment: &str, timeout: Duration) -> anyhow::Result<usize> {
        let replicas = self.replicas(deployment).await? + 1;
        let target = format!("deployment/{deployment}");
        let scale = format!("--replicas={replicas}");
        self.run(&["scale", &target, &scale], CALL_DEADLINE).await?;
        self.rollout_status(deployment, timeout).await?;
        Ok(replicas)
    }

    /// Deletes the component's first pod (by name) at once, without a drain: a crash.
    pub async fn kill_first_pod(&self, deployment: &str) -> anyhow::Result<String> {
        let pods = self.pods(deployment).await?;
        let pod = pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .map(|pod| pod.metadata.name.clone())
            .min()
            .with_context(|| format!("no pod of {deployment} to kill"))?;
        self.run(
            &["delete", "pod", &pod, "--grace-period=0", "--force"],
            CALL_DEADLINE,
        )
        .await?;
        Ok(pod)
    }

    /// The Deployment's desired replicas.
    pub async fn replicas(&self, deployment: &str) -> anyhow::Result<usize> {
        #[derive(Deserialize)]
        struct Deployment {
            spec: Spec,
        }
        #[derive(Deserialize)]
        struct Spec {
            #[serde(default = "one")]
            replicas: usize,
        }
        fn one() -> usize {
            1
        }
        let json = self
            .run(
                &["get", "deployment", deployment, "-o", "json"],
                CALL_DEADLINE,
            )
            .await?;
        let deployment: Deployment = serde_json::from_str(&json)
            .with_context(|| format!("read the deployment {deployment}"))?;
        Ok(deployment.spec.replicas)
    }

    /// The pods of one Deployment (its pods carry `app=<name>`; checked here too, so a
    /// kill can never hit another component's pod).
    pub async fn pods(&self, deployment: &str) -> anyhow::Result<Vec<Pod>> {
        let pods = self.pods_selected(&format!("app={deployment}")).await?;
        Ok(pods
            .into_iter()
            .filter(|pod| pod.metadata.labels.get("app").map(String::as_str) == Some(deployment))
            .collect())
    }

    /// The pods of these Deployments, in one call.
    pub async fn pods_of(&self, deployments: &[&str]) -> anyhow::Result<Vec<Pod>> {
        self.pods_selected(&format!("app in ({})", deployments.join(",")))
            .await
    }

    async fn pods_selected(&self, selector: &str) -> anyhow::Result<Vec<Pod>> {
        #[derive(Deserialize)]
        struct List {
            items: Vec<Pod>,
        }
        let json = self
            .run(
                &["get", "pods", "-l", selector, "-o", "json"],
                CALL_DEADLINE,
            )
            .await?;
        let list: List = serde_json::from_str(&json).context("read the pod list")?;
        Ok(list.items)
    }

    async fn run_with_input(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
        deadline: Duration,
    ) -> anyhow::Result<String> {
        let shown = format!(
            "{} --namespace {} {}",
            self.program.display(),
            self.namespace,
            args.join(" ")
        );
        let mut child = tokio::process::Command::new(&self.program)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("run {shown}"))?;
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(&input)
                .await
                .with_context(|| format!("{shown}: write its input"))?;
        }
        let output = tokio::time::timeout(deadline, child.wait_with_output())
            .await
            .with_context(|| format!("{shown}: no answer within {deadline:?}"))?
            .with_context(|| format!("run {shown}"))?;
        anyhow::ensure!(
            output.status.success(),
            "{shown} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl PortForward {
    /// `kubectl port-forward service/<service>` for these remote ports, on the local ports
    /// given (the same as before, after a restart) or on ports kubectl picks; returns once
    /// kubectl has said where it listens.
    pub async fn start(
        kubectl: &Kubectl,
        service: &str,
        remotes: &[u16],
        locals: Option<&BTreeMap<u16, u16>>,
    ) -> anyhow::Result<PortForward> {
        let mut command = tokio::process::Command::new(&kubectl.program);
        command
            .arg("--namespace")
            .arg(&kubectl.namespace)
            .arg("port-forward")
            .arg(format!("service/{service}"))
            .arg("--address=127.0.0.1");
        for remote in remotes {
            let local = locals
                .and_then(|locals| locals.get(remote))
                .map(u16::to_string)
                .unwrap_or_default();
            command.arg(format!("{local}:{remote}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("run {} port-forward", kubectl.program.display()))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let tail = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr_lines.next_line().await {
                let mut tail = tail.lock().expect("stderr tail");
                tail.push(line);
                let excess = tail.len().saturating_sub(5);
                tail.drain(..excess);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut ports = BTreeMap::new();
        let read = async {
            while ports.len() < remotes.len() {
                let Some(line) = stdout.next_line().await? else {
                    break;
                };
                if let Some((local, remote)) = forwarding(&line) {
                    ports.insert(remote, local);
                }
            }
            anyhow::Ok(())
        };
        let read = tokio::time::timeout(FORWARD_DEADLINE, read).await;
        if ports.len() < remotes.len() {
            let _ = child.start_kill();
            let said = stderr.lock().expect("stderr tail").join("; ");
            anyhow::bail!(
                "kubectl port-forward service/{service} did not start within {FORWARD_DEADLINE:?} ({}): {said}",
                match read {
                    Ok(Ok(())) => "it ended".to_owned(),
                    Ok(Err(error)) => format!("{error:#}"),
                    Err(_) => "no answer".to_owned(),
                }
            );
        }
        // kubectl prints a line per connection from now on: read and drop them, or the pipe
        // fills up and kubectl stops forwarding.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Ok(PortForward {
            child,
            service: service.to_owned(),
            ports,
            stderr,
        })
    }

    /// `http://127.0.0.1:<local>` for a remote port.
    pub fn url(&self, remote: u16) -> anyhow::Result<String> {
        let local = self
            .ports
            .get(&remote)
            .with_context(|| format!("no port-forward to {}:{remote}", self.service))?;
        Ok(format!("http://127.0.0.1:{local}"))
    }

    /// The child's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the child by its PID and reaps it.
    pub async fn stop(mut self) {
        if self.is_running() {
            let said = self.stderr.lock().expect("stderr tail").join("; ");
            tracing::debug!(service = %self.service, stderr = %said, "stop the port-forward");
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

impl Pod {
    pub fn is_ready(&self) -> bool {
        self.metadata.deletion_timestamp.is_none()
            && self
                .status
                .conditions
                .iter()
                .any(|condition| condition.kind == "Ready" && condition.status == "True")
    }

    pub fn restarts(&self) -> u64 {
        self.status
            .container_statuses
            .iter()
            .map(|container| container.restart_count)
            .sum()
    }
}

/// Polls the pods of these Deployments until `until` and returns every restart seen: a
/// Deployment with fewer ready pods than at the start, or with a pod whose restart count
/// went up, is down from that poll on; once as many pods are ready as at the start again,
/// that is one restart. A poll kubectl does not answer is skipped.
pub async fn watch_restarts(
    kubectl: &Kubectl,
    deployments: &[&str],
    until: Instant,
) -> Vec<Restart> {
    let mut restarts = Vec::new();
    let mut wanted: BTreeMap<String, usize> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut down: BTreeMap<String, Instant> = BTreeMap::new();
    while Instant::now() < until {
        let polled = Instant::now();
        if let Ok(pods) = kubectl.pods_of(deployments).await {
            let mut ready: BTreeMap<String, usize> = BTreeMap::new();
            let mut restarted: BTreeSet<String> = BTreeSet::new();
            for pod in &pods {
                let Some(app) = pod.metadata.labels.get("app") else {
                    continue;
                };
                if pod.is_ready() {
                    *ready.entry(app.clone()).or_default() += 1;
                }
                let pod_restarts = pod.restarts();
                let count = counts
                    .entry(pod.metadata.name.clone())
                    .or_insert(pod_restarts);
                if pod_restarts > *count {
                    restarted.insert(app.clone());
                }
                *count = pod_restarts;
            }
            for deployment in deployments {
                let now_ready = ready.get(*deployment).copied().unwrap_or(0);
                let wanted = *wanted.entry(deployment.to_string()).or_insert(now_ready);
                let is_down = now_ready < wanted;
                if (is_down || restarted.contains(*deployment)) && !down.contains_key(*deployment) {
                    down.insert(deployment.to_string(), polled);
                }
                if !is_down && let Some(since) = down.remove(*deployment) {
                    restarts.push(Restart {
                        component: deployment.to_string(),
                        at: since,
                        backoff_ms: 0,
                        down_ms: since.elapsed().as_millis() as u64,
                        error: None,
                    });
                }
            }
        }
        tokio::time::sleep(POLL.min(until.saturating_duration_since(Instant::now()))).await;
    }
    restarts
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

/// "Forwarding from 127.0.0.1:41235 -> 8080" -> (41235, 8080). The `[::1]` lines are not
/// used: the lab speaks to 127.0.0.1.
fn forwarding(line: &str) -> Option<(u16, u16)> {
    let rest = line.trim().strip_prefix("Forwarding from 127.0.0.1:")?;
    let (local, remote) = rest.split_once(" -> ")?;
    Some((local.trim().parse().ok()?, remote.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_forwarding_lines_give_local_and_remote_ports() {
        assert_eq!(
            forwarding("Forwarding from 127.0.0.1:41235 -> 8080"),
            Some((41235, 8080))
        );
        assert_eq!(forwarding("Forwarding from [::1]:41235 -> 8080"), None);
        assert_eq!(forwarding("Handling connection for 8080"), None);
    }
}
