//! Load generators as one Indexed Job: `shoplab load` from the load Job of
//! `deploy/kubernetes/load/<build>/job.yaml` (its image, user, resources), made
//! `completionMode: Indexed` with `parallelism` and `completions` set to the count, and a
//! required pod anti-affinity on `kubernetes.io/hostname` so that no two generators share a
//! node (and its cores). Each pod learns its share from the index Kubernetes gives it
//! (`SHOPLAB_GENERATOR_INDEX=<index>/<count>`, 0-based, expanded from the downward API), and
//! prints its shard on stdout; the lab reads each pod's log (`kubectl logs`, which joins
//! stdout and stderr: the summary on stderr comes before the shard, and the shard reader
//! skips what precedes its header) and deletes the Job whatever happened.
//!
//! The same code path as the swarm's replicated service: the lab's throughput sweep asks the
//! platform for a [`GeneratorJob`] and merges the shards it gets back.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::kubectl::{Kubectl, POLL, Pod};
use crate::tool::last_lines;
use crate::{GeneratorJob, GeneratorOutput};

/// The Job's name, and the label its pods' anti-affinity selects on.
pub(super) const JOB: &str = "shoplab-generators";
/// The annotation an Indexed Job's pod carries its index in.
const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// Runs `job` against the front's Service; every pod's log, in index order.
pub(super) async fn run(
    kubectl: &Kubectl,
    load_job: &Path,
    front: &str,
    job: &GeneratorJob,
) -> anyhow::Result<Vec<GeneratorOutput>> {
    let template = std::fs::read_to_string(load_job)
        .with_context(|| format!("read the load Job {}", load_job.display()))?;
    let manifest = manifest(&template, front, job)?;
    // A Job left by a run that was cut off would make `apply` change a Job, which Kubernetes
    // refuses for the pod template; it is removed first.
    delete(kubectl).await?;
    let outcome = match kubectl
        .run_with_input(
            &["apply", "-f", "-"],
            Some(manifest.to_string().into_bytes()),
            Duration::from_secs(60),
        )
        .await
        .with_context(|| format!("create the Job {JOB}"))
    {
        Ok(_) => collect(kubectl, job).await,
        Err(error) => Err(error),
    };
    // Deleted whatever happened: generators left behind would keep loading the next run.
    let deleted = delete(kubectl).await;
    let outputs = outcome?;
    deleted?;
    Ok(outputs)
}

async fn delete(kubectl: &Kubectl) -> anyhow::Result<()> {
    let target = format!("job/{JOB}");
    kubectl
        .run(
            &["delete", &target, "--ignore-not-found", "--wait=true"],
            Duration::from_secs(120),
        )
        .await
        .map(drop)
        .with_context(|| format!("delete the Job {JOB}"))
}

/// The load Job of the manifests, turned into `job.count` indexed generators.
fn manifest(template: &str, front: &str, job: &GeneratorJob) -> anyhow::Result<Value> {
    let mut manifest: Value =
        serde_yaml_ng::from_str(template).context("the load Job is not YAML")?;
    anyhow::ensure!(
        manifest["kind"] == "Job",
        "the load Job's kind is {}, not Job",
        manifest["kind"]
    );
    let count = job.count;
    manifest["metadata"] = json!({ "name": JOB, "labels": { "app": JOB } });
    let spec = &mut manifest["spec"];
    spec["completionMode"] = json!("Indexed");
    spec["completions"] = json!(count);
    spec["parallelism"] = json!(count);
    // One run, never repeated: a second attempt would add its orders to the first's.
    spec["backoffLimit"] = json!(0);
    spec["activeDeadlineSeconds"] = json!(job.deadline.as_secs().max(1));
    let pod = &mut spec["template"];
    pod["metadata"]["labels"]["app"] = json!(JOB);
    pod["spec"]["affinity"] = json!({
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": { "matchLabels": { "app": JOB } },
                "topologyKey": "kubernetes.io/hostname",
            }],
        },
    });
    let containers = pod["spec"]["containers"]
        .as_array_mut()
        .filter(|containers| containers.len() == 1)
        .context("the load Job must have exactly one container")?;
    let container = &mut containers[0];
    let mut args = vec!["load".to_owned(), format!("--base-url=http://{front}:8080")];
    args.extend(job.args.iter().cloned());
    container["args"] = json!(args);
    container["env"] = json!([
        {
            "name": "SHOPLAB_JOB_INDEX",
            "valueFrom": { "fieldRef": {
                "fieldPath": format!("metadata.annotations['{INDEX_ANNOTATION}']"),
            } },
        },
        // Dependent variables expand from the ones listed before them.
        { "name": "SHOPLAB_GENERATOR_INDEX", "value": format!("$(SHOPLAB_JOB_INDEX)/{count}") },
    ]);
    let cpu = format!("{}m", (job.cpus * 1000.0).round() as u64);
    container["resources"]["requests"]["cpu"] = json!(cpu);
    container["resources"]["limits"]["cpu"] = json!(cpu);
    Ok(manifest)
}

/// The Job's counts, as `kubectl get job -o json` gives them.
#[derive(Debug, Default, Deserialize)]
struct JobStatus {
    #[serde(default)]
    succeeded: usize,
    #[serde(default)]
    failed: usize,
}

