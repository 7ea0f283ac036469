//! The `compose` platform: the build as the containers of `docker-compose.yml` (one profile),
//! deployed, broken and measured through the Docker engine, with the lab's front door on the
//! host in front of the monolith's or the gateway's published port — the same hop the local
//! target pays, so a rolling deploy of the public process can move traffic.
//!
//! How each operation is realized, and why:
//! - start: `docker-compose --profile <build> up -d --no-build` under a project name of the
//!   lab's own, with the public ports published on ephemeral loopback ports (an empty
//!   `SHOPLAB_PORT`), so two runs never collide; every container is then held to the cores the
//!   system under test is pinned to (`docker update --cpuset-cpus`), as the local target's
//!   processes are.
//! - readiness: the lab asks `GET /ready` of each container on its address in the project's
//!   bridge network (the host routes to the networks it created). The engine's own health
//!   check runs every 10 s, far too coarse to time a deploy by.
//! - recreate: `up -d --no-deps --force-recreate <service>`: the engine stops the container
//!   (SIGTERM, drain) and starts a new one.
//! - rolling: `up -d --no-deps --no-recreate --scale <service>=2`, wait until the new
//!   container is ready, move traffic, stop and remove the old one. Inside the build,
//!   callers find a service by its compose DNS name, which names every container of the
//!   service: the new one from its start, the old one until it is stopped. No caller is told
//!   anything, as in a plain compose deployment; what that costs is what the lab measures.
//! - kill: SIGKILL to the container's process (its host PID), a crash as the engine sees
//!   it, so the restart policy (`unless-stopped`) brings it back; the lab watches it do so.
//! - pause: `docker pause` / `unpause` (the freezer cgroup).
//! - network cut: `docker network disconnect` every container of the service, reconnected
//!   with its DNS alias at heal. Latency and resets need a proxy the compose file does not
//!   have: not applicable here.
//! - CPU limit: `docker update --cpus`, the compose file's own limit put back at heal.
//! - CPU and memory: the engine's cgroup v1 accounting of each container (`cpuacct.usage`,
//!   `memory.usage_in_bytes`: what `docker stats` reads), plus the front door's process.
//!
//! A topology between the two builds (`--topologies browse-buy`) runs from a compose file
//! generated for it from the micro profile ([`topology`]): one container per group of
//! contexts (the `shoplab/host` image), the gateway in front, written beside the run's
//! results. A component names a process as on the local target: `Service(context)` is the
//! container of the group hosting `context`, so killing `payments` on `browse-buy` kills
//! `buy`, and rolling it rolls `buy`. Not realized there, with the reason: a replica, and the
//! network cut (it would cut every context of the group, not the one named).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::faults::{Fault, Layer};

mod deploy;
mod engine;
mod faults;
pub mod topology;

use engine::{
    Container, docker, exited_at, inspect, is_ready, project_containers, remove_labelled, run,
    wait_ready,
};
use faults::Restore;

use std::any::Any;

use async_trait::async_trait;
use futures::FutureExt as _;

use crate::cgroup;
use crate::sidecars::door::FrontDoor;
use crate::sidecars::fault_proxy::NetworkFault;
use crate::{
    Injection, NamedProcess, Platform, Probe, ProcessView, Registration, Restart, TargetSettings,
};
use loadtest_results::component::{Build, Component};
use topology::Layout;

/// How `--target compose` finds the engine's images and names its projects.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Compose target")]
pub struct ComposeArgs {
    /// The compose file (the swarm target renders its stack from it too).
    #[arg(long, default_value = "docker-compose.yml", value_name = "FILE")]
    pub compose_file: PathBuf,
    /// The images' tag (`shoplab/<name>:<tag>`, as deploy/docker/build-images.sh tagged them;
    /// the swarm target's too).
    #[arg(long, default_value = "latest", env = "SHOPLAB_TAG")]
    pub image_tag: String,
    /// The projects' name prefix (default `shoplab-lab-<pid>`); the run uses
    /// `<prefix>-monolith` and `<prefix>-micro` and takes both down at the end.
    #[arg(long, value_name = "NAME")]
    pub compose_project: Option<String>,
}

