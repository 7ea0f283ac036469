//! The swarm a build runs on: by default one the lab makes itself, N docker-in-docker nodes
//! on a network of its own on this machine's engine, removed at the end; or an existing
//! swarm reached through its manager's engine (`--swarm-manager`), which the lab only
//! deploys to and never tears down.
//!
//! A node of the lab's own is a container of `shoplab/swarm-node` (deploy/swarm/: Debian's
//! docker.io running its own dockerd) started with every capability but CAP_SYS_RESOURCE
//! (`--privileged` fails on these machines: root lacks it), no seccomp or AppArmor profile,
//! the host's cgroup hierarchy, and a volume for its `/var/lib/docker`. The first node
//! inits the swarm and is its one manager; the others join as workers. Images reach the
//! nodes by `docker save | docker load`, since nothing can be pulled here.
//!
//! Everything made for one cluster carries its name (`<prefix>-node-<i>`, the network
//! `<prefix>`, the volumes `<prefix>-node-<i>-docker`) and the label `shoplab.swarm=<prefix>`,
//! so removing it touches nothing else on the engine, and a cluster dropped without
//! [`Cluster::remove`] (a failed start, a panic, Ctrl-C) is removed by its [`Teardown`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::try_join_all;

use crate::tool::{self, Call};

/// Any one docker call that is not a deploy.
const CALL_DEADLINE: Duration = Duration::from_secs(120);
/// How long a node's own engine may take to answer after its container starts.
const NODE_DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

/// A node of the swarm as the lab reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its hostname in the swarm (`docker node ls`).
    pub hostname: String,
    /// The address its published ports answer on.
    pub address: String,
    /// The container that is this node, when the lab made it.
    pub container: Option<String>,
    pub manager: bool,
    /// Whether this is the node whose engine the lab's manager calls reach (`docker node ls`
    /// marks it as self).
    pub reached: bool,
}

/// How to run `docker` against one node's engine: the swarm's manager, or the node that
/// runs a task the lab kills or pauses.
#[derive(Clone, Debug)]
pub struct Engine {
    /// The arguments before every call's own: `exec -i <node> docker` for a node of the
    /// lab's, `-H <url>` for an existing swarm's manager.
    leading: Vec<String>,
}

impl Engine {
    /// `docker <args>` on this engine, with a deadline; its stdout.
    pub async fn docker(&self, args: &[&str]) -> anyhow::Result<String> {
        self.docker_with(args, None, CALL_DEADLINE).await
    }

    /// The same, with `input` on stdin (a stack file holding secrets).
    pub async fn docker_with(
        &self,
        args: &[&str],
        input: Option<Vec<u8>>,
        deadline: Duration,
    ) -> anyhow::Result<String> {
        tool::run(Call {
            program: "docker",
            leading: &self.leading,
            args,
            env: &[],
            input,
            deadline,
        })
        .await
    }
}

/// `docker <args>` on this machine's engine.
async fn host(args: &[&str]) -> anyhow::Result<String> {
    tool::run(Call {
        program: "docker",
        leading: &[],
        args,
        env: &[],
        input: None,
        deadline: CALL_DEADLINE,
    })
    .await
}

/// What a cluster of the lab's own is made of.
pub struct ClusterPlan<'a> {
    /// Names everything the cluster makes.
    pub prefix: String,
    pub nodes: usize,
    /// `shoplab/swarm-node:<tag>`.
    pub node_image: String,
    /// Images every node needs.
    pub images: &'a [String],
    /// Images only the manager node needs (the database's).
    pub manager_images: &'a [String],
}

/// A running swarm.
pub struct Cluster {
    manager: Engine,
    nodes: Vec<Node>,
    /// `None` for an existing swarm, which the lab never removes.
    own: Option<Teardown>,
}

