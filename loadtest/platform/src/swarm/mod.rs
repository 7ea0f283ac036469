//! The `swarm` platform: the build as a stack on a Docker Swarm — by default a swarm of
//! docker-in-docker nodes the lab makes on this machine for the run (`cluster`), or an
//! existing one (`--swarm-manager`). Swarm is the process manager and the scheduler here: the
//! lab asks it for deploys, kills a task's process or a whole node, and times what the
//! orchestrator does about it.
//!
//! How each operation is realized, and why:
//! - start: a cluster, then `docker stack deploy` of the stack rendered from
//!   `docker-compose.yml` (`stack`: PostgreSQL pinned to the manager node, every service
//!   `dnsrr`, the front published in host mode), then wait until every service runs its
//!   replicas; the lab's front door checks every node (`front`).
//! - recreate: `docker service update --force --update-order stop-first`: Swarm stops the
//!   task, then starts its replacement.
//! - rolling: the same with `start-first`: the new task runs (its healthcheck passed) before
//!   the old one gets SIGTERM. Callers find the new task by re-resolving the service's name.
//! - bad release: `docker service update --env-add` of a setting no process can parse,
//!   start-first with `--update-failure-action rollback`: the new task exits at start and
//!   Swarm rolls the service back by itself; the lab waits for `rollback_completed`.
//! - kill: `docker kill --signal KILL` of a task's container on its node (its process dies
//!   as in a crash); Swarm's restart policy starts a new task, which the lab watches.
//! - pause: `docker pause` of a task's container on its node.
//! - scale: `docker service scale`.
//! - node loss: the node's container is killed (its engine and every task on it at once);
//!   Swarm marks the node down after its heartbeats stop and reschedules its tasks.
//! - node drain: `docker node update --availability drain`; with spares, the node is first
//!   paused and each service on it scaled up by one, and scaled back when the node returns.
//!
//! A topology between the two builds (`--topologies browse-buy`) runs as the stack rendered
//! from its generated compose file (`stack`, through `compose::topology`): a service per
//! group of contexts (the `shoplab/host` image) and the gateway. A component names a
//! process as on the local target: `Service(context)` is the service of the group hosting
//! `context`, so killing `payments` on `browse-buy` kills a task of `buy`. Not realized
//! there, with the reason: a replica (the scale experiment's, which would add every context
//! of the group).
//!
//! The nodes' own engines are reached through the lab's engine (`docker exec <node>`), so
//! kill, pause and node loss need a swarm of the lab's own; on an existing swarm they are
//! not applicable and say so.

mod cluster;
mod front;
mod generators;
mod services;
mod stack;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use domain::faults::{Fault, Layer};
use futures::FutureExt as _;

use crate::compose::topology::Layout;
use crate::{
    Drain, Injection, NamedProcess, NodeView, Platform, Probe, ProcessView, Registration, Restart,
    TargetSettings,
};
use cluster::{Cluster, ClusterPlan, Engine};
use front::Front;
use loadtest_results::component::{Build, Component};
use services::{POLL, Task};

pub use stack::{StackInputs, render as render_stack};

/// How `--target swarm` gets its swarm.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Swarm target")]
pub struct SwarmArgs {
    /// Nodes of the swarm the lab makes for each build (docker-in-docker on this machine's
    /// engine; the first is the manager and holds the database).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub swarm_nodes: u16,
    /// Use an existing swarm through its manager's engine (`tcp://host:2375`,
    /// `ssh://user@host`) instead of making one. Its nodes must hold the images.
    #[arg(long, value_name = "URL")]
    pub swarm_manager: Option<String>,
    /// Names of everything the run makes (nodes, networks, volumes, stacks) start with this
    /// (default `shoplab-swarm-<pid>`).
    #[arg(long, value_name = "NAME")]
    pub swarm_prefix: Option<String>,
    /// How long one deploy, heal or reschedule may take.
    #[arg(long, default_value_t = 180, value_name = "SECS")]
    pub swarm_timeout: u64,
}

impl SwarmArgs {
    /// The swarm platform's settings from its flags, the compose flags it shares (the
    /// compose file the stack is rendered from, the images' tag) and `--generators`.
    pub fn settings(
        &self,
        compose: &crate::compose::ComposeArgs,
        generators: u16,
    ) -> SwarmSettings {
        SwarmSettings {
            nodes: usize::from(self.swarm_nodes),
            manager: self.swarm_manager.clone(),
            prefix: self.swarm_prefix.clone(),
            tag: compose.image_tag.clone(),
            compose_file: compose.compose_file.clone(),
            timeout: Duration::from_secs(self.swarm_timeout),
            generators: usize::from(generators),
        }
    }
}