impl ComposeArgs {
    /// The compose platform's settings from its flags; `cpus` are the cores the containers
    /// are held to (the shop's, as on every platform).
    pub fn settings(&self, cpus: Vec<usize>) -> ComposeSettings {
        ComposeSettings {
            command: Vec::new(),
            file: self.compose_file.clone(),
            tag: self.image_tag.clone(),
            cpus,
            project: self.compose_project.clone(),
            generated: None,
        }
    }
}

/// How the lab reaches the Docker engine and which images it runs.
#[derive(Clone, Debug)]
pub struct ComposeSettings {
    /// The compose command: `docker-compose` (v1) or `docker compose` (v2); found on PATH when
    /// empty.
    pub command: Vec<String>,
    /// The compose file (default `docker-compose.yml` in the current folder).
    pub file: PathBuf,
    /// The image tag (`SHOPLAB_TAG`), as `deploy/docker/build-images.sh` built them.
    pub tag: String,
    /// The cores every container is held to (the system under test's; empty: any).
    pub cpus: Vec<usize>,
    /// The compose projects' names start with this (then `-monolith` or `-micro`); default
    /// `shoplab-lab-<pid>`, so concurrent runs on one engine never share containers.
    pub project: Option<String>,
    /// Where the compose file generated for a topology between the builds is written, so a
    /// user can read what ran (`compare`: the run's results folder); a temporary folder,
    /// removed at stop, when `None`.
    pub generated: Option<PathBuf>,
}

impl ComposeSettings {
    fn project_prefix(&self) -> String {
        self.project
            .clone()
            .unwrap_or_else(|| format!("shoplab-lab-{}", std::process::id()))
    }
}

impl Default for ComposeSettings {
    fn default() -> ComposeSettings {
        ComposeSettings {
            command: Vec::new(),
            file: PathBuf::from("docker-compose.yml"),
            tag: "latest".to_owned(),
            cpus: Vec::new(),
            project: None,
            generated: None,
        }
    }
}

/// The `compose` platform's entry in [`crate::PLATFORMS`]. Each container's limits and its
/// database come from the compose file (`deploy/docker/postgres.yml` for PostgreSQL).
pub(crate) const REGISTRATION: Registration = Registration {
    name: "compose",
    start: |build, settings| {
        async move { Ok(Box::new(Compose::start(build, settings).await?) as Box<dyn Platform>) }
            .boxed()
    },
    start_topology: Some(|topology, settings| {
        async move {
            Ok(Box::new(Compose::start_topology(topology, settings).await?) as Box<dyn Platform>)
        }
        .boxed()
    }),
    takes_process_limits: false,
    takes_database_server: false,
    has_nodes: false,
    places_generators: false,
    database: None,
};

/// One build running as a compose project.
pub struct Compose {
    build: Build,
    /// The groups' services, on a topology between the builds; `None` for a build.
    layout: Option<Layout>,
    command: Vec<String>,
    project: String,
    /// The environment every compose call gets: tag, secrets, ports.
    env: Vec<(String, String)>,
    admin_token: String,
    /// Opens every container's `/metrics` and nothing else.
    metrics_token: String,
    /// The deployment's service key pairs; the compose file hands each container its own
    /// private key (`SHOPLAB_SERVICE_KEY_<NAME>`) and every public key.
    service_keys: domain::trust::Keyring,
    front_door: FrontDoor,
    /// The monolith's or the gateway's published port, past the front door.
    direct_url: String,
    admin_url: String,
    cpuset: Option<String>,
    /// Each container's restart count when the lab last looked (see `watch_restarts_until`).
    restart_counts: BTreeMap<String, u64>,
    http: reqwest::Client,
    teardown: Teardown,
    /// The folder of the generated compose file when it is a temporary one. Last: fields
    /// drop in order, and the teardown of a dropped target still reads the file.
    _generated: Option<tempfile::TempDir>,
}

