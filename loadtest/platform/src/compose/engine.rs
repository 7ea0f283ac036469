//! The Docker engine as the compose platform reads and drives it: `docker inspect` of a
//! project's containers, readiness over the project's network, and bounded `docker` and
//! `docker-compose` calls.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;

use crate::tool::{self, Call};

/// Any one docker or compose call.
const CALL_DEADLINE: Duration = Duration::from_secs(180);

/// What `docker inspect` says of one container, as far as the lab needs it.
#[derive(Clone, Debug)]
pub(super) struct Container {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) service: String,
    pub(super) pid: u32,
    pub(super) running: bool,
    pub(super) paused: bool,
    pub(super) status: String,
    pub(super) restarts: u64,
    /// When its process last exited, by the engine's clock (`None`: never).
    pub(super) finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its address in the project's network (empty while disconnected or stopped).
    pub(super) ip: String,
    ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    pub(super) nano_cpus: u64,
}

impl Container {
    /// Its own address on the project network (the port every shop image listens on), or
    /// `None` while it has none (stopped, or disconnected by a network fault).
    pub(super) fn url(&self) -> Option<String> {
        (!self.ip.is_empty()).then(|| format!("http://{}:8080", self.ip))
    }

    /// `http://127.0.0.1:<host port>` of a published container port.
    pub(super) fn published(&self, port: u16) -> anyhow::Result<String> {
        let binding = self
            .ports
            .get(&format!("{port}/tcp"))
            .and_then(|bindings| bindings.as_ref())
            .and_then(|bindings| bindings.first())
            .with_context(|| format!("{} publishes no port {port}", self.name))?;
        Ok(format!("http://127.0.0.1:{}", binding.host_port))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PortBinding {
    host_port: String,
}

/// The part of `docker inspect`'s answer the lab reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Spec {
    id: String,
    name: String,
    state: SpecState,
    restart_count: u64,
    pub(super) config: SpecConfig,
    host_config: SpecHostConfig,
    network_settings: SpecNetworks,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecState {
    status: String,
    finished_at: String,
    running: bool,
    paused: bool,
    pid: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct SpecConfig {
    pub(super) image: String,
    #[serde(default)]
    pub(super) env: Vec<String>,
    pub(super) cmd: Option<Vec<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecHostConfig {
    nano_cpus: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecNetworks {
    #[serde(default)]
    ports: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    #[serde(default)]
    networks: BTreeMap<String, SpecNetwork>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpecNetwork {
    #[serde(rename = "IPAddress")]
    ip_address: String,
}

impl From<Spec> for Container {
    fn from(spec: Spec) -> Container {
        let service = spec
            .config
            .labels
            .get("com.docker.compose.service")
            .cloned()
            .unwrap_or_default();
        Container {
            id: spec.id,
            name: spec.name.trim_start_matches('/').to_owned(),
            service,
            pid: spec.state.pid,
            running: spec.state.running && !spec.state.paused,
            paused: spec.state.paused,
            status: spec.state.status,
            restarts: spec.restart_count,
            // The engine writes `0001-01-01T00:00:00Z` for a process that never exited.
            finished_at: chrono::DateTime::parse_from_rfc3339(&spec.state.finished_at)
                .ok()
                .map(|at| at.with_timezone(&chrono::Utc))
                .filter(|at| at.timestamp() > 0),
            ip: spec
                .network_settings
                .networks
                .values()
                .map(|network| network.ip_address.clone())
                .find(|ip| !ip.is_empty())
                .unwrap_or_default(),
            ports: spec.network_settings.ports.unwrap_or_default(),
            nano_cpus: spec.host_config.nano_cpus,
        }
    }
}

/// The moment the container's process last exited, on this process's clock; now when the
/// engine has not recorded it.
pub(super) fn exited_at(container: &Container) -> Instant {
    let ago = container
        .finished_at
        .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
        .unwrap_or_default();
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

/// Every container of the project, stopped ones included.
pub(super) async fn project_containers(project: &str) -> anyhow::Result<Vec<Container>> {
    let label = format!("label=com.docker.compose.project={project}");
    let ids = docker(&["ps", "--all", "--quiet", "--no-trunc", "--filter", &label]).await?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["inspect"];
    args.extend(ids);
    let specs: Vec<Spec> =
        serde_json::from_str(&docker(&args).await?).context("read docker inspect")?;
    let mut containers: Vec<Container> = specs.into_iter().map(Container::from).collect();
    // Bad releases carry the project's label but no service: not the build's.
    containers.retain(|container| !container.service.is_empty());
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(containers)
}

pub(super) async fn inspect(id: &str) -> anyhow::Result<Container> {
    let specs: Vec<Spec> =
        serde_json::from_str(&docker(&["inspect", id]).await?).context("read docker inspect")?;
    specs
        .into_iter()
        .next()
        .map(Container::from)
        .with_context(|| format!("no container {id}"))
}

pub(super) async fn remove_labelled(project: &str) -> anyhow::Result<()> {
    let label = format!("label=com.docker.compose.project={project}");
    let ids = docker(&["ps", "--all", "--quiet", "--filter", &label]).await?;
    for id in ids.split_whitespace() {
        docker(&["rm", "--force", id]).await?;
    }
    Ok(())
}

pub(super) async fn is_ready(http: &reqwest::Client, container: &Container) -> bool {
    let Some(url) = container.url() else {
        return false;
    };
    http.get(format!("{url}/ready"))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

/// Polls the container's `/ready` (re-reading its address, which it gets once it runs).
pub(super) async fn wait_ready(
    http: &reqwest::Client,
    container: &Container,
    deadline: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let now = inspect(&container.id).await?;
        if now.running && is_ready(http, &now).await {
            return Ok(());
        }
        if Instant::now() >= until {
            let logs = docker_output(&["logs", "--tail", "20", &container.id]).await;
            anyhow::bail!(
                "{} ({}) not ready within {deadline:?}; its last output:\n{logs}",
                container.name,
                now.status
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn docker(args: &[&str]) -> anyhow::Result<String> {
    run(&["docker".to_owned()], args, &[]).await
}

/// stdout and stderr of a docker call, whatever it answered (for error messages).
pub(super) async fn docker_output(args: &[&str]) -> String {
    match tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
    {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => format!("(docker {}: {error})", args.join(" ")),
    }
}

/// Runs `command args`, bounded by [`CALL_DEADLINE`]; its stdout, or its stderr in the error.
pub(super) async fn run(
    command: &[String],
    args: &[&str],
    env: &[(String, String)],
) -> anyhow::Result<String> {
    tool::run(Call {
        program: &command[0],
        leading: &command[1..],
        args,
        env,
        input: None,
        deadline: CALL_DEADLINE,
    })
    .await
}