/// How the lab gets a swarm and what it deploys on it.
#[derive(Clone, Debug)]
pub struct SwarmSettings {
    pub nodes: usize,
    /// An existing swarm's manager; `None`: the lab makes its own.
    pub manager: Option<String>,
    pub prefix: Option<String>,
    /// `shoplab/<name>:<tag>`, `shoplab/swarm-node:<tag>`, `shoplab/postgres:<tag>`.
    pub tag: String,
    /// The compose file the stack is rendered from; `deploy/docker/postgres.yml` is read
    /// beside it.
    pub compose_file: PathBuf,
    pub timeout: Duration,
    /// Load generators the run places on the nodes (0: none); their image goes onto every
    /// node with the shop's.
    pub generators: usize,
}

impl Default for SwarmSettings {
    fn default() -> SwarmSettings {
        SwarmSettings {
            nodes: 3,
            manager: None,
            prefix: None,
            tag: "latest".to_owned(),
            compose_file: PathBuf::from("docker-compose.yml"),
            timeout: Duration::from_secs(180),
            generators: 0,
        }
    }
}

/// The `swarm` platform's entry in [`crate::PLATFORMS`]. Limits come from the compose file,
/// the database is the stack's own PostgreSQL.
pub(crate) const REGISTRATION: Registration = Registration {
    name: "swarm",
    start: |build, settings| {
        async move { Ok(Box::new(Swarm::start(build, settings).await?) as Box<dyn Platform>) }
            .boxed()
    },
    start_topology: Some(|topology, settings| {
        async move {
            let layout = Layout::of(&topology);
            Ok(
                Box::new(Swarm::launch(Build::Micro, Some(layout), settings).await?)
                    as Box<dyn Platform>,
            )
        }
        .boxed()
    }),
    takes_process_limits: false,
    takes_database_server: false,
    has_nodes: true,
    places_generators: true,
    database: Some("postgresql (a service of the stack, pinned to the manager node)"),
};

/// The setting a bad release carries: no process can parse it, so every new task exits at
/// start (the same defect as the Kubernetes target's).
const BAD_RELEASE_ENV: &str = "SHOPLAB_SHUTDOWN_DRAIN_MS=not-a-number";

/// How long the watch waits, past the fault window, for Swarm to replace a task the lab
/// killed. Swarm takes about 3.5 s here (measured with `restart-delay 0`), longer than the
/// quick profile's fault window: without waiting, a heal that happened would go unseen.
const KILLED_HEAL_DEADLINE: Duration = Duration::from_secs(60);

/// One build running as a stack on a swarm.
pub struct Swarm {
    build: Build,
    /// The groups' services, on a topology between the builds; `None` for a build.
    layout: Option<Layout>,
    /// `None` once stopped.
    cluster: Option<Cluster>,
    stack: String,
    front: Option<Front>,
    /// The monolith's or the gateway's own URL on the node that ran it at the last look.
    direct_url: String,
    admin_token: String,
    /// Opens every process's `/metrics` and nothing else.
    metrics_token: String,
    timeout: Duration,
    /// The lab's own image, `shoplab load`'s for generators on the nodes.
    lab_image: String,
    /// A task the lab killed, its service and when: the watch counts the restart from then.
    killed: Option<(String, String, Instant)>,
    /// Containers the lab paused: `(their node's engine, container)`.
    paused: Vec<(Engine, String)>,
    /// Nodes the lab killed or drained, to put back.
    away: BTreeMap<String, Away>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Away {
    Lost,
    /// Drained; with the replica counts of the services that got a spare first, to scale
    /// back to when the node returns.
    Drained {
        spared: BTreeMap<String, u32>,
    },
}

impl Swarm {
    async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Swarm> {
        Swarm::launch(build, None, settings).await
    }

