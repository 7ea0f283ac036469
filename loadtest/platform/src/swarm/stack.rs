//! The stack file a build runs as on a swarm, rendered from `docker-compose.yml` (and the
//! database URLs of `deploy/docker/postgres.yml`) rather than kept by hand beside it: the
//! same images, commands, secrets, healthcheck and per-service limits, so the swarm runs
//! exactly what compose runs, plus what only an orchestrator reads.
//!
//! A topology between the builds is rendered in two steps, through the one code path that
//! groups contexts into processes: its compose file first (`compose::topology`: a service per
//! group running `shoplab/host`, limits summed, upstreams at the groups), then that file as a
//! stack, as a build's profile is. A group's database is the one `postgres-init.sql` makes
//! for its first context (`shoplab_catalog` for `browse`): every group's first context is its
//! own, so each group still has a database of its own, and the database image needs no list
//! per topology.
//!
//! What the rendering changes, and why:
//! - a build's services are those of its compose profile; `profiles`, `build`,
//!   `depends_on` (a swarm starts everything at once and callers wait on `/ready`) and
//!   `restart` (replaced by `deploy.restart_policy`) go;
//! - `cpus` and `mem_limit` become `deploy.resources.limits`, the same figures;
//! - the data lives in one PostgreSQL service pinned to the manager node (a task that moves
//!   to another node cannot take a node-local SQLite file with it), one database per
//!   process, as `deploy/docker/postgres.yml` names them;
//! - every service is `endpoint_mode: dnsrr` (this kernel has no IPVS, so no virtual IPs)
//!   and its callers re-resolve its name ([`RESOLVE_MS`]);
//! - only the front (the monolith, or the gateway's public and admin ports) is published,
//!   in host mode on whichever node runs it: the lab's front door checks every node;
//! - the healthcheck asks `/health` (liveness) every [`HEALTH_INTERVAL`] instead of
//!   compose's `/ready` every 10 s, since a swarm
//!   waits for it before it calls a task running and a rolling update goes on;
//! - `deploy`: one replica, start-first rolling updates that roll back by themselves when a
//!   new task fails within [`MONITOR`], and a restart on any exit with no delay.

use anyhow::Context as _;
use domain::Topology;
use domain::trust::{Keyring, Peer};
use serde_yaml_ng::{Mapping, Value};

use loadtest_results::component::Build;

use crate::compose::topology::{Layout, mapping};

/// How often each task's healthcheck runs. Readiness is what a swarm waits for before a
/// rolling update moves on, so every deploy time the lab reports is quantized by it; each
/// check is an exec that costs the node about 50 ms of CPU (docker-compose.yml), so 3 s is
/// 0.13 of a core for the micro build's eight services.
pub const HEALTH_INTERVAL: &str = "3s";
/// How long a new task must stay up before an update counts it good; a release failing
/// within it is rolled back automatically.
pub const MONITOR: &str = "5s";
/// How often callers resolve their upstreams' names again (`SHOPLAB_UPSTREAM_RESOLVE_MS`),
/// so a task that moved or was added is found within a second.
pub const RESOLVE_MS: u64 = 1000;
/// How long a task told to stop keeps serving with `/ready` failing before it closes its
/// port (`SHOPLAB_SHUTDOWN_DELAY_MS`): Swarm stops the old task of a rolling update, a
/// drain or a scale-in by itself, and what balances over the tasks learns it from checks —
/// the lab's front door from `/ready` every 500 ms, callers from DNS every [`RESOLVE_MS`].
/// Twice the slower of them, so both have moved away before the port closes. Within the
/// 10 s stop grace period, with the 5 s drain after it.
pub const SHUTDOWN_DELAY_MS: u64 = 2 * RESOLVE_MS;

/// Everything a stack needs besides the compose file itself.
pub struct StackInputs<'a> {
    pub build: Build,
    /// A topology between the builds, run instead of the build's profile (`build` is then
    /// micro: a gateway in front).
    pub topology: Option<&'a Topology>,
    /// `docker-compose.yml`.
    pub compose: &'a str,
    /// `deploy/docker/postgres.yml`: where each process's `SHOPLAB_DB` comes from.
    pub postgres: &'a str,
    /// `shoplab/<name>:<tag>`.
    pub tag: &'a str,
    pub admin_token: &'a str,
    /// Opens every process's `/metrics` and nothing else.
    pub metrics_token: &'a str,
    pub token_secret: &'a str,
    /// The deployment's service key pairs: each service gets its own private key and every
    /// public key (`domain::trust`).
    pub service_keys: &'a Keyring,
    /// Hex: it goes into URLs unescaped.
    pub postgres_password: &'a str,
    /// The hostname of the node the database is pinned to.
    pub database_node: &'a str,
}

