//! Load generators as a replicated service of the swarm: `shoplab load` from the lab's own
//! image (`shoplab/shoplab`), one task per node (`--replicas-max-per-node 1`), on the stack's
//! overlay network, against the front's service name (`endpoint_mode: dnsrr`, so the name
//! resolves to every task of the front). Each task learns its share from
//! `SHOPLAB_GENERATOR={{.Task.Slot}}/<count>` and prints its shard on stdout; the lab reads
//! each task's stdout through the manager (`docker service logs --raw <task>`, which keeps
//! stdout and stderr apart, and reaches workers of an existing swarm too) and removes the
//! service whatever happened.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::cluster::Engine;
use super::services::POLL;
use crate::tool::last_lines;
use crate::{GeneratorJob, GeneratorOutput};

/// One generator task as `docker service ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GeneratorTask {
    id: String,
    node: String,
    /// `Complete`, `Running`, `Failed`, … (the first word of CURRENT STATE).
    state: String,
    error: String,
}

impl GeneratorTask {
    /// The task ran and will not change again.
    fn finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "Complete" | "Failed" | "Rejected" | "Shutdown" | "Orphaned" | "Remove"
        )
    }
}

/// Runs `job` as the service `name` on the stack's network; every task's stdout.
pub(super) async fn run(
    manager: &Engine,
    stack: &str,
    front_service: &str,
    image: &str,
    job: &GeneratorJob,
) -> anyhow::Result<Vec<GeneratorOutput>> {
    let name = format!("{stack}-load");
    let created = create(manager, stack, &name, front_service, image, job).await;
    let outcome = match created {
        Ok(()) => collect(manager, &name, job).await,
        Err(error) => Err(error),
    };
    // Removed whatever happened: a generator left behind would keep loading the next run.
    let removed = manager.docker(&["service", "rm", &name]).await;
    let outputs = outcome?;
    removed.with_context(|| format!("remove the generator service {name}"))?;
    Ok(outputs)
}

async fn create(
    manager: &Engine,
    stack: &str,
    name: &str,
    front_service: &str,
    image: &str,
    job: &GeneratorJob,
) -> anyhow::Result<()> {
    let replicas = job.count.to_string();
    let share = format!("SHOPLAB_GENERATOR={{{{.Task.Slot}}}}/{}", job.count);
    let network = format!("{stack}_default");
    let cpus = format!("{}", job.cpus);
    let base_url = format!("--base-url=http://{stack}_{front_service}:8080");
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--quiet",
        "--name",
        name,
        "--replicas",
        &replicas,
        // One generator per node: generators that shared a node would share its cores.
        "--replicas-max-per-node",
        "1",
        // A generator runs once; a second attempt would add its orders to the first's.
        "--restart-condition",
        "none",
        "--network",
        &network,
        "--env",
        &share,
        "--limit-cpu",
        &cpus,
        "--no-resolve-image",
        image,
        "load",
        &base_url,
    ];
    args.extend(job.args.iter().map(String::as_str));
    manager
        .docker(&args)
        .await
        .with_context(|| format!("create the generator service {name}"))?;
    Ok(())
}

/// Waits for every task to finish; each one's stdout, or the first failure with its log.
async fn collect(
    manager: &Engine,
    name: &str,
    job: &GeneratorJob,
) -> anyhow::Result<Vec<GeneratorOutput>> {
    let deadline = Instant::now() + job.deadline;
    let tasks = loop {
        let listed = manager
            .docker(&[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}}|{{.Node}}|{{.CurrentState}}|{{.Error}}",
                name,
            ])
            .await?;
        let tasks = parse_tasks(&listed);
        if tasks.len() >= job.count && tasks.iter().all(GeneratorTask::finished) {
            break tasks;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the {} generators did not finish within {:?}: {}",
            job.count,
            job.deadline,
            describe(&tasks)
        );
        tokio::time::sleep(POLL).await;
    };
    let mut outputs = Vec::new();
    for task in &tasks {
        let stdout = manager
            .docker_with(
                &["service", "logs", "--raw", &task.id],
                None,
                Duration::from_secs(120),
            )
            .await
            .with_context(|| format!("read generator task {} on {}", task.id, task.node))?;
        anyhow::ensure!(
            task.state == "Complete",
            "generator task {} on {} ended {}{}; its output: {}",
            task.id,
            task.node,
            task.state,
            if task.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", task.error)
            },
            last_lines(&stdout, 5)
        );
        outputs.push(GeneratorOutput {
            generator: format!("{} on {}", short(&task.id), task.node),
            stdout,
        });
    }
    Ok(outputs)
}

fn parse_tasks(listed: &str) -> Vec<GeneratorTask> {
    listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(4, '|');
            let id = fields.next()?.trim().to_owned();
            let node = fields.next()?.trim().to_owned();
            let state = fields.next()?.split_whitespace().next()?.to_owned();
            let error = fields.next().unwrap_or_default().trim().to_owned();
            (!id.is_empty()).then_some(GeneratorTask {
                id,
                node,
                state,
                error,
            })
        })
        .collect()
}

fn describe(tasks: &[GeneratorTask]) -> String {
    if tasks.is_empty() {
        return "no task placed".to_owned();
    }
    tasks
        .iter()
        .map(|task| {
            format!(
                "{} {} on {}{}",
                short(&task.id),
                task.state,
                if task.node.is_empty() {
                    "no node"
                } else {
                    &task.node
                },
                if task.error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", task.error)
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_read_with_their_state_and_error_and_finish_only_in_a_final_state() {
        let listed = "abc123|node-2|Complete 2 seconds ago|\n\
                      def456|node-3|Running 5 seconds ago|\n\
                      ghi789||Pending 9 seconds ago|no suitable node (max replicas per node limit exceed)\n";
        let tasks = parse_tasks(listed);
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[0].state, "Complete");
        assert!(tasks[0].finished());
        assert!(!tasks[1].finished());
        assert_eq!(tasks[2].node, "");
        assert!(tasks[2].error.starts_with("no suitable node"));
        assert!(describe(&tasks).contains("ghi789 Pending on no node (no suitable node"));
    }
}