    /// A build (`layout` none) or a topology between the builds, as its stack.
    async fn launch(
        build: Build,
        layout: Option<Layout>,
        settings: &TargetSettings,
    ) -> anyhow::Result<Swarm> {
        let swarm = &settings.swarm;
        // A custom spec holds `+` and `,`, which neither a node's nor a stack's name may.
        let what = layout
            .as_ref()
            .map_or_else(|| build.to_string(), Layout::slug);
        let prefix = format!(
            "{}-{what}",
            swarm
                .prefix
                .clone()
                .unwrap_or_else(|| format!("shoplab-swarm-{}", std::process::id()))
        );
        let lab_image = format!("shoplab/shoplab:{}", swarm.tag);
        // A topology's groups all run the one image that hosts any group.
        let names: Vec<String> = match &layout {
            Some(_) => vec!["host".to_owned(), "gateway".to_owned()],
            None => super::components_of(build)
                .into_iter()
                .map(|component| component.as_str().to_owned())
                .collect(),
        };
        let mut images: Vec<String> = names
            .iter()
            .map(|name| format!("shoplab/{name}:{}", swarm.tag))
            .collect();
        if swarm.generators > 0 {
            images.push(lab_image.clone());
        }
        let database_image = [format!("shoplab/postgres:{}", swarm.tag)];
        let cluster = match &swarm.manager {
            Some(url) => Cluster::existing(url).await?,
            None => {
                Cluster::create(&ClusterPlan {
                    prefix: prefix.clone(),
                    nodes: swarm.nodes,
                    node_image: format!("shoplab/swarm-node:{}", swarm.tag),
                    images: &images,
                    manager_images: &database_image,
                })
                .await?
            }
        };
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let metrics_token = hex::encode(rand::random::<[u8; 16]>());
        let compose = std::fs::read_to_string(&swarm.compose_file)
            .with_context(|| format!("read {}", swarm.compose_file.display()))?;
        let postgres_file = swarm
            .compose_file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("deploy/docker/postgres.yml");
        let postgres = std::fs::read_to_string(&postgres_file)
            .with_context(|| format!("read {}", postgres_file.display()))?;
        // Made here, for this deployment, and given out one private key per service.
        let service_keys = domain::trust::Keyring::generate();
        let stack_file = stack::render(&StackInputs {
            build,
            topology: layout.as_ref().map(Layout::topology),
            compose: &compose,
            postgres: &postgres,
            tag: &swarm.tag,
            admin_token: &admin_token,
            metrics_token: &metrics_token,
            token_secret: &hex::encode(rand::random::<[u8; 24]>()),
            service_keys: &service_keys,
            postgres_password: &hex::encode(rand::random::<[u8; 16]>()),
            database_node: &cluster.manager_node().hostname,
        })?;
        let stack_name = prefix.clone();
        cluster
            .manager()
            .docker_with(
                &[
                    "stack",
                    "deploy",
                    "--resolve-image",
                    "never",
                    "--compose-file",
                    "-",
                    &stack_name,
                ],
                Some(stack_file.into_bytes()),
                swarm.timeout,
            )
            .await
            .with_context(|| format!("deploy the {what} stack"))?;
        let mut target = Swarm {
            build,
            layout,
            cluster: Some(cluster),
            stack: stack_name,
            front: None,
            direct_url: String::new(),
            admin_token,
            metrics_token,
            timeout: swarm.timeout,
            lab_image,
            killed: None,
            paused: Vec::new(),
            away: BTreeMap::new(),
        };
        services::wait_converged(target.manager(), &target.stack, swarm.timeout, |_| true)
            .await
            .with_context(|| format!("start the {what} stack"))?;
        let ports = stack::front_ports(build, stack::front_service(build))
            .expect("every build has a front");
        let front = Front::start(settings, target.cluster().nodes(), ports, swarm.timeout).await?;
        target.front = Some(front);
        target.follow_front().await?;
        Ok(target)
    }

    fn cluster(&self) -> &Cluster {
        self.cluster
            .as_ref()
            .expect("a running swarm has its cluster")
    }

    fn manager(&self) -> &Engine {
        self.cluster().manager()
    }

    fn front(&self) -> &Front {
        self.front.as_ref().expect("a running swarm has its front")
    }

    /// `<stack>_<service>`: the swarm service that runs a component.
    fn service(&self, component: Component) -> anyhow::Result<String> {
        anyhow::ensure!(
            component != Component::FrontDoor,
            "not applicable: the front door is the lab's, not a service of the swarm"
        );
        Ok(format!("{}_{}", self.stack, self.service_of(component)))
    }

    /// The stack's service (without the stack's prefix) that runs `component`: on a
    /// topology, a context's is its group's.
    fn service_of(&self, component: Component) -> String {
        Layout::service_for(self.layout.as_ref(), component)
    }

