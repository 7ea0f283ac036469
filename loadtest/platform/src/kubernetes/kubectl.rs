//! `kubectl` for the kubernetes target: one namespace on every command, a deadline on every
//! call and its stderr in the error; the operations the target maps the lab's deploys and
//! faults onto; the pods as `kubectl get pods -o json` describes them, and the restart watch
//! over them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::json;

use crate::Restart;
use crate::tool::{self, Call};

/// `kubectl` with the namespace of the build, every call bounded in time.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub(super) program: PathBuf,
    pub(super) namespace: String,
}

/// A pod as `kubectl get pods -o json` describes it (the fields the lab reads).
#[derive(Clone, Debug, Deserialize)]
pub struct Pod {
    pub metadata: PodMetadata,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodSpec {
    /// The node the scheduler placed it on; empty while it is pending.
    #[serde(rename = "nodeName", default)]
    pub node_name: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PodMetadata {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "deletionTimestamp", default)]
    pub deletion_timestamp: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    #[serde(default)]
    pub phase: String,
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
/// The bad release's defect: a setting that does not parse, so every process of the new
/// release exits at start (api::Settings rejects it), whichever component it is.
const BAD_RELEASE_ENV: &str = "SHOPLAB_SHUTDOWN_DRAIN_MS=not-a-number";
/// How often pods are polled while the lab waits for them or watches them.
pub(super) const POLL: Duration = Duration::from_millis(250);

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

    /// The Namespace, the Secret `shoplab` that every pod reads its two secrets and the
    /// services' public keys from, and one Secret `shoplab-key-<name>` per process of the
    /// micro build holding its own private key, which only that process's pods mount
    /// (`domain::trust`). Given on stdin: a secret on kubectl's command line would be
    /// readable in `ps`.
    pub async fn apply_secret(
        &self,
        admin_token: &str,
        metrics_token: &str,
        token_secret: &str,
        service_keys: &domain::trust::Keyring,
    ) -> anyhow::Result<()> {
        let own_keys = domain::trust::Peer::all().into_iter().map(|peer| {
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": format!("shoplab-key-{peer}"), "namespace": self.namespace },
                "type": "Opaque",
                "stringData": { "service-key": service_keys.private_key(peer) },
            })
        });
        let mut items = vec![
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": self.namespace },
            }),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": "shoplab", "namespace": self.namespace },
                "type": "Opaque",
                "stringData": {
                    "admin-token": admin_token,
                    "metrics-token": metrics_token,
                    "token-secret": token_secret,
                    "service-public-keys": service_keys.public_keys(),
                },
            }),
        ];
        items.extend(own_keys);
        let objects = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": items,
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

    /// The pods with these labels (`-l`).
    pub async fn pods_selected(&self, selector: &str) -> anyhow::Result<Vec<Pod>> {
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

    pub(super) async fn run_with_input(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
        deadline: Duration,
    ) -> anyhow::Result<String> {
        let program = self.program.display().to_string();
        tool::run(Call {
            program: &program,
            leading: &["--namespace".to_owned(), self.namespace.clone()],
            args,
            env: &[],
            input,
            deadline,
        })
        .await
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
