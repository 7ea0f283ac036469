//! The stack's services and tasks as the swarm's manager reports them (`docker service ls`,
//! `docker stack ps`, `docker service inspect`), and the waits built on them: converged,
//! updated, rolled back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::cluster::Engine;

/// How often a wait asks the manager again. Each ask is one `docker` call on the manager;
/// twice a second keeps that under a tenth of a core.
pub const POLL: Duration = Duration::from_millis(500);

/// One running (or starting) task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    /// The service without the stack's prefix (`catalog`).
    pub service: String,
    pub node: String,
    /// Running: the swarm saw its healthcheck pass.
    pub running: bool,
}

/// Replicas per service (without the stack's prefix): `(running, desired)`.
pub async fn replicas(
    manager: &Engine,
    stack: &str,
) -> anyhow::Result<BTreeMap<String, (u32, u32)>> {
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let listed = manager
        .docker(&[
            "service",
            "ls",
            "--filter",
            &namespace,
            "--format",
            "{{.Name}} {{.Replicas}}",
        ])
        .await?;
    Ok(parse_replicas(&listed, stack))
}

/// The services' replica counts as desired now, and with one more replica each: what a
/// spare (before a drain) and an added replica both ask `docker service scale` for.
/// Counted from the desired count, not the running one, so a service still converging is
/// not scaled below what it was asked to run. A service the stack does not have is an
/// error (nothing is scaled then).
pub fn one_more_each<'a>(
    replicas: &BTreeMap<String, (u32, u32)>,
    services: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<OneMore> {
    let mut before = BTreeMap::new();
    for service in services {
        let (_, desired) = replicas
            .get(service)
            .with_context(|| format!("the stack has no service {service}"))?;
        before.insert(service.to_owned(), *desired);
    }
    let wanted = before
        .iter()
        .map(|(service, desired)| (service.clone(), desired + 1))
        .collect();
    Ok(OneMore { before, wanted })
}

/// [`one_more_each`]'s answer.
#[derive(Debug, PartialEq, Eq)]
pub struct OneMore {
    /// The desired counts now: what to scale back to.
    pub before: BTreeMap<String, u32>,
    /// One more each: what to scale to.
    pub wanted: BTreeMap<String, u32>,
}

fn parse_replicas(listed: &str, stack: &str) -> BTreeMap<String, (u32, u32)> {
    listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?.strip_prefix(stack)?.strip_prefix('_')?;
            // `1/1`, or `1/1 (max 1 per node)`.
            let (running, desired) = fields.next()?.split_once('/')?;
            Some((
                name.to_owned(),
                (running.parse().ok()?, desired.parse().ok()?),
            ))
        })
        .collect()
}

/// Every task the swarm wants running, with its node and whether it runs.
pub async fn tasks(manager: &Engine, stack: &str) -> anyhow::Result<Vec<Task>> {
    let listed = manager
        .docker(&[
            "stack",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}",
            stack,
        ])
        .await?;
    Ok(parse_tasks(&listed, stack))
}

fn parse_tasks(listed: &str, stack: &str) -> Vec<Task> {
    listed
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let id = fields.next()?.to_owned();
            // `<stack>_<service>.<slot>`.
            let service = fields
                .next()?
                .strip_prefix(stack)?
                .strip_prefix('_')?
                .split('.')
                .next()?
                .to_owned();
            let node = fields.next()?.to_owned();
            let running = fields.next()? == "Running";
            Some(Task {
                id,
                service,
                node,
                running,
            })
        })
        .collect()
}

/// The container of each task (in the order given), from one `docker inspect`.
pub async fn containers(manager: &Engine, tasks: &[Task]) -> anyhow::Result<Vec<String>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![
        "inspect",
        "--format",
        "{{.Status.ContainerStatus.ContainerID}}",
    ];
    args.extend(tasks.iter().map(|task| task.id.as_str()));
    let listed = manager.docker(&args).await?;
    let containers: Vec<String> = listed.lines().map(|line| line.trim().to_owned()).collect();
    anyhow::ensure!(
        containers.len() == tasks.len() && containers.iter().all(|id| !id.is_empty()),
        "not every task has a container yet: {containers:?}"
    );
    Ok(containers)
}

/// `completed`, `updating`, `paused`, `rollback_started`, `rollback_completed`, … or
/// empty when the service was never updated.
pub async fn update_state(manager: &Engine, service: &str) -> anyhow::Result<(String, String)> {
    let state = manager
        .docker(&[
            "service",
            "inspect",
            "--format",
            "{{if .UpdateStatus}}{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}{{end}}",
            service,
        ])
        .await?;
    let (state, message) = state.trim().split_once('|').unwrap_or(("", ""));
    Ok((state.to_owned(), message.to_owned()))
}

/// A service with fewer running tasks than it wants; shown as `catalog 0/1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Short {
    pub service: String,
    pub running: u32,
    pub desired: u32,
}

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.service, self.running, self.desired)
    }
}

/// The services short of running tasks. A task counts when the swarm wants it running and
/// it is running (its healthcheck passed); `docker service ls` alone would also count a
/// task the swarm is shutting down (a drain's), which still runs.
pub fn short_of_replicas(replicas: &BTreeMap<String, (u32, u32)>, tasks: &[Task]) -> Vec<Short> {
    replicas
        .iter()
        .filter_map(|(name, (_, desired))| {
            let running = tasks
                .iter()
                .filter(|task| &task.service == name && task.running)
                .count() as u32;
            (running < *desired).then(|| Short {
                service: name.clone(),
                running,
                desired: *desired,
            })
        })
        .collect()
}