    /// The name the results give the process a service runs: the service's own for a build,
    /// its group's on a topology (`buy`).
    fn process_of_service(&self, service: &str) -> String {
        Layout::process_of(self.layout.as_ref(), service)
    }

    /// The component a service of the stack stands for: its own, or on a topology the first
    /// context of its group (the component every context of the group names).
    fn component_of_service(&self, service: &str) -> Option<Component> {
        match self
            .layout
            .as_ref()
            .and_then(|layout| layout.group_of_service(service))
        {
            Some(group) => Some(Component::Service(group.contexts()[0])),
            None => Component::parse(service),
        }
    }

    /// After anything that may have moved the front: wait until a node's front is ready,
    /// and point the direct URL at one that is.
    async fn follow_front(&mut self) -> anyhow::Result<()> {
        let timeout = self.timeout;
        let front = self.front.as_mut().expect("a running swarm has its front");
        front.wait_ready(timeout).await?;
        let ready = front.ready_nodes();
        if !ready
            .iter()
            .any(|address| self.direct_url == format!("http://{address}:8080"))
        {
            self.direct_url = format!("http://{}:8080", ready[0]);
        }
        Ok(())
    }

    /// Waits until every service runs its replicas, then for the front.
    async fn converge(&mut self, also: impl Fn(&[Task]) -> bool) -> anyhow::Result<usize> {
        let short =
            services::wait_converged(self.manager(), &self.stack, self.timeout, also).await?;
        self.follow_front().await?;
        Ok(short)
    }

    /// `docker service update --detach <args> <service>`, then waits for `wanted`.
    async fn update(
        &mut self,
        component: Component,
        args: &[&str],
        wanted: &str,
    ) -> anyhow::Result<String> {
        let service = self.service(component)?;
        let mut call = vec!["service", "update", "--detach"];
        call.extend(args);
        call.push(&service);
        self.manager().docker(&call).await?;
        let message = services::wait_update(self.manager(), &service, wanted, self.timeout).await?;
        self.converge(|_| true).await?;
        Ok(message)
    }

