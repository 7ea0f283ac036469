//! `shoplab service <name> ...` (hidden): one process of a build, as the supervisor starts
//! it: the gateway, the monolith, the front door, or a service hosting a group of contexts
//! (`catalog`, or `catalog+recommendations` in a topology between the two builds). Running
//! them from the `shoplab` executable itself means `cargo run -p shoplab -- serve micro`
//! needs no other binary built; the `micro-*` binaries run exactly the same mounts (what a
//! container starts).

use domain::Context;
use domain::topology::Group;
use micro_kit::Mount;

use loadtest_platform::local::supervisor::{Component, die_with_supervisor};

/// Every context's mount: this binary can host any group. Glue at the top: the service
/// crates cannot know each other, so the table of all of them lives in the one crate that
/// links them all (the contract tests host their groups from it too).
pub const MOUNTS: [(Context, Mount); 7] = [
    (Context::Catalog, micro_catalog::mount),
    (Context::Inventory, micro_inventory::mount),
    (Context::Cart, micro_cart::mount),
    (Context::Orders, micro_orders::mount),
    (Context::Payments, micro_payments::mount),
    (Context::Users, micro_users::mount),
    (Context::Recommendations, micro_recommendations::mount),
];

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

/// A process name: lowercase letters, digits, `-` and `+`, as a file or database name
/// built from it may hold.
pub(crate) fn parse_process_name(name: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '+';
    if name.is_empty() || !name.chars().all(allowed) {
        return Err(format!(
            "{name:?} is not a process name: lowercase letters, digits, '-' and '+' only"
        ));
    }
    Ok(name.to_owned())
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
    loadtest_platform::pinning::pin_from_env()?;
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
    let group = match name {
        Some(name) => group.named(name),
        None => group,
    };
    let name = group.name();
    micro_kit::run(name, args, |settings, listener, shutdown| {
        micro_kit::serve(group, &MOUNTS, settings, listener, shutdown)
    })
    .await
}
