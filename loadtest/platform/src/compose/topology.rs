//! The compose file of a topology between the two builds (`domain::topology`, e.g.
//! `browse-buy`), rendered from `docker-compose.yml`'s `micro` profile rather than kept by
//! hand beside it: one service per group of contexts, running the `shoplab/host` image
//! (`micro-host --group ...`), and the gateway in front. The swarm's stack of a topology is
//! rendered from this file in turn (`swarm::stack`), so one code path groups the contexts.
//!
//! What each group's service takes from the services of its contexts, and why:
//! - the healthcheck, restart policy and stop grace period of the shared `x-shop` block, and
//!   the secrets, as every process has them;
//! - `cpus` and `mem_limit`: the sum of its contexts' shares. The shares were cut from each
//!   context's measured demand (deploy/docker/README.md, "Resource limits"), so a process
//!   hosting several contexts gets what they had apart, every topology keeps the totals of
//!   both builds (1 CPU, 1 GiB), and what co-location saves or costs is the comparison's;
//! - the upstreams its contexts call (`--upstream` in their commands) that it does not host,
//!   pointed at the service hosting each; the gateway's point at the groups the same way;
//! - `depends_on`: the services hosting what its contexts waited for, itself left out;
//! - a database of its own, a SQLite file on its own volume (`<service>-data`): one per
//!   process group, the topology's rule;
//! - its service key: one variable holding the private key of each context it hosts, and no
//!   other (`catalog=${SHOPLAB_SERVICE_KEY_CATALOG},...`, as `micro_kit::keys` reads a
//!   group's), from the same `SHOPLAB_SERVICE_KEY_<CONTEXT>` variables `shoplab service-keys`
//!   prints and the micro profile reads. A context keeps its identity in every grouping.
//!
//! The file uses no profiles: every service in it is the topology's. It is written beside
//! the run's results, so a user can read what ran and start it again with `docker compose
//! --file <it> up`.

use std::collections::BTreeSet;

use anyhow::Context as _;
use domain::Context;
use domain::topology::{Group, Topology};
use loadtest_results::component::{Build, Component};
use serde_yaml_ng::{Mapping, Value};

/// The image that hosts any group (deploy/docker/Dockerfile's `host` target).
pub const HOST_IMAGE: &str = "shoplab/host:${SHOPLAB_TAG:-latest}";

/// The processes of a topology on compose (and on a swarm): each group's service name.
#[derive(Clone, Debug)]
pub struct Layout {
    topology: Topology,
    /// Each group with its service's name, in the topology's order.
    services: Vec<(Group, String)>,
}