    /// A running task of `component` and the node container it runs in.
    async fn first_task(&self, component: Component) -> anyhow::Result<(Task, Engine)> {
        let service = self.service_of(component);
        let running: Vec<Task> = services::tasks(self.manager(), &self.stack)
            .await?
            .into_iter()
            .filter(|task| task.service == service && task.running)
            .collect();
        anyhow::ensure!(!running.is_empty(), "no running task of {component}");
        running
            .iter()
            .find_map(|task| Some((task.clone(), self.cluster().engine_of(&task.node)?)))
            .with_context(|| {
                format!(
                    "not applicable: {component}'s tasks run on {}, node(s) of an existing \
                     swarm whose engines the lab does not reach (it reaches the manager's)",
                    running
                        .iter()
                        .map(|task| task.node.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The container of a task, on its node's engine.
    async fn container_of(&self, task: &Task) -> anyhow::Result<String> {
        let containers = services::containers(self.manager(), std::slice::from_ref(task)).await?;
        containers
            .into_iter()
            .next()
            .with_context(|| format!("task {} has no container", task.id))
    }

    /// Watches Swarm heal until `until`: a service short of replicas is down from when the
    /// lab killed its task (or first saw it short) until it runs them all again with the
    /// killed task gone. A task the lab killed is waited for past `until` (up to
    /// [`KILLED_HEAL_DEADLINE`] after the kill), so its heal is timed even when it outlasts
    /// the fault window.
    async fn watch(&mut self, until: Instant) -> Vec<Restart> {
        struct Down {
            since: Instant,
            gone_task: Option<String>,
        }
        let mut down: BTreeMap<String, Down> = BTreeMap::new();
        if let Some((service, task, at)) = self.killed.take() {
            down.insert(
                service,
                Down {
                    since: at,
                    gone_task: Some(task),
                },
            );
        }
        let killed_deadline = down
            .values()
            .map(|entry| entry.since + KILLED_HEAL_DEADLINE)
            .next();
        let mut restarts = Vec::new();
        loop {
            let now = Instant::now();
            let killed_pending = down.values().any(|entry| entry.gone_task.is_some())
                && killed_deadline.is_some_and(|deadline| now < deadline);
            if now >= until && !killed_pending {
                break;
            }
            let (Ok(replicas), Ok(tasks)) = (
                services::replicas(self.manager(), &self.stack).await,
                services::tasks(self.manager(), &self.stack).await,
            ) else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let short = services::short_of_replicas(&replicas, &tasks);
            for service in replicas.into_keys() {
                if short.iter().any(|short| short.service == service) {
                    down.entry(service).or_insert(Down {
                        since: Instant::now(),
                        gone_task: None,
                    });
                    continue;
                }
                let back = down.get(&service).is_some_and(|entry| {
                    entry.gone_task.as_ref().is_none_or(|gone| {
                        !tasks.iter().any(|task| &task.id == gone && task.running)
                    })
                });
                if back && let Some(entry) = down.remove(&service) {
                    restarts.push(Restart {
                        component: self.process_of_service(&service),
                        at: entry.since,
                        backoff_ms: 0,
                        down_ms: entry.since.elapsed().as_millis() as u64,
                        error: None,
                    });
                }
            }
            tokio::time::sleep(POLL).await;
        }
        if restarts
            .iter()
            .any(|restart| restart.component == stack::front_service(self.build))
            && let Err(error) = self.follow_front().await
        {
            tracing::warn!(error = format!("{error:#}"), "the front after a heal");
        }
        restarts
    }

    async fn take_down(mut self) -> anyhow::Result<()> {
        let removed = self
            .manager()
            .docker(&["stack", "rm", &self.stack])
            .await
            .map(drop);
        if let Some(front) = self.front.take() {
            front.stop().await?;
        }
        // The lab's own cluster goes whole (the stack with it); on an existing swarm the
        // stack goes, and then its volumes, which `docker stack rm` leaves.
        let cluster = self.cluster.take().expect("stopped once");
        if cluster.owns_nodes() {
            cluster.remove().await
        } else {
            removed?;
            remove_stack_volumes(cluster.manager(), &self.stack, self.timeout).await
        }
    }
}

/// The volumes of `stack` on the manager's engine (the database's data, on an existing
/// swarm the database runs on the manager's node), once the stack's containers there are
/// gone: `docker stack rm` returns before they stop, and a volume in use cannot be removed.
/// Volumes on other nodes of an existing swarm are out of the lab's reach.
async fn remove_stack_volumes(
    manager: &Engine,
    stack: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let until = Instant::now() + deadline;
    loop {
        let left = manager
            .docker(&["ps", "--all", "--quiet", "--filter", &namespace])
            .await?;
        if left.trim().is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < until,
            "the stack {stack}'s containers were still there {} s after `docker stack rm`",
            deadline.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
    let volumes = manager
        .docker(&["volume", "ls", "--quiet", "--filter", &namespace])
        .await?;
    for volume in volumes.lines().filter(|line| !line.trim().is_empty()) {
        manager.docker(&["volume", "rm", volume.trim()]).await?;
    }
    Ok(())
}

#[async_trait]
impl Platform for Swarm {
    fn name(&self) -> &'static str {
        REGISTRATION.name
    }

    fn build(&self) -> Build {
        self.build
    }

    fn url(&self) -> &str {
        self.front().url()
    }

    fn direct_url(&self) -> &str {
        &self.direct_url
    }

    fn admin_url(&self) -> &str {
        self.front().admin_url()
    }

    fn admin_token(&self) -> &str {
        &self.admin_token
    }

    fn metrics_token(&self) -> &str {
        &self.metrics_token
    }

    fn describe(&self) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        Some(format!(
            "a swarm of {} node(s), {}; PostgreSQL pinned to the manager node",
            cluster.nodes().len(),
            if cluster.owns_nodes() {
                "docker-in-docker on this machine, made for each build"
            } else {
                "an existing swarm"
            },
        ))
    }

    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault.spec().layer {
            Layer::Process | Layer::InProcess => Ok(()),
            layer => Err(format!(
                "not applicable: the swarm target has no mechanism for {} ({} faults)",
                fault.name(),
                layer.as_str()
            )),
        }
    }

    /// The build's tasks by component; on a topology, whose group processes are no
    /// components, [`Platform::named_probes`] names them.
    async fn probes(&self) -> Vec<(Component, Probe)> {
        if self.layout.is_some() {
            return Vec::new();
        }
        self.task_probes()
            .await
            .into_iter()
            .filter_map(|(name, probe)| Some((Component::parse(&name)?, probe)))
            .collect()
    }

    async fn named_probes(&self) -> Vec<(String, Probe)> {
        self.task_probes().await
    }

    /// The build's tasks by component; none on a topology ([`Platform::named_processes`]
    /// lists its groups' tasks).
    async fn processes(&self) -> Vec<ProcessView> {
        if self.layout.is_some() {
            return Vec::new();
        }
        self.task_views()
            .await
            .into_iter()
            .filter_map(|view| {
                Some(ProcessView {
                    component: Component::parse(&view.name)?,
                    replica: view.replica,
                    url: String::new(),
                    pid: view.pid,
                    running: Some(view.running),
                    cpu_quota_cores: None,
                })
            })
            .collect()
    }

    /// Every task under its process's name (a group's on a topology), for a page to draw.
    async fn named_processes(&self) -> Vec<NamedProcess> {
        self.task_views()
            .await
            .into_iter()
            .map(|view| NamedProcess {
                name: view.name,
                replica: view.replica,
                url: String::new(),
                pid: view.pid,
                running: Some(view.running),
            })
            .collect()
    }

    fn components(&self) -> Vec<Component> {
        Layout::components(self.layout.as_ref(), self.build)
    }

    /// The group's name for a context's component (`buy` for `payments` on `browse-buy`).
    fn process_name(&self, component: Component) -> String {
        self.process_of_service(&self.service_of(component))
    }

    /// Not on a topology, as on the local target: the scale experiment measures one
    /// context's replica, and a group's would add every context it hosts.
    fn adds_replicas(&self) -> Result<(), String> {
        match &self.layout {
            Some(layout) => Err(format!(
                "not applicable: adding a replica on the topology {} on a swarm: a replica \
                 of a group's service adds every context it hosts, not the one the scale \
                 experiment names",
                layout.topology()
            )),
            None => Ok(()),
        }
    }

    async fn front_door_control_url(&self) -> Option<String> {
        Some(self.front().control_url().to_owned())
    }

    async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        anyhow::bail!(
            "the swarm platform's shop runs inside its nodes, behind the nodes' published \
             ports: the lab's null endpoint on this machine would not measure the same path"
        )
    }

    async fn nodes(&self) -> Vec<NodeView> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let tasks = services::tasks(cluster.manager(), &self.stack)
            .await
            .unwrap_or_default();
        let database = cluster.manager_node().hostname.clone();
        cluster
            .nodes()
            .iter()
            .map(|node| NodeView {
                hostname: node.hostname.clone(),
                manager: node.manager,
                holds_database: node.hostname == database,
                tasks: tasks
                    .iter()
                    .filter(|task| task.node == node.hostname)
                    .filter_map(|task| self.component_of_service(&task.service))
                    .collect(),
            })
            .collect()
    }

    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.watch(until).await
    }