impl Cluster {
    /// Makes the lab's own swarm of `plan.nodes` nodes, images loaded, every node ready. On
    /// an error, everything already made is removed before it returns.
    pub async fn create(plan: &ClusterPlan<'_>) -> anyhow::Result<Cluster> {
        anyhow::ensure!(plan.nodes >= 1, "a swarm needs at least one node");
        preflight(plan).await?;
        let teardown = Teardown {
            prefix: plan.prefix.clone(),
            armed: true,
        };
        let network = plan.prefix.as_str();
        let label = format!("shoplab.swarm={}", plan.prefix);
        host(&[
            "network", "create", "--driver", "bridge", "--label", &label, network,
        ])
        .await
        .context("create the swarm's network")?;
        let names: Vec<String> = (1..=plan.nodes)
            .map(|index| format!("{}-node-{index}", plan.prefix))
            .collect();
        for name in &names {
            let volume = format!("{name}-docker:/var/lib/docker");
            host(&[
                "run",
                "--detach",
                "--name",
                name,
                "--hostname",
                name,
                "--network",
                network,
                "--label",
                &label,
                // Every capability but one: root here lacks CAP_SYS_RESOURCE, which
                // `--privileged` asks for and fails on (ENVIRONMENT.md).
                "--cap-add",
                "ALL",
                "--cap-drop",
                "SYS_RESOURCE",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--security-opt",
                "systempaths=unconfined",
                "--volume",
                "/sys/fs/cgroup:/sys/fs/cgroup",
                "--volume",
                &volume,
                &plan.node_image,
            ])
            .await
            .with_context(|| format!("start the swarm node {name}"))?;
        }
        let mut nodes = Vec::new();
        for name in &names {
            let address = address_of(name).await?;
            wait_engine(name).await?;
            nodes.push(Node {
                hostname: name.clone(),
                address,
                container: Some(name.clone()),
                manager: nodes.is_empty(),
                reached: nodes.is_empty(),
            });
        }
        let manager = Engine {
            leading: vec![
                "exec".into(),
                "-i".into(),
                names[0].clone(),
                "docker".into(),
            ],
        };
        manager
            .docker(&["swarm", "init", "--advertise-addr", &nodes[0].address])
            .await
            .context("docker swarm init on the first node")?;
        let token = manager
            .docker(&["swarm", "join-token", "--quiet", "worker"])
            .await?
            .trim()
            .to_owned();
        let join_address = format!("{}:2377", nodes[0].address);
        for node in &nodes[1..] {
            let name = node.container.as_deref().expect("a node of the lab's");
            host(&[
                "exec",
                name,
                "docker",
                "swarm",
                "join",
                "--token",
                &token,
                &join_address,
            ])
            .await
            .with_context(|| format!("{name} could not join the swarm"))?;
        }
        try_join_all(nodes.iter().map(|node| {
            let name = node.container.clone().expect("a node of the lab's");
            let mut images = plan.images.to_vec();
            if node.manager {
                images.extend(plan.manager_images.iter().cloned());
            }
            async move { load_images(&name, &images).await }
        }))
        .await?;
        let cluster = Cluster {
            manager,
            nodes,
            own: Some(teardown),
        };
        cluster.wait_nodes_ready(NODE_DEADLINE).await?;
        Ok(cluster)
    }

    /// An existing swarm, through its manager's engine at `url` (`tcp://…`, `ssh://…`,
    /// `unix://…`). Its nodes must already hold the images (or reach a registry with them).
    pub async fn existing(url: &str) -> anyhow::Result<Cluster> {
        let manager = Engine {
            leading: vec!["-H".into(), url.to_owned()],
        };
        let role = manager
            .docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"])
            .await
            .with_context(|| format!("reach the swarm manager at {url}"))?;
        anyhow::ensure!(
            role.trim() == "true",
            "{url} is not a swarm manager (docker info: Swarm.ControlAvailable = {})",
            role.trim()
        );
        let mut cluster = Cluster {
            manager,
            nodes: Vec::new(),
            own: None,
        };
        cluster.nodes = cluster.read_nodes().await?;
        Ok(cluster)
    }