/// The stack file, as YAML for `docker stack deploy --compose-file -`.
pub fn render(inputs: &StackInputs<'_>) -> anyhow::Result<String> {
    let (compose, layout) = match inputs.topology {
        // Its own compose file, every service of it the topology's.
        Some(topology) => (
            crate::compose::topology::render(inputs.compose, topology)?,
            Some(Layout::of(topology)),
        ),
        None => {
            let mut compose: Value =
                serde_yaml_ng::from_str(inputs.compose).context("read docker-compose.yml")?;
            compose
                .apply_merge()
                .context("docker-compose.yml: resolve its `<<` merge keys")?;
            (compose, None)
        }
    };
    let postgres: Value =
        serde_yaml_ng::from_str(inputs.postgres).context("read deploy/docker/postgres.yml")?;
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .context("docker-compose.yml has no services")?;
    let mut stack_services = Mapping::new();
    for (name, service) in services {
        let name = name
            .as_str()
            .context("a service name that is not a string")?;
        if layout.is_none() && !in_profile(service, inputs.build) {
            continue;
        }
        let group = layout
            .as_ref()
            .and_then(|layout| layout.group_of_service(name));
        // A group's database: its first context's (see the module's header).
        let database_of = group.map_or(name, |group| group.contexts()[0].as_str());
        // A process with a database of its own in compose gets its PostgreSQL database
        // here (the gateway has none).
        let has_database = service
            .get("environment")
            .and_then(|environment| environment.get("SHOPLAB_DB"))
            .is_some();
        let database = if has_database {
            let url = postgres
                .get("services")
                .and_then(|services| services.get(database_of))
                .and_then(|service| service.get("environment"))
                .and_then(|environment| environment.get("SHOPLAB_DB"))
                .and_then(Value::as_str)
                .with_context(|| {
                    format!("deploy/docker/postgres.yml gives {database_of} no SHOPLAB_DB")
                })?;
            Some(url.replace("${SHOPLAB_POSTGRES_PASSWORD}", inputs.postgres_password))
        } else {
            None
        };
        stack_services.insert(
            name.into(),
            shop_service(name, service, inputs, group, database.as_deref())?,
        );
    }
    anyhow::ensure!(
        !stack_services.is_empty(),
        "docker-compose.yml has no service in the profile {}",
        inputs.build
    );
    stack_services.insert("postgres".into(), postgres_service(inputs));
    let stack = mapping(&[
        ("version", "3.8".into()),
        ("services", Value::Mapping(stack_services)),
        (
            "volumes",
            mapping(&[("postgres-data", Value::Mapping(Mapping::new()))]),
        ),
    ]);
    Ok(serde_yaml_ng::to_string(&stack)?)
}

fn in_profile(service: &Value, build: Build) -> bool {
    service
        .get("profiles")
        .and_then(Value::as_sequence)
        .is_some_and(|profiles| {
            profiles
                .iter()
                .any(|profile| profile.as_str() == Some(build.as_str()))
        })
}