    async fn restore(&mut self) -> anyhow::Result<usize> {
        for (engine, container) in std::mem::take(&mut self.paused) {
            let _ = engine.docker(&["unpause", &container]).await;
        }
        for (node, away) in std::mem::take(&mut self.away) {
            self.bring_back(&node, away).await?;
        }
        // Swarm brings tasks back itself; none had to be restarted by the lab.
        self.converge(|_| true).await.map(|_| 0)
    }

    async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        let (task, engine) = self.first_task(component).await?;
        let container = self.container_of(&task).await?;
        engine
            .docker(&["kill", "--signal", "KILL", &container])
            .await?;
        self.killed = Some((task.service.clone(), task.id, Instant::now()));
        Ok(())
    }

    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        if paused {
            let (task, engine) = self.first_task(component).await?;
            let container = self.container_of(&task).await?;
            engine.docker(&["pause", &container]).await?;
            self.paused.push((engine, container));
        } else {
            for (engine, container) in std::mem::take(&mut self.paused) {
                engine.docker(&["unpause", &container]).await?;
            }
        }
        Ok(())
    }

    async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.update(
            component,
            &["--force", "--update-order", "stop-first"],
            "completed",
        )
        .await
        .map(drop)
    }

    async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.update(
            component,
            &["--force", "--update-order", "start-first"],
            "completed",
        )
        .await
        .map(drop)
    }

    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        let message = self
            .update(
                component,
                &[
                    "--env-add",
                    BAD_RELEASE_ENV,
                    "--update-order",
                    "start-first",
                    "--update-failure-action",
                    "rollback",
                ],
                "rollback_completed",
            )
            .await?;
        Ok(format!(
            "{BAD_RELEASE_ENV}: every new task exited at start; Swarm rolled {component} back by \
             itself ({message})"
        ))
    }

    async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        if let Err(why) = self.adds_replicas() {
            anyhow::bail!(why);
        }
        // Refuses the front door, which is no service of the stack.
        self.service(component)?;
        let replicas = services::replicas(self.manager(), &self.stack).await?;
        let one_more = services::one_more_each(&replicas, [component.as_str()])?;
        self.scale(&one_more.wanted).await?;
        Ok(one_more.wanted[component.as_str()] as usize)
    }

    async fn quota_every_process(&mut self, _cores: f64) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(
            "not applicable: on a swarm a task's CPU limit is the stack's \
             (`deploy.resources.limits`), and changing it replaces every task of the service \
             (a rolling update): the first half would not measure the processes the second \
             half scales",
        ))
    }

    async fn lose_node(&mut self, node: &str) -> anyhow::Result<()> {
        self.cluster().kill_node(node).await?;
        self.away.insert(node.to_owned(), Away::Lost);
        self.converge_off(node).await
    }

    async fn drain_node(&mut self, node: &str, drain: Drain) -> anyhow::Result<()> {
        // Recorded before anything is changed, so `return_node` and `restore` undo whatever
        // part of the drain (or of its spares) was done when a step fails.
        self.away.insert(
            node.to_owned(),
            Away::Drained {
                spared: BTreeMap::new(),
            },
        );
        if drain == Drain::WithSpares {
            self.spare_for(node).await?;
        }
        self.manager()
            .docker(&["node", "update", "--availability", "drain", node])
            .await?;
        self.converge_off(node).await
    }

    async fn return_node(&mut self, node: &str) -> anyhow::Result<()> {
        let away = self
            .away
            .remove(node)
            .with_context(|| format!("{node} was neither lost nor drained"))?;
        self.bring_back(node, away).await
    }

    async fn run_generators(
        &mut self,
        job: &crate::GeneratorJob,
    ) -> anyhow::Result<Vec<crate::GeneratorOutput>> {
        let nodes = self.cluster().nodes().len();
        anyhow::ensure!(
            job.count <= nodes,
            "{} generators need as many nodes, one each; the swarm has {nodes}",
            job.count
        );
        generators::run(
            self.manager(),
            &self.stack,
            stack::front_service(self.build),
            &self.lab_image,
            job,
        )
        .await
    }

    async fn stop(self: Box<Self>) -> anyhow::Result<()> {
        (*self).take_down().await
    }
}