    pub fn manager(&self) -> &Engine {
        &self.manager
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The engine of the node `hostname`, where the lab reaches it: a node of its own
    /// through `docker exec`; on an existing swarm, only the node whose engine is the
    /// manager's (on a swarm of one host, every task's). `None`: out of the lab's reach.
    pub fn engine_of(&self, hostname: &str) -> Option<Engine> {
        let node = self.nodes.iter().find(|node| node.hostname == hostname)?;
        match &node.container {
            Some(container) => Some(Engine {
                leading: vec![
                    "exec".into(),
                    "-i".into(),
                    container.clone(),
                    "docker".into(),
                ],
            }),
            None => node.reached.then(|| self.manager.clone()),
        }
    }

    /// Whether the lab made these nodes, and so may kill and restart them.
    pub fn owns_nodes(&self) -> bool {
        self.own.is_some()
    }

    /// The node that runs the swarm's control plane (the database is pinned there).
    pub fn manager_node(&self) -> &Node {
        self.nodes
            .iter()
            .find(|node| node.manager)
            .unwrap_or(&self.nodes[0])
    }

    /// Every node and whether the swarm sees it ready and active: `(hostname, ready, active)`.
    pub async fn node_states(&self) -> anyhow::Result<Vec<(String, bool, bool)>> {
        let listed = self
            .manager
            .docker(&[
                "node",
                "ls",
                "--format",
                "{{.Hostname}} {{.Status}} {{.Availability}}",
            ])
            .await?;
        Ok(listed
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let hostname = fields.next()?.to_owned();
                let ready = fields.next()? == "Ready";
                let active = fields.next()? == "Active";
                Some((hostname, ready, active))
            })
            .collect())
    }

    /// Waits until every node is ready and active.
    pub async fn wait_nodes_ready(&self, deadline: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + deadline;
        loop {
            let states = self.node_states().await?;
            let ready = states.iter().filter(|(_, ready, active)| *ready && *active);
            if states.len() >= self.nodes.len() && ready.count() == states.len() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < until,
                "swarm nodes not ready within {deadline:?}: {states:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Kills a node of the lab's as a host dies: its engine and every task on it at once.
    pub async fn kill_node(&self, hostname: &str) -> anyhow::Result<()> {
        let container = self.own_container(hostname)?;
        host(&["kill", "--signal", "KILL", container])
            .await
            .map(drop)
    }

    /// Starts a killed node again; its engine rejoins the swarm with the state on its
    /// volume. The engine gives the container a new address on the network (its address
    /// pool hands them out in turn), which the node then has.
    pub async fn start_node(&mut self, hostname: &str) -> anyhow::Result<()> {
        let container = self.own_container(hostname)?.to_owned();
        host(&["start", &container]).await?;
        wait_engine(&container).await?;
        let address = address_of(&container).await?;
        if let Some(node) = self.nodes.iter_mut().find(|node| node.hostname == hostname) {
            node.address = address;
        }
        Ok(())
    }

    fn own_container(&self, hostname: &str) -> anyhow::Result<&str> {
        anyhow::ensure!(
            self.owns_nodes(),
            "not applicable: the nodes of an existing swarm are not the lab's to kill"
        );
        self.nodes
            .iter()
            .find(|node| node.hostname == hostname)
            .and_then(|node| node.container.as_deref())
            .with_context(|| format!("no node {hostname} in this swarm"))
    }

    /// `docker node ls` with each node's address.
    async fn read_nodes(&self) -> anyhow::Result<Vec<Node>> {
        let listed = self
            .manager
            .docker(&[
                "node",
                "ls",
                "--format",
                "{{.ID}} {{.Hostname}} {{.Self}} {{.ManagerStatus}}",
            ])
            .await?;
        let mut nodes = Vec::new();
        for line in listed.lines() {
            let mut fields = line.split_whitespace();
            let (Some(id), Some(hostname), Some(reached)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let address = self
                .manager
                .docker(&["node", "inspect", "--format", "{{.Status.Addr}}", id])
                .await?
                .trim()
                .to_owned();
            nodes.push(Node {
                hostname: hostname.to_owned(),
                address,
                container: None,
                manager: fields.next().is_some(),
                reached: reached == "true",
            });
        }
        anyhow::ensure!(!nodes.is_empty(), "the swarm lists no node");
        Ok(nodes)
    }

    /// Removes the lab's own cluster: its nodes (and so every task on them), their volumes
    /// and the network. An existing swarm is left as it is.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        if let Some(mut teardown) = self.own.take() {
            teardown.armed = false;
            let prefix = teardown.prefix.clone();
            tokio::task::spawn_blocking(move || remove_labelled(&prefix)).await??;
        }
        Ok(())
    }
}