impl Layout {
    pub fn of(topology: &Topology) -> Layout {
        Layout {
            topology: topology.clone(),
            services: topology
                .groups()
                .iter()
                .map(|group| (group.clone(), service_name(group)))
                .collect(),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Each group and its service's name.
    pub fn groups(&self) -> &[(Group, String)] {
        &self.services
    }

    /// The components the lab names on this topology: one per group (by the first context
    /// it hosts: its container or task is the one every context of the group names) and the
    /// gateway. Compose's and the swarm's, or `build`'s own without a layout.
    pub fn components(layout: Option<&Layout>, build: Build) -> Vec<Component> {
        match layout {
            Some(layout) => layout
                .services
                .iter()
                .map(|(group, _)| Component::Service(group.contexts()[0]))
                .chain([Component::Gateway])
                .collect(),
            None => crate::components_of(build),
        }
    }

    /// The service that runs `component` (compose's, or a stack's without its prefix): on
    /// a topology a context's is its group's; the component's own otherwise. Compose's and
    /// the swarm's.
    pub fn service_for(layout: Option<&Layout>, component: Component) -> String {
        match (layout, component) {
            (Some(layout), Component::Service(context)) => layout.service_of(context).to_owned(),
            _ => component.as_str().to_owned(),
        }
    }

    /// The name the results give the process `service` runs: the service's own for a build
    /// (`catalog`), its group's on a topology (`buy`). Compose's and the swarm's.
    pub fn process_of(layout: Option<&Layout>, service: &str) -> String {
        match layout {
            Some(layout) => layout.process_name(service),
            None => service.to_owned(),
        }
    }

    /// The topology's name as a compose project's or a stack's name may hold it: a custom
    /// spec's `+` and `,` as `-`.
    pub fn slug(&self) -> String {
        self.topology
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    }

    /// The service hosting `context`.
    pub fn service_of(&self, context: Context) -> &str {
        self.services
            .iter()
            .find(|(group, _)| group.contains(context))
            .map(|(_, service)| service.as_str())
            .expect("a topology hosts every context: checked when it was built")
    }

    /// The group a service runs, `None` for the gateway (or a name that is none of them).
    pub fn group_of_service(&self, service: &str) -> Option<&Group> {
        self.services
            .iter()
            .find(|(_, name)| name == service)
            .map(|(group, _)| group)
    }

    /// The name the results give the process a service runs: its group's (`buy`, or
    /// `cart+orders+payments` for a custom grouping, as on the local target), or the
    /// service's own (`gateway`).
    pub fn process_name(&self, service: &str) -> String {
        self.group_of_service(service)
            .map_or_else(|| service.to_owned(), Group::name)
    }
}

/// A group's service name: its process name with `+` as `-`, since a service name is a DNS
/// name (`cart+orders+payments` becomes `cart-orders-payments`; a preset's group keeps its
/// name, `buy`).
pub fn service_name(group: &Group) -> String {
    group.name().replace('+', "-")
}

/// The compose file of `topology` as YAML, with a header saying where it came from.
pub fn render_text(compose: &str, topology: &Topology) -> anyhow::Result<String> {
    let file = render(compose, topology)?;
    Ok(format!(
        "# The topology {topology} ({spec}) on compose, generated by shoplab from \
         docker-compose.yml's micro profile\n\
         # (loadtest/platform/src/compose/topology.rs says what each service takes from it). \
         One service per group,\n\
         # each the shoplab/host image hosting its contexts; the gateway in front.\n{}",
        serde_yaml_ng::to_string(&file)?,
        spec = topology.spec(),
    ))
}

/// The compose file of `topology`: one service per group and the gateway, from the services
/// of `docker-compose.yml` (its text).
pub fn render(compose: &str, topology: &Topology) -> anyhow::Result<Value> {
    anyhow::ensure!(
        topology.needs_gateway(),
        "{topology} is one process: that is the monolith build, docker-compose.yml's monolith profile"
    );
    let mut compose: Value = serde_yaml_ng::from_str(compose).context("read docker-compose.yml")?;
    compose
        .apply_merge()
        .context("docker-compose.yml: resolve its `<<` merge keys")?;
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .context("docker-compose.yml has no services")?;
    let micro = |name: &str| -> anyhow::Result<&Value> {
        services
            .get(name)
            .filter(|service| in_micro_profile(service))
            .with_context(|| {
                format!("docker-compose.yml has no service {name} in the micro profile")
            })
    };
    let layout = Layout::of(topology);
    let mut rendered = Mapping::new();
    let mut volumes = Mapping::new();
    for (group, name) in layout.groups() {
        let members = group
            .contexts()
            .iter()
            .map(|context| micro(context.as_str()))
            .collect::<anyhow::Result<Vec<&Value>>>()?;
        rendered.insert(
            name.as_str().into(),
            group_service(&layout, group, name, &members)?,
        );
        volumes.insert(
            format!("{name}-data").into(),
            Value::Mapping(Mapping::new()),
        );
    }
    rendered.insert(
        "gateway".into(),
        gateway_service(&layout, micro("gateway")?)?,
    );
    Ok(mapping(&[
        ("services", Value::Mapping(rendered)),
        ("volumes", Value::Mapping(volumes)),
    ]))
}

fn in_micro_profile(service: &Value) -> bool {
    service
        .get("profiles")
        .and_then(Value::as_sequence)
        .is_some_and(|profiles| {
            profiles
                .iter()
                .any(|profile| profile.as_str() == Some("micro"))
        })
}

/// One group's service, from its contexts' services (`members`, in the group's order).
fn group_service(
    layout: &Layout,
    group: &Group,
    name: &str,
    members: &[&Value],
) -> anyhow::Result<Value> {
    let first = members[0];
    let mut service = Mapping::new();
    // The shared `x-shop` block: the same in every context's service.
    for key in ["restart", "healthcheck", "stop_grace_period"] {
        if let Some(value) = first.get(key) {
            service.insert(key.into(), value.clone());
        }
    }
    service.insert("image".into(), HOST_IMAGE.into());
    let mut command: Vec<Value> = vec![
        format!("--group={}", group.spec()).into(),
        format!("--name={}", group.name()).into(),
    ];
    let mut seen = BTreeSet::new();
    for member in members {
        for (context, url) in upstreams(member)? {
            if !group.contains(context) && seen.insert(context) {
                command
                    .push(format!("--upstream={context}={}", url_at(&url, context, layout)).into());
            }
        }
    }
    service.insert("command".into(), Value::Sequence(command));
    let mut environment = first
        .get("environment")
        .and_then(Value::as_mapping)
        .cloned()
        .with_context(|| {
            format!(
                "docker-compose.yml gives {} no environment",
                group.contexts()[0]
            )
        })?;
    environment.insert(
        "SHOPLAB_DB".into(),
        format!("sqlite:///data/{name}.db").into(),
    );
    environment.insert(
        "SHOPLAB_SERVICE_KEY".into(),
        group_key_variable(group).into(),
    );
    service.insert("environment".into(), Value::Mapping(environment));
    service.insert(
        "volumes".into(),
        Value::Sequence(vec![format!("{name}-data:/data").into()]),
    );
    let mut cpus = 0.0;
    let mut memory_mib = 0;
    for (context, member) in group.contexts().iter().zip(members) {
        cpus += member
            .get("cpus")
            .and_then(Value::as_f64)
            .with_context(|| format!("docker-compose.yml gives {context} no cpus"))?;
        memory_mib += member
            .get("mem_limit")
            .and_then(Value::as_str)
            .and_then(mebibytes)
            .with_context(|| {
                format!("docker-compose.yml gives {context} no mem_limit in m (64m)")
            })?;
    }
    // Shares are written to the hundredth; the sum of three is not exact in binary.
    service.insert("cpus".into(), ((cpus * 100.0).round() / 100.0).into());
    service.insert("mem_limit".into(), format!("{memory_mib}m").into());
    let mut waits_for = BTreeSet::new();
    for member in members {
        for context in depends_on(member) {
            let hosting = layout.service_of(context);
            if hosting != name {
                waits_for.insert(hosting.to_owned());
            }
        }
    }
    if !waits_for.is_empty() {
        service.insert("depends_on".into(), healthy(waits_for));
    }
    Ok(Value::Mapping(service))
}

/// The gateway's service as docker-compose.yml has it, its upstreams pointed at the groups.
fn gateway_service(layout: &Layout, gateway: &Value) -> anyhow::Result<Value> {
    let mut service = gateway
        .as_mapping()
        .cloned()
        .context("docker-compose.yml's gateway is not a mapping")?;
    service.remove("profiles");
    service.remove("build");
    let command: Vec<Value> = gateway
        .get("command")
        .and_then(Value::as_sequence)
        .context("docker-compose.yml's gateway has no command")?
        .iter()
        .map(|argument| {
            let text = argument.as_str().unwrap_or_default();
            match upstream_of(text) {
                Some((context, url)) => {
                    format!("--upstream={context}={}", url_at(url, context, layout)).into()
                }
                None => argument.clone(),
            }
        })
        .collect();
    service.insert("command".into(), Value::Sequence(command));
    let groups: BTreeSet<String> = layout
        .groups()
        .iter()
        .map(|(_, name)| name.clone())
        .collect();
    service.insert("depends_on".into(), healthy(groups));
    Ok(Value::Mapping(service))
}

/// `SHOPLAB_SERVICE_KEY` of a group: each of its contexts' private keys, named, and no other;
/// the bare key for a group of one (`domain::trust::Keyring::group_key`'s form).
fn group_key_variable(group: &Group) -> String {
    let variable = |context: &Context| {
        let name = format!("SHOPLAB_SERVICE_KEY_{}", context.as_str().to_uppercase());
        // No `$` in the message: compose would read it as an interpolation.
        format!("${{{name}:?set {name}: shoplab service-keys prints them}}")
    };
    match group.contexts() {
        [context] => variable(context),
        contexts => contexts
            .iter()
            .map(|context| format!("{context}={}", variable(context)))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The `--upstream=CONTEXT=URL` entries of a service's command.
fn upstreams(service: &Value) -> anyhow::Result<Vec<(Context, String)>> {
    let Some(command) = service.get("command") else {
        return Ok(Vec::new());
    };
    let command = command
        .as_sequence()
        .context("a command that is not a list")?;
    Ok(command
        .iter()
        .filter_map(Value::as_str)
        .filter_map(upstream_of)
        .map(|(context, url)| (context, url.to_owned()))
        .collect())
}

fn upstream_of(argument: &str) -> Option<(Context, &str)> {
    let (name, url) = argument.strip_prefix("--upstream=")?.split_once('=')?;
    Some((Context::parse(name)?, url))
}

/// `url` (`http://catalog:8080`) with its host the service that hosts `context` in `layout`.
fn url_at(url: &str, context: Context, layout: &Layout) -> String {
    url.replacen(
        &format!("//{context}:"),
        &format!("//{}:", layout.service_of(context)),
        1,
    )
}

/// The contexts a service's `depends_on` names.
fn depends_on(service: &Value) -> Vec<Context> {
    service
        .get("depends_on")
        .and_then(Value::as_mapping)
        .map(|waits| {
            waits
                .keys()
                .filter_map(Value::as_str)
                .filter_map(Context::parse)
                .collect()
        })
        .unwrap_or_default()
}

fn healthy(services: BTreeSet<String>) -> Value {
    Value::Mapping(
        services
            .into_iter()
            .map(|service| {
                (
                    service.into(),
                    mapping(&[("condition", "service_healthy".into())]),
                )
            })
            .collect(),
    )
}

/// `64m` as 64; any other unit is refused (the file writes every limit in `m`).
fn mebibytes(text: &str) -> Option<u64> {
    text.strip_suffix('m')?.parse().ok()
}

/// A YAML mapping from `(key, value)` pairs, in order (compose's files and the swarm's
/// stacks are written with it).
pub(crate) fn mapping(pairs: &[(&str, Value)]) -> Value {
    Value::Mapping(
        pairs
            .iter()
            .map(|(key, value)| (Value::from(*key), value.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