/// One task as the lab shows it: under its process's name, numbered per service.
struct TaskView {
    name: String,
    replica: usize,
    pid: Option<u32>,
    running: bool,
}

impl Swarm {
    /// Every running task by the cgroups its node's engine made for its container (the
    /// nodes share this machine's cgroup hierarchy, where they are `/docker/<id>`, limits
    /// enforced), under its process's name, and the front doors by PID.
    async fn task_probes(&self) -> Vec<(String, Probe)> {
        let mut probes: Vec<(String, Probe)> = self
            .front
            .iter()
            .flat_map(Front::pids)
            .map(|pid| (Component::FrontDoor.to_string(), Probe::Pid(pid)))
            .collect();
        let Some(cluster) = self.cluster.as_ref() else {
            return probes;
        };
        let Ok(tasks) = services::tasks(cluster.manager(), &self.stack).await else {
            return probes;
        };
        let tasks: Vec<Task> = tasks.into_iter().filter(|task| task.running).collect();
        let Ok(containers) = services::containers(cluster.manager(), &tasks).await else {
            return probes;
        };
        for (task, container) in tasks.iter().zip(containers) {
            // The stack's database is not the shop's: it counts in neither build's figures.
            if self.component_of_service(&task.service).is_none() {
                continue;
            }
            let group = format!("/docker/{container}");
            probes.push((
                self.process_of_service(&task.service),
                crate::cgroup::container_probe(&group, &group),
            ));
        }
        probes
    }