/// One shop process as a swarm service.
fn shop_service(
    name: &str,
    compose: &Value,
    inputs: &StackInputs<'_>,
    group: Option<&domain::topology::Group>,
    database: Option<&str>,
) -> anyhow::Result<Value> {
    let field = |key: &str| compose.get(key).cloned();
    let mut environment = Mapping::new();
    environment.insert("SHOPLAB_ADMIN_TOKEN".into(), inputs.admin_token.into());
    environment.insert("SHOPLAB_METRICS_TOKEN".into(), inputs.metrics_token.into());
    environment.insert("SHOPLAB_TOKEN_SECRET".into(), inputs.token_secret.into());
    if let Some(group) = group {
        // Each of its contexts' keys and no other, as `micro_kit::keys` reads a group's.
        environment.insert(
            "SHOPLAB_SERVICE_KEY".into(),
            inputs.service_keys.group_key(group.contexts()).into(),
        );
        environment.insert(
            "SHOPLAB_SERVICE_PUBLIC_KEYS".into(),
            inputs.service_keys.public_keys().into(),
        );
    } else if let Some(peer) = Peer::parse(name) {
        for (variable, value) in inputs.service_keys.environment(peer) {
            environment.insert(variable.into(), value.into());
        }
    }
    if let Some(database) = database {
        environment.insert("SHOPLAB_DB".into(), database.into());
    }
    environment.insert(
        "SHOPLAB_UPSTREAM_RESOLVE_MS".into(),
        RESOLVE_MS.to_string().into(),
    );
    environment.insert(
        "SHOPLAB_SHUTDOWN_DELAY_MS".into(),
        SHUTDOWN_DELAY_MS.to_string().into(),
    );
    let cpus = field("cpus")
        .and_then(|cpus| cpus.as_f64())
        .with_context(|| format!("docker-compose.yml gives {name} no cpus"))?;
    let memory = field("mem_limit")
        .and_then(|memory| memory.as_str().map(str::to_owned))
        .with_context(|| format!("docker-compose.yml gives {name} no mem_limit"))?;
    let mut healthcheck = field("healthcheck")
        .and_then(|check| check.as_mapping().cloned())
        .with_context(|| format!("docker-compose.yml gives {name} no healthcheck"))?;
    // Liveness, not readiness: a swarm replaces a task whose check fails, and `/ready`
    // fails when an upstream is gone, so on a node loss the gateway and orders would be
    // replaced too and the front would move (measured: 1475 of 2789 requests failed with
    // `/ready`, against none lost to the cascade with `/health`). Readiness is the lab's
    // front door's business, which checks `/ready`.
    healthcheck.insert(
        "test".into(),
        Value::Sequence(vec![
            "CMD".into(),
            "/probe".into(),
            "http://127.0.0.1:8080/health".into(),
        ]),
    );
    healthcheck.insert("interval".into(), HEALTH_INTERVAL.into());
    healthcheck.insert("start_period".into(), "60s".into());
    // The compose file's image (`shoplab/<name>`, or `shoplab/host` for a group) at the tag.
    let image = field("image")
        .and_then(|image| image.as_str().map(str::to_owned))
        .with_context(|| format!("docker-compose.yml gives {name} no image"))?
        .replace("${SHOPLAB_TAG:-latest}", inputs.tag);
    let mut service = vec![
        ("image", image.into()),
        ("environment", Value::Mapping(environment)),
        ("healthcheck", Value::Mapping(healthcheck)),
        (
            "stop_grace_period",
            field("stop_grace_period").unwrap_or_else(|| "10s".into()),
        ),
        ("deploy", deploy(cpus, &memory)),
    ];
    if let Some(command) = field("command") {
        service.push(("command", command));
    }
    if front_ports(inputs.build, name).is_some() {
        service.push(("ports", published(front_ports(inputs.build, name))));
    }
    Ok(mapping(&service))
}

/// The ports the front publishes on its node: the public API, and the gateway's admin API.
pub fn front_ports(build: Build, service: &str) -> Option<&'static [u16]> {
    match (build, service) {
        (Build::Monolith, "monolith") => Some(&[8080]),
        (Build::Micro, "gateway") => Some(&[8080, 8081]),
        _ => None,
    }
}

/// The front service's name.
pub fn front_service(build: Build) -> &'static str {
    match build {
        Build::Monolith => "monolith",
        Build::Micro => "gateway",
    }
}

fn published(ports: Option<&[u16]>) -> Value {
    Value::Sequence(
        ports
            .unwrap_or_default()
            .iter()
            .map(|port| {
                mapping(&[
                    ("target", (*port).into()),
                    ("published", (*port).into()),
                    ("protocol", "tcp".into()),
                    // Host mode: the ingress routing mesh needs IPVS, which this kernel
                    // lacks. The port is open on the node that runs the task.
                    ("mode", "host".into()),
                ])
            })
            .collect(),
    )
}

