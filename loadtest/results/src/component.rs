//! The processes a deployment is made of, and the order they start and stop in.

use std::fmt;

use domain::Context;

/// The services that call no other service: they start first, side by side, in this order.
/// Orders calls four of them and starts after them; the gateway calls everyone and starts
/// last.
pub const LEAF_SERVICES: [Context; 6] = [
    Context::Catalog,
    Context::Inventory,
    Context::Cart,
    Context::Payments,
    Context::Users,
    Context::Recommendations,
];

/// The contexts the orders saga calls.
pub const ORDERS_UPSTREAMS: [Context; 4] = [
    Context::Inventory,
    Context::Payments,
    Context::Cart,
    Context::Catalog,
];

/// Which build of the shop a deployment runs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Build {
    Monolith,
    Micro,
}

impl Build {
    pub const BOTH: [Build; 2] = [Build::Monolith, Build::Micro];

    /// The process that runs `context` in this build: the one monolith process for every
    /// context, or the context's own service.
    pub fn process_of(self, context: Context) -> Component {
        match self {
            Build::Monolith => Component::Monolith,
            Build::Micro => Component::Service(context),
        }
    }

    /// The build a topology is, when it is one of the two: one process is the monolith,
    /// seven groups of one the microservices. None for a topology between them.
    pub fn of_topology(topology: &domain::Topology) -> Option<Build> {
        if topology.is_single() {
            Some(Build::Monolith)
        } else if topology.groups().len() == domain::Context::ALL.len() {
            Some(Build::Micro)
        } else {
            None
        }
    }

    /// The build's own preset.
    pub fn topology(self) -> domain::Topology {
        match self {
            Build::Monolith => domain::Topology::monolith(),
            Build::Micro => domain::Topology::micro(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Build::Monolith => "monolith",
            Build::Micro => "micro",
        }
    }
}

impl fmt::Display for Build {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One kind of process in the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The whole shop in one process (the monolith build's only component).
    Monolith,
    Service(Context),
    Gateway,
    /// The reverse proxy that owns the public port while the monolith or the gateway
    /// behind it is replaced (see `front_door.rs`).
    FrontDoor,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Monolith => "monolith",
            Component::Service(context) => context.as_str(),
            Component::Gateway => "gateway",
            Component::FrontDoor => "front-door",
        }
    }

    pub fn parse(name: &str) -> Option<Component> {
        match name {
            "gateway" => Some(Component::Gateway),
            "monolith" => Some(Component::Monolith),
            "front-door" => Some(Component::FrontDoor),
            other => Context::parse(other).map(Component::Service),
        }
    }

    /// Whether this process owns the deployment's public port (and admin API).
    pub fn is_front(self) -> bool {
        matches!(self, Component::Gateway | Component::Monolith)
    }

    /// Stop order: the front door, then the gateway (so it drains while the services still
    /// answer), then orders, then the services nobody else calls into any more.
    pub fn stop_tier(self) -> u8 {
        match self {
            Component::FrontDoor => 0,
            Component::Gateway | Component::Monolith => 1,
            Component::Service(Context::Orders) => 2,
            Component::Service(_) => 3,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