/// Waits until every service runs all the replicas it wants and `also` holds of the tasks;
/// how many services were short at the first look.
pub async fn wait_converged(
    manager: &Engine,
    stack: &str,
    deadline: Duration,
    also: impl Fn(&[Task]) -> bool,
) -> anyhow::Result<usize> {
    let until = Instant::now() + deadline;
    let mut short_at_first = None;
    loop {
        let replicas = replicas(manager, stack).await?;
        let tasks = tasks(manager, stack).await?;
        let short = short_of_replicas(&replicas, &tasks);
        short_at_first.get_or_insert(short.len());
        if short.is_empty() && !replicas.is_empty() && also(&tasks) {
            return Ok(short_at_first.unwrap_or(0));
        }
        if Instant::now() >= until {
            anyhow::bail!(
                "the stack did not converge within {deadline:?}: {}",
                if short.is_empty() {
                    "tasks still where they were".to_owned()
                } else {
                    why_short(manager, stack, &short).await
                }
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The short services with what the swarm says of their latest tasks (`orders 0/1 (node-2:
/// Starting 3 minutes ago; node-1: Failed 4 minutes ago "task: non-zero exit (1)")`), so a
/// stack that does not converge says why.
async fn why_short(manager: &Engine, stack: &str, short: &[Short]) -> String {
    let mut said = Vec::new();
    for service in short {
        let name = format!("{stack}_{}", service.service);
        let history = manager
            .docker(&[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.Node}}: {{.CurrentState}} {{.Error}}",
                &name,
            ])
            .await
            .map(|listed| {
                listed
                    .lines()
                    .take(3)
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|error| format!("no task history: {error:#}"));
        said.push(format!("{service} ({history})"));
    }
    said.join(", ")
}

/// Waits until the update of `service` reaches `wanted` (`completed`, `rollback_completed`);
/// an update that ends another way is an error naming it and the swarm's message.
pub async fn wait_update(
    manager: &Engine,
    service: &str,
    wanted: &str,
    deadline: Duration,
) -> anyhow::Result<String> {
    let until = Instant::now() + deadline;
    loop {
        let (state, message) = update_state(manager, service).await?;
        if state == wanted {
            return Ok(message);
        }
        let settled = matches!(
            state.as_str(),
            "completed" | "paused" | "rollback_completed" | "rollback_paused"
        );
        anyhow::ensure!(
            !settled,
            "the update of {service} ended {state}, not {wanted}: {message}"
        );
        anyhow::ensure!(
            Instant::now() < until,
            "the update of {service} was still {state:?} after {deadline:?}: {message}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_more_each_counts_from_the_desired_replicas_and_refuses_an_unknown_service() {
        // catalog runs 1 of its 2: a spare makes 3, not 2.
        let replicas = parse_replicas("lab_catalog 1/2\nlab_cart 1/1\nlab_users 1/1\n", "lab");
        let one_more = one_more_each(&replicas, ["catalog", "cart"]).unwrap();
        assert_eq!(
            one_more.before,
            BTreeMap::from([("cart".to_owned(), 1), ("catalog".to_owned(), 2)])
        );
        assert_eq!(
            one_more.wanted,
            BTreeMap::from([("cart".to_owned(), 2), ("catalog".to_owned(), 3)])
        );
        let unknown = one_more_each(&replicas, ["catalog", "front"]).unwrap_err();
        assert!(unknown.to_string().contains("front"), "{unknown}");
    }

    #[test]
    fn replicas_are_read_per_service_without_the_stack_prefix() {
        let listed =
            "lab_catalog 2/2\nlab_gateway 0/1\nlab_postgres 1/1 (max 1 per node)\nother_x 1/1\n";
        let replicas = parse_replicas(listed, "lab");
        assert_eq!(replicas["catalog"], (2, 2));
        assert_eq!(replicas["gateway"], (0, 1));
        assert_eq!(replicas["postgres"], (1, 1));
        assert!(!replicas.contains_key("x"));
    }

    #[test]
    fn a_service_is_short_until_its_tasks_run_whatever_service_ls_counts() {
        let replicas = parse_replicas("lab_catalog 1/1\nlab_cart 2/2\n", "lab");
        let task = |id: &str, service: &str, running: bool| Task {
            id: id.into(),
            service: service.into(),
            node: "n".into(),
            running,
        };
        let tasks = [
            task("a", "catalog", false),
            task("b", "cart", true),
            task("c", "cart", true),
        ];
        let short: Vec<String> = short_of_replicas(&replicas, &tasks)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(short, ["catalog 0/1"]);
        assert!(
            short_of_replicas(
                &replicas,
                &[
                    task("d", "catalog", true),
                    tasks[1].clone(),
                    tasks[2].clone()
                ]
            )
            .is_empty()
        );
    }

    #[test]
    fn tasks_carry_their_service_node_and_state() {
        let listed = "t1 lab_catalog.1 lab-node-2 Running 3 seconds ago\n\
                      t2 lab_catalog.2 lab-node-3 Starting 1 second ago\n";
        let tasks = parse_tasks(listed, "lab");
        assert_eq!(
            tasks,
            [
                Task {
                    id: "t1".into(),
                    service: "catalog".into(),
                    node: "lab-node-2".into(),
                    running: true
                },
                Task {
                    id: "t2".into(),
                    service: "catalog".into(),
                    node: "lab-node-3".into(),
                    running: false
                },
            ]
        );
    }
}
