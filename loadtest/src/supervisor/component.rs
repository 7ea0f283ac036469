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

/// One kind of process in the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Service(Context),
    Gateway,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Service(context) => context.as_str(),
            Component::Gateway => "gateway",
        }
    }

    pub fn parse(name: &str) -> Option<Component> {
        match name {
            "gateway" => Some(Component::Gateway),
            other => Context::parse(other).map(Component::Service),
        }
    }

    /// Stop order: the gateway first (so it drains while the services still answer), then
    /// orders, then the services nobody else calls into any more.
    pub(crate) fn stop_tier(self) -> u8 {
        match self {
            Component::Gateway => 0,
            Component::Service(Context::Orders) => 1,
            Component::Service(_) => 2,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
