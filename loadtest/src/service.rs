//! `shoplab service <name> ...` (hidden): one process of a build, as the supervisor starts
//! it: the gateway, the monolith, the front door, or a service hosting a group of contexts
//! (`catalog`, or `catalog+recommendations` in a topology between the two builds). Running
//! them from the `shoplab` executable itself means `cargo run -p shoplab -- serve micro`
//! needs no other binary built. A group is hosted from `micro_host::MOUNTS`, the one table of
//! every context's mount, which the `micro-host` binary (the `shoplab/host` image) and the
//! contract tests host their groups from too.

use domain::topology::Group;

use loadtest_platform::local::supervisor::{Component, die_with_supervisor};

/// What `shoplab service` runs.
#[derive(Clone, Debug)]
pub(crate) enum Process {
    Component(Component),
    /// A service hosting several contexts.
    Group(Group),
}

/// A component's name, or contexts joined by `+`.
pub(crate) fn parse_process(name: &str) -> Result<Process, String> {
    if let Some(component) = Component::parse(name) {
        return Ok(Process::Component(component));
    }
    Group::parse(name).map(Process::Group).map_err(|error| {
        format!(
            "{name:?} is neither gateway, monolith, front-door nor a group of contexts: {error}"
        )
    })
}

/// Serves `process` from its flags until SIGTERM/SIGINT; a group calls itself `name` when
/// given. `admin_port` is the gateway's.
pub(crate) async fn run(
    process: Process,
    name: Option<String>,
    admin_port: u16,
    backends: &[String],
    args: &api::cli::ServeArgs,
) -> anyhow::Result<()> {
    die_with_supervisor()?;
    let group = match process {
        Process::Component(Component::Gateway) => {
            return micro_gateway::run(args, admin_port).await;
        }
        Process::Component(Component::Monolith) => return monolith::run(args).await,
        Process::Component(Component::FrontDoor) => {
            return loadtest_platform::sidecars::front_door::run(
                args.port.unwrap_or(0),
                admin_port,
                backends,
            )
            .await;
        }
        Process::Component(Component::Service(context)) => Group::one(context),
        Process::Group(group) => group,
    };
    micro_host::run(group, name, args).await
}