/// What a cluster needs from this machine, each missing piece named with its fix before
/// anything is made.
async fn preflight(plan: &ClusterPlan<'_>) -> anyhow::Result<()> {
    host(&["info", "--format", "{{.ServerVersion}}"])
        .await
        .context(
            "no Docker engine answers: install Debian's docker.io and start dockerd \
             (.ci/docker.sh does both)",
        )?;
    let mut missing = Vec::new();
    for image in std::iter::once(&plan.node_image)
        .chain(plan.images)
        .chain(plan.manager_images)
    {
        if host(&["image", "inspect", "--format", "{{.Id}}", image])
            .await
            .is_err()
        {
            missing.push(image.clone());
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "images missing on this machine's engine: {}; build them with \
         deploy/docker/build-images.sh and deploy/swarm/build-images.sh (with the same \
         SHOPLAB_TAG; shoplab/shoplab, the generators' image, with SHOPLAB_LAB_IMAGE=1)",
        missing.join(", ")
    );
    Ok(())
}

/// A node container's address on the cluster's network.
async fn address_of(container: &str) -> anyhow::Result<String> {
    let address = host(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ])
    .await?;
    let address = address.trim();
    anyhow::ensure!(!address.is_empty(), "{container} has no address");
    Ok(address.to_owned())
}

/// Waits until the engine inside a node answers.
async fn wait_engine(container: &str) -> anyhow::Result<()> {
    let until = Instant::now() + NODE_DEADLINE;
    loop {
        let answer = host(&["exec", container, "docker", "info", "--format", "{{.ID}}"]).await;
        match answer {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() >= until => {
                let logs = host(&["logs", "--tail", "20", container])
                    .await
                    .unwrap_or_default();
                return Err(error.context(format!(
                    "the engine inside {container} did not answer within {NODE_DEADLINE:?}; \
                     its last lines:\n{logs}"
                )));
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `docker save <images> | docker exec -i <node> docker load`.
async fn load_images(node: &str, images: &[String]) -> anyhow::Result<()> {
    let mut save = tokio::process::Command::new("docker")
        .arg("save")
        .args(images)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run docker save")?;
    let stream: Stdio = save
        .stdout
        .take()
        .context("docker save's stdout is piped")?
        .try_into()
        .context("pipe docker save into docker load")?;
    let load = tokio::process::Command::new("docker")
        .args(["exec", "-i", node, "docker", "load", "--quiet"])
        .stdin(stream)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("run docker load on the node")?;
    let (saved, loaded) = tokio::time::timeout(CALL_DEADLINE, async {
        tokio::join!(save.wait_with_output(), load.wait_with_output())
    })
    .await
    .with_context(|| format!("loading images into {node}: no end within {CALL_DEADLINE:?}"))?;
    let (saved, loaded) = (saved?, loaded?);
    anyhow::ensure!(
        saved.status.success(),
        "docker save {}: {}",
        images.join(" "),
        String::from_utf8_lossy(&saved.stderr).trim()
    );
    anyhow::ensure!(
        loaded.status.success(),
        "docker load on {node}: {}",
        String::from_utf8_lossy(&loaded.stderr).trim()
    );
    Ok(())
}

/// Removes every container, volume and network labelled as this cluster's. Blocking, so
/// that a drop can run it too; the async caller runs it on a blocking thread.
fn remove_labelled(prefix: &str) -> anyhow::Result<()> {
    let docker = |args: &[&str]| -> anyhow::Result<Vec<String>> {
        let output = std::process::Command::new("docker")
            .args(args)
            .output()
            .with_context(|| format!("run docker {}", args.join(" ")))?;
        anyhow::ensure!(
            output.status.success(),
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    };
    let filter = format!("label=shoplab.swarm={prefix}");
    let containers = docker(&["ps", "--all", "--quiet", "--filter", &filter])?;
    if !containers.is_empty() {
        let mut args = vec!["rm", "--force", "--volumes"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args)?;
    }
    // The nodes' named volumes carry no label (`docker run --volume` makes them), so they
    // go by name.
    let by_name = format!("name={prefix}-node-");
    let volumes = docker(&["volume", "ls", "--quiet", "--filter", &by_name])?;
    if !volumes.is_empty() {
        let mut args = vec!["volume", "rm", "--force"];
        args.extend(volumes.iter().map(String::as_str));
        docker(&args)?;
    }
    for network in docker(&["network", "ls", "--quiet", "--filter", &filter])? {
        docker(&["network", "rm", &network])?;
    }
    Ok(())
}

/// Removes the cluster when dropped while armed: what a failed start, or a cluster dropped
/// without `remove`, leaves behind.
struct Teardown {
    prefix: String,
    armed: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.armed
            && let Err(error) = remove_labelled(&self.prefix)
        {
            eprintln!("removing the swarm {}: {error:#}", self.prefix);
        }
    }
}