fn deploy(cpus: f64, memory: &str) -> Value {
    mapping(&[
        ("replicas", 1.into()),
        ("endpoint_mode", "dnsrr".into()),
        (
            "update_config",
            mapping(&[
                ("parallelism", 1.into()),
                ("delay", "0s".into()),
                ("order", "start-first".into()),
                ("failure_action", "rollback".into()),
                ("monitor", MONITOR.into()),
            ]),
        ),
        (
            "rollback_config",
            mapping(&[("parallelism", 1.into()), ("order", "start-first".into())]),
        ),
        (
            "restart_policy",
            mapping(&[("condition", "any".into()), ("delay", "0s".into())]),
        ),
        (
            "resources",
            mapping(&[(
                "limits",
                mapping(&[
                    ("cpus", format!("{cpus}").into()),
                    ("memory", memory.to_uppercase().into()),
                ]),
            )]),
        ),
    ])
}

/// The database server: `shoplab/postgres` (deploy/swarm/), pinned to one node with its data
/// on that node's volume. Its CPU and memory count in neither build's totals, as the
/// machine's PostgreSQL does on the local target.
fn postgres_service(inputs: &StackInputs<'_>) -> Value {
    mapping(&[
        ("image", format!("shoplab/postgres:{}", inputs.tag).into()),
        (
            "environment",
            mapping(&[("POSTGRES_PASSWORD", inputs.postgres_password.into())]),
        ),
        (
            "volumes",
            Value::Sequence(vec!["postgres-data:/var/lib/postgresql/data".into()]),
        ),
        (
            "healthcheck",
            mapping(&[
                (
                    "test",
                    Value::Sequence(vec![
                        "CMD".into(),
                        "pg_isready".into(),
                        "--host".into(),
                        "127.0.0.1".into(),
                        "--username".into(),
                        "postgres".into(),
                    ]),
                ),
                ("interval", "2s".into()),
                ("timeout", "3s".into()),
                ("retries", 3.into()),
                ("start_period", "60s".into()),
            ]),
        ),
        (
            "deploy",
            mapping(&[
                ("replicas", 1.into()),
                ("endpoint_mode", "dnsrr".into()),
                (
                    "placement",
                    mapping(&[(
                        "constraints",
                        Value::Sequence(vec![
                            format!("node.hostname == {}", inputs.database_node).into(),
                        ]),
                    )]),
                ),
                (
                    "restart_policy",
                    mapping(&[("condition", "any".into()), ("delay", "0s".into())]),
                ),
            ]),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPOSE: &str = include_str!("../../../../docker-compose.yml");
    const POSTGRES: &str = include_str!("../../../../deploy/docker/postgres.yml");

    fn stack(build: Build) -> Value {
        let text = render(&StackInputs {
            build,
            topology: None,
            compose: COMPOSE,
            postgres: POSTGRES,
            tag: "t1",
            admin_token: "admin-x",
            metrics_token: "metrics-z",
            token_secret: "secret-y",
            service_keys: &Keyring::generate(),
            postgres_password: "abc123",
            database_node: "node-1",
        })
        .unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    }

    fn services(stack: &Value) -> Vec<String> {
        let mut names: Vec<String> = stack["services"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn each_build_gets_its_profile_and_the_database() {
        assert_eq!(services(&stack(Build::Monolith)), ["monolith", "postgres"]);
        assert_eq!(
            services(&stack(Build::Micro)),
            [
                "cart",
                "catalog",
                "gateway",
                "inventory",
                "orders",
                "payments",
                "postgres",
                "recommendations",
                "users"
            ]
        );
    }

    #[test]
    fn a_service_keeps_its_compose_command_and_limits_and_gets_a_database_url() {
        let stack = stack(Build::Micro);
        let compose: Value = serde_yaml_ng::from_str(COMPOSE).unwrap();
        let orders = &stack["services"]["orders"];
        assert_eq!(orders["command"], compose["services"]["orders"]["command"]);
        assert_eq!(orders["image"].as_str(), Some("shoplab/orders:t1"));
        assert_eq!(
            orders["environment"]["SHOPLAB_DB"].as_str(),
            Some("postgres://postgres:abc123@postgres:5432/shoplab_orders")
        );
        assert_eq!(
            orders["environment"]["SHOPLAB_ADMIN_TOKEN"].as_str(),
            Some("admin-x")
        );
        assert_eq!(
            orders["environment"]["SHOPLAB_METRICS_TOKEN"].as_str(),
            Some("metrics-z")
        );
        let cpus: f64 = orders["deploy"]["resources"]["limits"]["cpus"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            Some(cpus),
            compose["services"]["orders"]["cpus"].as_f64(),
            "the same CPU share as compose gives it"
        );
        assert_eq!(orders["deploy"]["endpoint_mode"].as_str(), Some("dnsrr"));
        assert!(orders.get("ports").is_none(), "only the front is published");
        assert!(orders.get("depends_on").is_none());
    }

    #[test]
    fn only_the_front_is_published_in_host_mode() {
        let micro = stack(Build::Micro);
        let ports = micro["services"]["gateway"]["ports"].as_sequence().unwrap();
        let published: Vec<u64> = ports
            .iter()
            .map(|port| port["published"].as_u64().unwrap())
            .collect();
        assert_eq!(published, [8080, 8081]);
        assert!(ports.iter().all(|port| port["mode"] == "host"));
        let monolith = stack(Build::Monolith);
        assert_eq!(
            monolith["services"]["monolith"]["ports"][0]["published"].as_u64(),
            Some(8080)
        );
    }

    #[test]
    fn the_database_is_pinned_to_its_node() {
        let stack = stack(Build::Monolith);
        assert_eq!(
            stack["services"]["postgres"]["deploy"]["placement"]["constraints"][0].as_str(),
            Some("node.hostname == node-1")
        );
        assert_eq!(
            stack["services"]["monolith"]["environment"]["SHOPLAB_DB"].as_str(),
            Some("postgres://postgres:abc123@postgres:5432/shoplab_monolith")
        );
    }

    #[test]
    fn a_compose_file_without_the_profile_is_refused() {
        let refused = render(&StackInputs {
            build: Build::Micro,
            topology: None,
            compose: "services:\n  x: {image: y}\n",
            postgres: POSTGRES,
            tag: "t",
            admin_token: "a",
            metrics_token: "m",
            token_secret: "b",
            service_keys: &Keyring::generate(),
            postgres_password: "c",
            database_node: "n",
        });
        assert!(refused.unwrap_err().to_string().contains("no service"));
    }

    #[test]
    fn a_topology_s_stack_is_its_compose_file_with_a_database_and_the_keys_of_each_group() {
        let topology = Topology::parse("browse-buy").unwrap();
        let keys = Keyring::generate();
        let text = render(&StackInputs {
            build: Build::Micro,
            topology: Some(&topology),
            compose: COMPOSE,
            postgres: POSTGRES,
            tag: "t1",
            admin_token: "admin-x",
            metrics_token: "metrics-z",
            token_secret: "secret-y",
            service_keys: &keys,
            postgres_password: "abc123",
            database_node: "node-1",
        })
        .unwrap();
        let stack: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(services(&stack), ["browse", "buy", "gateway", "postgres"]);
        let compose = crate::compose::topology::render(COMPOSE, &topology).unwrap();
        let buy = &stack["services"]["buy"];
        assert_eq!(buy["image"].as_str(), Some("shoplab/host:t1"));
        assert_eq!(buy["command"], compose["services"]["buy"]["command"]);
        assert_eq!(
            buy["deploy"]["resources"]["limits"]["cpus"].as_str(),
            Some("0.3"),
            "the summed share of the compose file"
        );
        assert_eq!(
            buy["environment"]["SHOPLAB_SERVICE_KEY"].as_str(),
            Some(
                keys.group_key(&[
                    domain::Context::Cart,
                    domain::Context::Inventory,
                    domain::Context::Orders,
                    domain::Context::Payments
                ])
                .as_str()
            )
        );
        // Each group on a database of its own: its first context's.
        assert_eq!(
            buy["environment"]["SHOPLAB_DB"].as_str(),
            Some("postgres://postgres:abc123@postgres:5432/shoplab_cart")
        );
        assert_eq!(
            stack["services"]["browse"]["environment"]["SHOPLAB_DB"].as_str(),
            Some("postgres://postgres:abc123@postgres:5432/shoplab_catalog")
        );
        let gateway = &stack["services"]["gateway"];
        assert_eq!(gateway["image"].as_str(), Some("shoplab/gateway:t1"));
        assert_eq!(
            gateway["environment"]["SHOPLAB_SERVICE_KEY"].as_str(),
            Some(keys.private_key(Peer::Gateway))
        );
        assert!(gateway["environment"].get("SHOPLAB_DB").is_none());
        assert_eq!(gateway["ports"][0]["published"].as_u64(), Some(8080));
    }
}