/// Waits for every pod to finish; each one's log, or the first failure with its log.
async fn collect(kubectl: &Kubectl, job: &GeneratorJob) -> anyhow::Result<Vec<GeneratorOutput>> {
    #[derive(Deserialize)]
    struct Job {
        #[serde(default)]
        status: JobStatus,
    }
    let until = Instant::now() + job.deadline;
    let selector = format!("app={JOB}");
    let target = format!("job/{JOB}");
    loop {
        let listed = kubectl
            .run(&["get", &target, "-o", "json"], Duration::from_secs(60))
            .await?;
        let status = serde_json::from_str::<Job>(&listed)
            .context("read the generators' Job")?
            .status;
        let pods = kubectl.pods_selected(&selector).await?;
        if status.failed > 0 {
            let failed = pods
                .iter()
                .find(|pod| pod.status.phase == "Failed")
                .map(|pod| pod.metadata.name.clone());
            let log = match &failed {
                Some(name) => kubectl
                    .run(&["logs", name], Duration::from_secs(60))
                    .await
                    .map(|log| last_lines(&log, 5))
                    .unwrap_or_else(|error| format!("no log: {error:#}")),
                None => "no failed pod left to read".to_owned(),
            };
            anyhow::bail!(
                "generator {} failed; its output: {log}",
                failed.as_deref().unwrap_or("(unknown pod)")
            );
        }
        if status.succeeded >= job.count {
            return logs(kubectl, pods, job.count).await;
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the {} generators did not finish within {:?}: {}",
            job.count,
            job.deadline,
            describe(&pods)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The finished pods' logs in index order, each named by its pod and node.
async fn logs(
    kubectl: &Kubectl,
    mut pods: Vec<Pod>,
    count: usize,
) -> anyhow::Result<Vec<GeneratorOutput>> {
    pods.retain(|pod| pod.status.phase == "Succeeded");
    pods.sort_by_key(index);
    anyhow::ensure!(
        pods.len() == count,
        "the Job reports {count} generators done, {} succeeded pods are left to read",
        pods.len()
    );
    let mut outputs = Vec::new();
    for pod in pods {
        let stdout = kubectl
            .run(&["logs", &pod.metadata.name], Duration::from_secs(120))
            .await
            .with_context(|| format!("read the log of generator {}", pod.metadata.name))?;
        outputs.push(GeneratorOutput {
            generator: format!("{} on {}", pod.metadata.name, pod.spec.node_name),
            stdout,
        });
    }
    Ok(outputs)
}

fn index(pod: &Pod) -> usize {
    pod.metadata
        .annotations
        .get(INDEX_ANNOTATION)
        .and_then(|index| index.parse().ok())
        .unwrap_or(usize::MAX)
}

fn describe(pods: &[Pod]) -> String {
    if pods.is_empty() {
        return "no pod created".to_owned();
    }
    pods.iter()
        .map(|pod| {
            format!(
                "{} {} on {}",
                pod.metadata.name,
                if pod.status.phase.is_empty() {
                    "Pending"
                } else {
                    &pod.status.phase
                },
                if pod.spec.node_name.is_empty() {
                    "no node"
                } else {
                    &pod.spec.node_name
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../../../deploy/kubernetes/load/micro/job.yaml");

    #[test]
    fn the_load_job_becomes_indexed_generators_one_per_node_each_told_its_share() {
        let job = GeneratorJob {
            count: 3,
            args: vec!["--users=30".to_owned(), "--shard=-".to_owned()],
            cpus: 1.0,
            deadline: Duration::from_secs(90),
        };
        let manifest = manifest(TEMPLATE, "gateway", &job).expect("renders");
        let spec = &manifest["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], 3);
        assert_eq!(spec["parallelism"], 3);
        assert_eq!(spec["backoffLimit"], 0);
        assert_eq!(spec["activeDeadlineSeconds"], 90);
        let pod = &spec["template"];
        assert_eq!(pod["metadata"]["labels"]["app"], JOB);
        let term = &pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            [0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(term["labelSelector"]["matchLabels"]["app"], JOB);
        let container = &pod["spec"]["containers"][0];
        // The manifests' image and user are kept; the arguments are the job's.
        assert_eq!(container["image"], "shoplab/shoplab:latest");
        assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            container["args"],
            json!([
                "load",
                "--base-url=http://gateway:8080",
                "--users=30",
                "--shard=-"
            ])
        );
        let env = container["env"].as_array().expect("env");
        assert_eq!(env[1]["value"], "$(SHOPLAB_JOB_INDEX)/3");
        assert!(
            env[0]["valueFrom"]["fieldRef"]["fieldPath"]
                .as_str()
                .is_some_and(|path| path.contains(INDEX_ANNOTATION))
        );
        assert_eq!(container["resources"]["limits"]["cpu"], "1000m");
    }

    #[test]
    fn a_template_that_is_not_one_container_job_is_refused() {
        let job = GeneratorJob {
            count: 2,
            args: Vec::new(),
            cpus: 1.0,
            deadline: Duration::from_secs(60),
        };
        let deployment = "kind: Deployment\nspec: {}\n";
        assert!(manifest(deployment, "monolith", &job).is_err());
        let two =
            "kind: Job\nspec:\n  template:\n    spec:\n      containers: [{name: a}, {name: b}]\n";
        assert!(manifest(two, "monolith", &job).is_err());
    }
}