/// Why a network cut is not realized on a topology between the builds.
const CUT_ON_A_GROUP: &str = "`docker network disconnect` of the container hosting the \
    context would cut every context of its group, and their calls to each other are \
    in-process; the microservices build, a container per context, realizes it";

/// How long a container may take to answer `/ready` after a start, a recreate or a restart.
const READY_DEADLINE: Duration = Duration::from_secs(120);
/// How long the lab waits for a release that will never be ready before it gives it up.
const BAD_RELEASE_DEADLINE: Duration = Duration::from_secs(10);
/// The pause between moving traffic off a container and stopping it, as on the local target.
const DEREGISTRATION_DELAY: Duration = Duration::from_millis(250);
/// How long a container gets to drain after SIGTERM (the compose file's `stop_grace_period`).
const STOP_GRACE_S: u32 = 10;

impl Compose {
    async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Compose> {
        let project = format!("{}-{build}", settings.compose.project_prefix());
        let file = settings.compose.file.clone();
        Compose::launch(build, None, project, file, settings).await
    }

    /// A topology between the builds: its compose file generated from the micro profile's
    /// services and written out, then started as a build is.
    async fn start_topology(
        topology: domain::Topology,
        settings: &TargetSettings,
    ) -> anyhow::Result<Compose> {
        let compose = &settings.compose;
        let layout = Layout::of(&topology);
        let slug = layout.slug();
        let project = format!("{}-{slug}", compose.project_prefix());
        let source = std::fs::read_to_string(&compose.file)
            .with_context(|| format!("read {}", compose.file.display()))?;
        let text = topology::render_text(&source, &topology)
            .with_context(|| format!("generate the compose file of the topology {topology}"))?;
        let (folder, temporary) = match &compose.generated {
            Some(folder) => (folder.clone(), None),
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("shoplab-compose-")
                    .tempdir()
                    .context("create a folder for the generated compose file")?;
                (temporary.path().to_owned(), Some(temporary))
            }
        };
        std::fs::create_dir_all(&folder).with_context(|| format!("create {}", folder.display()))?;
        let file = folder.join(format!("compose-{slug}.yml"));
        std::fs::write(&file, text).with_context(|| format!("write {}", file.display()))?;
        tracing::info!(file = %file.display(), %topology, "the topology's compose file");
        let mut started =
            Compose::launch(Build::Micro, Some(layout), project, file, settings).await?;
        started._generated = temporary;
        Ok(started)
    }

    /// Starts `file` (a build's profile of it, or a topology's whole file) as `project`.
    async fn launch(
        build: Build,
        layout: Option<Layout>,
        project: String,
        file: PathBuf,
        settings: &TargetSettings,
    ) -> anyhow::Result<Compose> {
        let compose = &settings.compose;
        let command = if compose.command.is_empty() {
            default_command()
        } else {
            compose.command.clone()
        };
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let metrics_token = hex::encode(rand::random::<[u8; 16]>());
        let service_keys = domain::trust::Keyring::generate();
        let mut env = vec![
            ("SHOPLAB_TAG".to_owned(), compose.tag.clone()),
            ("SHOPLAB_ADMIN_TOKEN".to_owned(), admin_token.clone()),
            ("SHOPLAB_METRICS_TOKEN".to_owned(), metrics_token.clone()),
            (
                "SHOPLAB_TOKEN_SECRET".to_owned(),
                hex::encode(rand::random::<[u8; 24]>()),
            ),
            // Empty: the engine picks free loopback ports (`127.0.0.1::8080`).
            ("SHOPLAB_PORT".to_owned(), String::new()),
            ("SHOPLAB_ADMIN_PORT".to_owned(), String::new()),
        ];
        env.extend(compose_key_environment(&service_keys));
        let mut command = command;
        command.extend([
            "--project-name".to_owned(),
            project.clone(),
            "--file".to_owned(),
            file.display().to_string(),
        ]);
        // A topology's file is all its own: no profiles in it.
        if layout.is_none() {
            command.extend(["--profile".to_owned(), build.as_str().to_owned()]);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
            .build()?;
        let cpuset = (!compose.cpus.is_empty()).then(|| {
            compose
                .cpus
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        // From here on, a failed start takes down what it made (a failed `up` can leave a
        // half-made project behind), and so does a target dropped without `stop` (a failed
        // test, a panic).
        let teardown = Teardown {
            command: command.clone(),
            env: env.clone(),
            armed: true,
        };
        let what = layout.as_ref().map_or_else(
            || format!("the {build} build"),
            |layout| format!("the topology {}", layout.topology()),
        );
        run(&command, &["up", "--detach", "--no-build"], &env)
            .await
            .with_context(|| format!("start {what} with compose"))?;
        let front = front_service(build);
        let containers = project_containers(&project).await?;
        for container in &containers {
            wait_ready(&http, container, READY_DEADLINE).await?;
            if let Some(cpuset) = &cpuset {
                docker(&["update", "--cpuset-cpus", cpuset, &container.id]).await?;
            }
        }
        let public = containers
            .iter()
            .find(|container| container.service == front)
            .with_context(|| format!("{what} has no {front} container"))?;
        let direct_url = public.published(8080)?;
        let admin_url = match build {
            Build::Monolith => direct_url.clone(),
            Build::Micro => public.published(8081)?,
        };
        let front_door = FrontDoor::start(
            &settings.program,
            std::slice::from_ref(&direct_url),
            &settings.env,
            settings.forward_logs,
        )
        .await?;
        let mut compose = Compose {
            build,
            layout,
            command,
            project,
            service_keys,
            env,
            admin_token,
            metrics_token,
            front_door,
            direct_url,
            admin_url,
            cpuset,
            restart_counts: BTreeMap::new(),
            http,
            teardown,
            _generated: None,
        };
        compose.note_restart_counts().await?;
        Ok(compose)
    }

    fn front_url(&self) -> &str {
        self.front_door.url()
    }

    fn published_url(&self) -> &str {
        &self.direct_url
    }

    fn admin_base(&self) -> &str {
        &self.admin_url
    }

    fn token(&self) -> &str {
        &self.admin_token
    }

    /// The catalog service is reached on its address in the project's network: the hop
    /// ladder's service rung, as on the local target.
    async fn front_door_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        let catalog = match self.build {
            Build::Monolith => None,
            Build::Micro => {
                let container = self.first(Component::Service(Context::Catalog)).await?;
                Some(format!("http://{}:8080", container.ip))
            }
        };
        Ok((self.front_door.control_url().to_owned(), catalog))
    }

    /// Each running container by its cgroups under its process's name (a component's, or
    /// on a topology a group's), and the front door by its PID.
    async fn container_probes(&self) -> Vec<(String, Probe)> {
        let mut probes = vec![(
            Component::FrontDoor.to_string(),
            Probe::Pid(self.front_door.pid()),
        )];
        let Ok(containers) = project_containers(&self.project).await else {
            return probes;
        };
        for container in containers.iter().filter(|container| container.running) {
            let (Ok(cpuacct), Ok(memory)) = (
                cgroup::group_of(container.pid, "cpuacct"),
                cgroup::group_of(container.pid, "memory"),
            ) else {
                continue;
            };
            probes.push((
                self.process_of_service(&container.service),
                cgroup::container_probe(&cpuacct, &memory),
            ));
        }
        probes
    }

    /// The name the results give the process a compose service runs: the service's own for
    /// a build (`catalog`), its group's on a topology (`buy`).
    fn process_of_service(&self, service: &str) -> String {
        Layout::process_of(self.layout.as_ref(), service)
    }

    /// The compose service that runs `component`: on a topology, a context's is its group's.
    fn service_of(&self, component: Component) -> String {
        Layout::service_for(self.layout.as_ref(), component)
    }

    /// Why an operation is not realized on a topology between the builds.
    fn not_on_topology(&self, what: &str, why: &str) -> Option<String> {
        self.layout.as_ref().map(|layout| {
            format!(
                "not applicable: {what} on the topology {} on compose: {why}",
                layout.topology()
            )
        })
    }

    /// Watches the engine's restart policy at work until `until`: a container whose process
    /// exited (its restart count went up, or it is not running) is one restart once it is
    /// ready again; it was down from the exit the engine recorded until then.
    async fn watch_restarts_until(&mut self, until: Instant) -> Vec<Restart> {
        let mut restarts = Vec::new();
        let mut down: BTreeMap<String, Instant> = BTreeMap::new();
        while Instant::now() < until {
            if let Ok(containers) = project_containers(&self.project).await {
                for container in containers {
                    let known = self.restart_counts.get(&container.id).copied();
                    let restarted = known.is_some_and(|count| container.restarts > count);
                    self.restart_counts
                        .insert(container.id.clone(), container.restarts);
                    if (restarted || !container.running) && !down.contains_key(&container.id) {
                        down.insert(container.id.clone(), exited_at(&container));
                    }
                    let back = down.contains_key(&container.id)
                        && container.running
                        && is_ready(&self.http, &container).await;
                    if let Some(since) = back.then(|| down.remove(&container.id)).flatten() {
                        // A restarted container gets new ephemeral host ports: the front door
                        // must follow, or it would keep sending to the old ones.
                        if container.service == front_service(self.build) {
                            let _ = self.follow_front().await;
                        }
                        restarts.push(Restart {
                            component: self.process_of_service(&container.service),
                            at: since,
                            backoff_ms: 0,
                            down_ms: since.elapsed().as_millis() as u64,
                            error: None,
                        });
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        restarts
    }

    /// Remembers every container's restart count, so the next watch sees restarts that
    /// happen before its first look.
    async fn note_restart_counts(&mut self) -> anyhow::Result<()> {
        for container in project_containers(&self.project).await? {
            self.restart_counts.insert(container.id, container.restarts);
        }
        Ok(())
    }

    /// Waits until every container of the project is running and ready; returns how many
    /// were not when it started.
    async fn wait_all_healthy(&mut self) -> anyhow::Result<usize> {
        let containers = project_containers(&self.project).await?;
        let mut not_ready = 0;
        for container in &containers {
            if !(container.running && is_ready(&self.http, container).await) {
                not_ready += 1;
            }
        }
        let until = Instant::now() + READY_DEADLINE;
        for container in containers {
            let container = loop {
                let now = inspect(&container.id).await?;
                if now.running || Instant::now() >= until {
                    break now;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            wait_ready(
                &self.http,
                &container,
                until.saturating_duration_since(Instant::now()),
            )
            .await?;
        }
        self.follow_front().await?;
        self.note_restart_counts().await?;
        Ok(not_ready)
    }

    async fn kill_container(&mut self, component: Component) -> anyhow::Result<()> {
        let container = self.first(component).await?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(container.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("kill -9 {} (pid {})", container.name, container.pid))
    }

    async fn pause_containers(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        if paused {
            let container = self.first(component).await?;
            docker(&["pause", &container.id]).await.map(drop)
        } else {
            for container in self.of(component).await? {
                if container.paused {
                    docker(&["unpause", &container.id]).await?;
                }
            }
            Ok(())
        }
    }

    /// Takes the project down, volumes and all, and stops the front door.
    async fn take_down(mut self) -> anyhow::Result<()> {
        let down = run(
            &self.command,
            &["down", "--volumes", "--remove-orphans", "--timeout", "10"],
            &self.env,
        )
        .await;
        // The bad release's container is the project's by label, not by compose.
        let _ = remove_labelled(&self.project).await;
        self.teardown.armed = down.is_err();
        self.front_door.stop(Duration::from_secs(5)).await?;
        down.map(drop)
    }

    /// `<project>_default`: the network compose made for the project.
    fn network(&self) -> String {
        format!("{}_default", self.project)
    }

    async fn of(&self, component: Component) -> anyhow::Result<Vec<Container>> {
        let service = self.service_of(component);
        Ok(project_containers(&self.project)
            .await?
            .into_iter()
            .filter(|container| container.service == service)
            .collect())
    }

    async fn first(&self, component: Component) -> anyhow::Result<Container> {
        self.of(component)
            .await?
            .into_iter()
            .find(|container| container.running)
            .with_context(|| format!("no running {component} container"))
    }
}

/// Takes the project down when dropped while armed: what a failed start, or a target
/// dropped without `stop`, leaves running. A blocking call, as a drop must be.
struct Teardown {
    command: Vec<String>,
    env: Vec<(String, String)>,
    armed: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::process::Command::new(&self.command[0])
                .args(&self.command[1..])
                .args(["down", "--volumes", "--timeout", "5"])
                .envs(self.env.iter().map(|(name, value)| (name, value)))
                .output();
        }
    }
}

fn front_service(build: Build) -> &'static str {
    match build {
        Build::Monolith => "monolith",
        Build::Micro => "gateway",
    }
}

/// What docker-compose.yml reads the service keys from: one private key per process,
/// `SHOPLAB_SERVICE_KEY_<NAME>`, which the file gives to that process alone as its
/// `SHOPLAB_SERVICE_KEY`, and the public keys every process gets.
pub fn compose_key_environment(keys: &domain::trust::Keyring) -> Vec<(String, String)> {
    domain::trust::Peer::all()
        .into_iter()
        .map(|peer| {
            (
                format!("SHOPLAB_SERVICE_KEY_{}", peer.as_str().to_uppercase()),
                keys.private_key(peer).to_owned(),
            )
        })
        .chain([("SHOPLAB_SERVICE_PUBLIC_KEYS".to_owned(), keys.public_keys())])
        .collect()
}

/// `docker-compose` (Compose v1, Debian's) when it is on PATH, else `docker compose` (v2).
fn default_command() -> Vec<String> {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|folder| folder.join("docker-compose").is_file())
    });
    if on_path {
        vec!["docker-compose".to_owned()]
    } else {
        vec!["docker".to_owned(), "compose".to_owned()]
    }
}

#[async_trait]
impl Platform for Compose {
    fn name(&self) -> &'static str {
        REGISTRATION.name
    }

    fn build(&self) -> Build {
        self.build
    }

    fn url(&self) -> &str {
        self.front_url()
    }

    fn direct_url(&self) -> &str {
        self.published_url()
    }

    fn admin_url(&self) -> &str {
        self.admin_base()
    }

    fn admin_token(&self) -> &str {
        self.token()
    }

    fn metrics_token(&self) -> &str {
        &self.metrics_token
    }

    fn components(&self) -> Vec<Component> {
        Layout::components(self.layout.as_ref(), self.build)
    }

    /// The group's name for a context's component (`buy` for `payments` on `browse-buy`).
    fn process_name(&self, component: Component) -> String {
        self.process_of_service(&self.service_of(component))
    }

    /// The build's containers by component; on a topology, whose group processes are no
    /// components, [`Platform::named_probes`] names them.
    async fn probes(&self) -> Vec<(Component, Probe)> {
        self.container_probes()
            .await
            .into_iter()
            .filter(|_| self.layout.is_none())
            .filter_map(|(name, probe)| Some((Component::parse(&name)?, probe)))
            .collect()
    }

    async fn named_probes(&self) -> Vec<(String, Probe)> {
        self.container_probes().await
    }

    /// Every container under its process's name (a group's on a topology), for a page to
    /// draw.
    async fn named_processes(&self) -> Vec<NamedProcess> {
        let Ok(containers) = project_containers(&self.project).await else {
            return Vec::new();
        };
        let mut replicas: BTreeMap<String, usize> = BTreeMap::new();
        containers
            .iter()
            .map(|container| {
                let name = self.process_of_service(&container.service);
                let replica = replicas.entry(name.clone()).or_default();
                *replica += 1;
                NamedProcess {
                    name,
                    replica: *replica,
                    url: container.url().unwrap_or_default(),
                    pid: container.running.then_some(container.pid),
                    running: None,
                }
            })
            .collect()
    }

    /// Every container of the project, numbered per service in the engine's order, with its
    /// host PID while it runs. None on a topology: its group processes are no components
    /// ([`Platform::named_processes`] lists them).
    async fn processes(&self) -> Vec<ProcessView> {
        if self.layout.is_some() {
            return Vec::new();
        }
        let Ok(containers) = project_containers(&self.project).await else {
            return Vec::new();
        };
        let mut replicas: BTreeMap<Component, usize> = BTreeMap::new();
        containers
            .iter()
            .filter_map(|container| {
                let component = Component::parse(&container.service)?;
                let replica = replicas.entry(component).or_default();
                *replica += 1;
                Some(ProcessView {
                    component,
                    replica: *replica,
                    url: container.url().unwrap_or_default(),
                    pid: container.running.then_some(container.pid),
                    running: None,
                    cpu_quota_cores: None,
                })
            })
            .collect()
    }

    async fn front_door_control_url(&self) -> Option<String> {
        Some(self.front_door.control_url().to_owned())
    }

    async fn calibration_urls(&self) -> anyhow::Result<(String, Option<String>)> {
        self.front_door_urls().await
    }

    fn calibration_service_token(&self) -> Option<String> {
        self.service_keys.calibration_token()
    }

    async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        self.watch_restarts_until(until).await
    }

    async fn restore(&mut self) -> anyhow::Result<usize> {
        self.wait_all_healthy().await
    }

    async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.kill_container(component).await
    }

    async fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        self.pause_containers(component, paused).await
    }

    async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.recreate_container(component).await
    }

    async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.roll_container(component).await
    }

    async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        self.roll_bad_container(component).await
    }

    async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        if let Err(why) = self.adds_replicas() {
            anyhow::bail!(why);
        }
        self.one_more_container(component).await
    }

    /// Not on a topology, as on the local target: the scale experiment measures one
    /// context's replica, and a group's would add all of its contexts.
    fn adds_replicas(&self) -> Result<(), String> {
        match self.not_on_topology(
            "adding a replica",
            "a replica of a group's container adds every context it hosts, not the one the \
             scale experiment names",
        ) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    async fn quota_every_process(&mut self, _cores: f64) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(
            "not applicable: on compose each container's CPU limit is docker-compose.yml's \
             (`cpus`), the same in every run, and a container the lab adds starts with it; \
             the lab does not rewrite it for one experiment",
        ))
    }

    async fn break_calls(
        &mut self,
        context: Context,
        fault: NetworkFault,
    ) -> anyhow::Result<Injection> {
        if let Some(why) = self.not_on_topology("a network cut", CUT_ON_A_GROUP) {
            return Ok(Injection::not_realized(why));
        }
        self.disconnect(context, fault).await
    }

    async fn database_down(&mut self, _process: Component) -> anyhow::Result<Injection> {
        Ok(Injection::not_realized(
            "unavailable: SQLite is embedded in the process; there is no connection to a \
             database server to cut",
        ))
    }

    async fn limit_cpu(&mut self, process: Component, cores: f64) -> anyhow::Result<Injection> {
        self.update_cpus(process, cores).await
    }

    fn realizes(&self, fault: Fault) -> Result<(), String> {
        match fault.spec().layer {
            Layer::Process | Layer::InProcess => Ok(()),
            Layer::Network if self.layout.is_some() => Err(self
                .not_on_topology(fault.name(), CUT_ON_A_GROUP)
                .unwrap_or_default()),
            // `docker network disconnect` and `docker update --cpus`.
            _ if matches!(fault, Fault::NetCut | Fault::CpuLimit { .. }) => Ok(()),
            Layer::Network => Err(format!(
                "not applicable: {} needs a proxy on the link (tc netem is not in this kernel, \
                 and the compose file has none); the local target has them",
                fault.name()
            )),
            _ => Err(format!(
                "not applicable: the compose platform has no mechanism for {}",
                fault.name()
            )),
        }
    }

    async fn undo(&mut self, step: Box<dyn Any + Send>) -> anyhow::Result<()> {
        let step = step
            .downcast::<Restore>()
            .map_err(|_| anyhow::anyhow!("an undo step of another platform"))?;
        self.restore_step(*step).await
    }

    async fn stop(self: Box<Self>) -> anyhow::Result<()> {
        (*self).take_down().await
    }
}