    /// Every task the swarm wants running, numbered per service in the manager's order. The
    /// tasks' addresses are on the stack's overlay inside the nodes, which this machine
    /// cannot reach, so whether each runs is the swarm's word (its healthcheck passed); its
    /// PID is its container's first process, found through the cgroups the nodes share with
    /// this machine, so its CPU and memory can be read.
    async fn task_views(&self) -> Vec<TaskView> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Vec::new();
        };
        let Ok(tasks) = services::tasks(cluster.manager(), &self.stack).await else {
            return Vec::new();
        };
        let running: Vec<Task> = tasks.iter().filter(|task| task.running).cloned().collect();
        let containers = services::containers(cluster.manager(), &running)
            .await
            .unwrap_or_default();
        let mut replicas: BTreeMap<String, usize> = BTreeMap::new();
        tasks
            .iter()
            // The stack's database is no process of the shop.
            .filter(|task| self.component_of_service(&task.service).is_some())
            .map(|task| {
                let name = self.process_of_service(&task.service);
                let replica = replicas.entry(name.clone()).or_default();
                *replica += 1;
                let pid = running
                    .iter()
                    .zip(&containers)
                    .find(|(candidate, _)| candidate.id == task.id)
                    .and_then(|(_, container)| {
                        crate::cgroup::first_process(&format!("/docker/{container}"))
                    });
                TaskView {
                    name,
                    replica: *replica,
                    pid,
                    running: task.running,
                }
            })
            .collect()
    }

    /// Waits until every service runs its replicas with none on `node`, and the front
    /// answers on another node.
    async fn converge_off(&mut self, node: &str) -> anyhow::Result<()> {
        let gone = node.to_owned();
        services::wait_converged(self.manager(), &self.stack, self.timeout, move |tasks| {
            tasks.iter().all(|task| task.node != gone)
        })
        .await?;
        let address = self
            .cluster()
            .nodes()
            .iter()
            .find(|candidate| candidate.hostname == node)
            .map(|node| node.address.clone())
            .unwrap_or_default();
        let timeout = self.timeout;
        self.front
            .as_mut()
            .expect("a running swarm has its front")
            .wait_ready_where(timeout, |ready| {
                !ready.is_empty() && !ready.contains(&address)
            })
            .await?;
        self.follow_front().await
    }

    /// Before a drain with spares: `node` takes no new task (`pause`), every service with a
    /// task on it gets one more replica, and this waits until Swarm runs them (each on
    /// another node, since the node is paused) and the front answers. Callers need not be
    /// told: a spare is in its service's `tasks.` DNS answer once it runs, so the callers'
    /// next look-up (every [`stack::RESOLVE_MS`]) finds it, at the latest the one that drops
    /// the drained task, which meanwhile answers for the stop's delay.
    ///
    /// The node must already be in `away` (as drained): the replica counts to scale back to
    /// are written there before the scale, so a scale that fails half-way is still undone
    /// (and the node un-paused) when the node returns.
    async fn spare_for(&mut self, node: &str) -> anyhow::Result<()> {
        self.manager()
            .docker(&["node", "update", "--availability", "pause", node])
            .await?;
        let on_node: std::collections::BTreeSet<String> =
            services::tasks(self.manager(), &self.stack)
                .await?
                .into_iter()
                .filter(|task| task.node == node)
                .map(|task| task.service)
                .collect();
        let replicas = services::replicas(self.manager(), &self.stack).await?;
        let one_more = services::one_more_each(&replicas, on_node.iter().map(String::as_str))?;
        self.away.insert(
            node.to_owned(),
            Away::Drained {
                spared: one_more.before,
            },
        );
        self.scale(&one_more.wanted).await
    }

    /// `docker service scale` of the stack's services (named without the stack's prefix) to
    /// these replica counts, then waits until Swarm runs them and the front answers.
    async fn scale(&mut self, replicas: &BTreeMap<String, u32>) -> anyhow::Result<()> {
        if replicas.is_empty() {
            return Ok(());
        }
        let mut call: Vec<String> = ["service", "scale", "--detach"].map(str::to_owned).to_vec();
        call.extend(
            replicas
                .iter()
                .map(|(service, count)| format!("{}_{service}={count}", self.stack)),
        );
        let call: Vec<&str> = call.iter().map(String::as_str).collect();
        self.manager().docker(&call).await?;
        self.converge(|_| true).await.map(|_| ())
    }

    /// Starts a lost node again (its engine rejoins with the state on its volume), or makes a
    /// drained one active; then waits until the swarm sees every node ready.
    async fn bring_back(&mut self, node: &str, away: Away) -> anyhow::Result<()> {
        match away {
            Away::Lost => {
                let cluster = self
                    .cluster
                    .as_mut()
                    .expect("a running swarm has its cluster");
                cluster.start_node(node).await?;
                if let Some(front) = &self.front {
                    front.set_nodes(cluster.nodes());
                }
            }
            Away::Drained { spared } => {
                self.manager()
                    .docker(&["node", "update", "--availability", "active", node])
                    .await?;
                self.scale(&spared).await?;
            }
        }
        self.cluster().wait_nodes_ready(self.timeout).await
    }
}
