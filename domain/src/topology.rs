//! A topology: how the seven contexts are grouped into processes, as data.
//!
//! Monolith and microservices are the two ends of one spectrum. Every context has one trait,
//! an in-process implementation and an HTTP client, so where a context runs is a deployment
//! decision, not a rewrite. A topology is written
//! `catalog+recommendations,inventory,cart+orders+payments,users`: processes separated by
//! `,`, the contexts one process hosts joined by `+`, every context exactly once. A preset
//! name ([`PRESETS`]) stands for a grouping a real team would choose.
//!
//! Two rules follow from a grouping, stated here once so every build reads them from code:
//!
//! - **Databases: one per process group.** The store's invariant is that no query touches
//!   another context's tables (no cross-context join, no cross-context foreign key), so any
//!   grouping of contexts works over one database without a line changed. And a group's
//!   contexts sharing a database is exactly what makes a local checkout possible: a
//!   transaction cannot span two databases. One database per context inside a group would
//!   buy nothing but the saga's cost.
//! - **Checkout** ([`Checkout`], [`Group::checkout`]): one local transaction path when
//!   `orders` shares its group (and so its database) with every context checkout touches
//!   ([`CHECKOUT_CONTEXTS`]); the saga, with compensation and recovery, otherwise.
//!
//! Whenever a topology has more than one group, a gateway stands in front of them
//! ([`Topology::needs_gateway`]).

use std::fmt;
use std::str::FromStr;

use crate::Context;

/// The contexts a checkout reads or writes: the cart it empties, the catalog that prices it,
/// the stock it reserves, the payment it takes and the order it records. When all of them
/// share one database the checkout can be one local transaction path.
pub const CHECKOUT_CONTEXTS: [Context; 5] = [
    Context::Orders,
    Context::Cart,
    Context::Catalog,
    Context::Inventory,
    Context::Payments,
];

/// A named grouping of the contexts, with the reason a team would choose it.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// Each group: its process name and its contexts.
    pub groups: &'static [(&'static str, &'static [Context])],
    /// Why a team would run this grouping, in one line of `--help` (the doc comment of
    /// each preset has the longer reason).
    pub why: &'static str,
}

/// Every preset, from one process to seven.
pub const PRESETS: [Preset; 5] = [MONOLITH, SATELLITES, BROWSE_BUY, COARSE, MICRO];

/// One process over one database: no hop, checkout one local transaction path, and every
/// fault in any context is the whole shop's. The baseline every other grouping pays against.
pub const MONOLITH: Preset = Preset {
    name: "monolith",
    groups: &[("monolith", &Context::ALL)],
    why: "one process, one database: no hop, checkout local, every fault is the shop's",
};

/// The strangler fig's first cut: `users` and `recommendations` leave the core, which keeps
/// every context checkout touches and so its local checkout. A team extracts the leaves
/// first because nothing in the money path calls them: identity gets its own blast radius
/// and release cadence (credentials, throttles), and the non-critical recommendations can
/// fail or deploy without touching a sale. What it costs: the hops from the gateway.
pub const SATELLITES: Preset = Preset {
    name: "satellites",
    groups: &[
        (
            "core",
            &[
                Context::Catalog,
                Context::Inventory,
                Context::Cart,
                Context::Orders,
                Context::Payments,
            ],
        ),
        ("users", &[Context::Users]),
        ("recommendations", &[Context::Recommendations]),
    ],
    why: "the leaves leave first (users, recommendations); the core keeps checkout local",
};

/// Two processes cut along the traffic: `browse` (catalog, recommendations, users: reads,
/// log-ins, cacheable and most of the requests) scales apart from `buy` (cart, inventory,
/// orders, payments: the writes and the money). A team chooses it to scale the read side
/// without the write side's database. The price is on the money path: checkout prices the
/// cart from `catalog`, which is on the other side, so checkout becomes the saga.
pub const BROWSE_BUY: Preset = Preset {
    name: "browse-buy",
    groups: &[
        (
            "browse",
            &[Context::Catalog, Context::Recommendations, Context::Users],
        ),
        (
            "buy",
            &[
                Context::Cart,
                Context::Inventory,
                Context::Orders,
                Context::Payments,
            ],
        ),
    ],
    why: "reads apart from writes; checkout needs catalog's prices across the cut: saga",
};

/// Four coarse services, one per team: storefront (catalog and the recommendations drawn
/// from it), stock (inventory, which warehouses feed and every sale contends on), checkout
/// (cart, orders and payments: the money, owned together) and accounts (users). The
/// grouping coarse-grained-service studies recommend over one service per entity: fewer
/// hops, still an owner per process. Checkout is the saga: stock and prices are elsewhere.
pub const COARSE: Preset = Preset {
    name: "coarse",
    groups: &[
        ("storefront", &[Context::Catalog, Context::Recommendations]),
        ("stock", &[Context::Inventory]),
        (
            "checkout",
            &[Context::Cart, Context::Orders, Context::Payments],
        ),
        ("accounts", &[Context::Users]),
    ],
    why: "a service per team: storefront, stock, checkout, accounts; checkout is the saga",
};

/// One process per context, each over its own database: every context deploys, scales and
/// fails alone, and every call between contexts is a hop. Checkout is the saga.
pub const MICRO: Preset = Preset {
    name: "micro",
    groups: &[
        ("catalog", &[Context::Catalog]),
        ("inventory", &[Context::Inventory]),
        ("cart", &[Context::Cart]),
        ("orders", &[Context::Orders]),
        ("payments", &[Context::Payments]),
        ("users", &[Context::Users]),
        ("recommendations", &[Context::Recommendations]),
    ],
    why: "a process and database per context: every call between contexts is a hop; saga",
};

/// Every context in exactly one group, groups in a canonical order (so two spellings of one
/// grouping are equal), and the preset's name when the grouping is a preset's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    groups: Vec<Group>,
    preset: Option<&'static str>,
}

/// The contexts one process hosts, over one database. Contexts are kept in name order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    contexts: Vec<Context>,
    /// The preset's name for this group (or the one its process was given); `None` names
    /// it by its contexts.
    name: Option<String>,
}

/// How a topology checks out (see the module's rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkout {
    /// Every context checkout touches shares one database: local transactions, as the
    /// monolith runs them (`checkout_mode` still chooses split or single).
    Local,
    /// Some of them are in another process: the orchestrated saga with compensation and
    /// recovery, as `micro/orders` runs it.
    Saga,
}

/// What is wrong with a topology or a group as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopologyError {
    /// Nothing was written.
    Empty,
    /// A name that is no context; `could_be_preset` when it stood alone, where a preset's
    /// name was allowed too.
    UnknownContext { name: String, could_be_preset: bool },
    /// A context named twice.
    Repeated { context: Context },
    /// Contexts no group hosts.
    Missing { contexts: Vec<Context> },
    /// A group with no context in it (`catalog,,users`, `catalog+`); `position` counts
    /// groups from 1.
    EmptyGroup { position: usize },
}

impl Topology {
    /// A preset's name or a spec such as `catalog+recommendations,inventory,...`.
    pub fn parse(text: &str) -> Result<Topology, TopologyError> {
        let text = text.trim();
        if let Some(preset) = PRESETS.iter().find(|preset| preset.name == text) {
            return Ok(Topology::of_preset(preset));
        }
        if text.is_empty() {
            return Err(TopologyError::Empty);
        }
        let mut groups = Vec::new();
        for (index, group) in text.split(',').enumerate() {
            let group = parse_contexts(group).map_err(|error| match error {
                TopologyError::EmptyGroup { .. } => TopologyError::EmptyGroup {
                    position: index + 1,
                },
                // A lone unknown word is as likely a mistyped preset as a context.
                TopologyError::UnknownContext { name, .. } => TopologyError::UnknownContext {
                    name,
                    could_be_preset: !text.contains([',', '+']),
                },
                other => other,
            })?;
            groups.push(group);
        }
        Topology::from_groups(groups)
    }

    /// The topology of a preset.
    pub fn of_preset(preset: &Preset) -> Topology {
        let groups = preset
            .groups
            .iter()
            .map(|(name, contexts)| Group {
                contexts: sorted(contexts.to_vec()),
                name: Some((*name).to_owned()),
            })
            .collect();
        let mut topology = Topology {
            groups,
            preset: Some(preset.name),
        };
        topology.groups.sort_by(order_of_groups);
        topology
    }

    /// The one-process topology.
    pub fn monolith() -> Topology {
        Topology::of_preset(&MONOLITH)
    }

    /// One process per context.
    pub fn micro() -> Topology {
        Topology::of_preset(&MICRO)
    }

    /// The groups, in canonical order (by their first context's name).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The preset this grouping is, if any.
    pub fn preset(&self) -> Option<&'static str> {
        self.preset
    }

    /// The group that hosts `context`.
    pub fn group_of(&self, context: Context) -> &Group {
        self.groups
            .iter()
            .find(|group| group.contains(context))
            .expect("a topology hosts every context: checked when it was built")
    }

    /// One process: nothing to route between, so no gateway.
    pub fn is_single(&self) -> bool {
        self.groups.len() == 1
    }

    /// A gateway stands in front whenever the public API spans more than one process.
    pub fn needs_gateway(&self) -> bool {
        !self.is_single()
    }

    /// How this topology checks out: the rule of the group that hosts `orders`.
    pub fn checkout(&self) -> Checkout {
        self.group_of(Context::Orders).checkout()
    }

    /// The grouping as a spec (`catalog+recommendations,inventory,...`), even for a preset.
    pub fn spec(&self) -> String {
        let groups: Vec<String> = self.groups.iter().map(Group::spec).collect();
        groups.join(",")
    }

    fn from_groups(groups: Vec<Group>) -> Result<Topology, TopologyError> {
        let mut seen = Vec::new();
        for context in groups.iter().flat_map(|group| group.contexts.iter()) {
            if seen.contains(context) {
                return Err(TopologyError::Repeated { context: *context });
            }
            seen.push(*context);
        }
        let missing: Vec<Context> = Context::ALL
            .into_iter()
            .filter(|context| !seen.contains(context))
            .collect();
        if !missing.is_empty() {
            return Err(TopologyError::Missing { contexts: missing });
        }
        let mut groups = groups;
        groups.sort_by(order_of_groups);
        // A spec that spells a preset's grouping is that preset, with its names.
        let preset = PRESETS.iter().find(|preset| {
            let named = Topology::of_preset(preset);
            named.groups.len() == groups.len()
                && named
                    .groups
                    .iter()
                    .zip(&groups)
                    .all(|(named, given)| named.contexts == given.contexts)
        });
        Ok(match preset {
            Some(preset) => Topology::of_preset(preset),
            None => Topology {
                groups,
                preset: None,
            },
        })
    }
}

impl Group {
    /// A group as written on its own (`catalog+recommendations`): what one process hosts.
    /// Unlike a topology, it need not hold every context.
    pub fn parse(text: &str) -> Result<Group, TopologyError> {
        parse_contexts(text)
    }

    /// A group of one context (a microservice).
    pub fn one(context: Context) -> Group {
        Group {
            contexts: vec![context],
            name: None,
        }
    }

    /// The same contexts under a process name of their own: how a process started as one
    /// group of a preset (`core`) calls itself in its logs as the supervisor's map does.
    pub fn named(self, name: impl Into<String>) -> Group {
        Group {
            name: Some(name.into()),
            ..self
        }
    }

    /// The contexts, in name order.
    pub fn contexts(&self) -> &[Context] {
        &self.contexts
    }

    pub fn contains(&self, context: Context) -> bool {
        self.contexts.contains(&context)
    }

    /// The process's name: the preset's name for the group, or its contexts joined by `+`
    /// (a group of one is named by its context, as the microservices always were).
    pub fn name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => self.spec(),
        }
    }

    /// The contexts joined by `+`, as `shoplab service` takes them.
    pub fn spec(&self) -> String {
        let names: Vec<&str> = self
            .contexts
            .iter()
            .map(|context| context.as_str())
            .collect();
        names.join("+")
    }

    /// Local when this group hosts every context checkout touches (and so they share its
    /// one database); the saga otherwise. Only meaningful for the group hosting `orders`:
    /// a group without it runs no checkout.
    pub fn checkout(&self) -> Checkout {
        if CHECKOUT_CONTEXTS
            .iter()
            .all(|context| self.contains(*context))
        {
            Checkout::Local
        } else {
            Checkout::Saga
        }
    }
}

impl From<Context> for Group {
    fn from(context: Context) -> Group {
        Group::one(context)
    }
}

impl FromStr for Topology {
    type Err = TopologyError;

    fn from_str(text: &str) -> Result<Topology, TopologyError> {
        Topology::parse(text)
    }
}

impl FromStr for Group {
    type Err = TopologyError;

    fn from_str(text: &str) -> Result<Group, TopologyError> {
        Group::parse(text)
    }
}

/// A list of topologies as a command line writes it (`monolith,coarse` or
/// `monolith,catalog+recommendations,inventory,cart+orders+payments,users`). A spec holds
/// commas itself, so a preset's name stands alone and anything else is read on, comma by
/// comma, until it names all seven contexts; a list that ends before that gets the
/// topology's own error (which context is missing, twice or unknown). A grouping named
/// twice is refused.
pub fn parse_list(text: &str) -> Result<Vec<Topology>, String> {
    let mut topologies: Vec<Topology> = Vec::new();
    let mut spec: Vec<&str> = Vec::new();
    for part in text.split(',').map(str::trim) {
        if spec.is_empty() && PRESETS.iter().any(|preset| preset.name == part) {
            topologies.push(Topology::parse(part).map_err(|error| error.to_string())?);
            continue;
        }
        spec.push(part);
        if let Ok(topology) = Topology::parse(&spec.join(",")) {
            topologies.push(topology);
            spec.clear();
        }
    }
    if !spec.is_empty() {
        return Err(Topology::parse(&spec.join(","))
            .err()
            .map_or_else(String::new, |error| error.to_string()));
    }
    for (index, topology) in topologies.iter().enumerate() {
        if topologies[..index]
            .iter()
            .any(|other| other.spec() == topology.spec())
        {
            return Err(format!("the topology {topology} is named twice"));
        }
    }
    Ok(topologies)
}

/// A preset by its name, a custom grouping by its spec: either parses back to the same.
impl fmt::Display for Topology {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.preset {
            Some(name) => formatter.write_str(name),
            None => formatter.write_str(&self.spec()),
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.spec())
    }
}

impl fmt::Display for TopologyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let contexts = context_names();
        match self {
            TopologyError::Empty => write!(
                formatter,
                "no topology given: name a preset ({}) or group the contexts, e.g. catalog+recommendations,inventory,cart+orders+payments,users",
                preset_names()
            ),
            TopologyError::UnknownContext {
                name,
                could_be_preset: true,
            } => write!(
                formatter,
                "{name:?} is neither a context ({contexts}) nor a preset ({})",
                preset_names()
            ),
            TopologyError::UnknownContext {
                name,
                could_be_preset: false,
            } => write!(formatter, "{name:?} is not a context ({contexts})"),
            TopologyError::Repeated { context } => write!(
                formatter,
                "{context} is named twice: every context runs in exactly one process"
            ),
            TopologyError::Missing { contexts } => {
                let names: Vec<&str> = contexts.iter().map(|context| context.as_str()).collect();
                write!(
                    formatter,
                    "no process hosts {}: every context runs in exactly one process",
                    names.join(", ")
                )
            }
            TopologyError::EmptyGroup { position } => write!(
                formatter,
                "process {position} hosts no context (an empty name between ',' or '+')"
            ),
        }
    }
}

impl std::error::Error for TopologyError {}

fn parse_contexts(text: &str) -> Result<Group, TopologyError> {
    let mut contexts = Vec::new();
    for name in text.split('+') {
        let name = name.trim();
        if name.is_empty() {
            return Err(TopologyError::EmptyGroup { position: 1 });
        }
        let context = Context::parse(name).ok_or_else(|| TopologyError::UnknownContext {
            name: name.to_owned(),
            could_be_preset: false,
        })?;
        if contexts.contains(&context) {
            return Err(TopologyError::Repeated { context });
        }
        contexts.push(context);
    }
    Ok(Group {
        contexts: sorted(contexts),
        name: None,
    })
}

fn sorted(mut contexts: Vec<Context>) -> Vec<Context> {
    contexts.sort_by_key(|context| context.as_str());
    contexts
}

fn order_of_groups(left: &Group, right: &Group) -> std::cmp::Ordering {
    left.contexts[0].as_str().cmp(right.contexts[0].as_str())
}

fn context_names() -> String {
    let names: Vec<&str> = Context::ALL
        .iter()
        .map(|context| context.as_str())
        .collect();
    names.join(", ")
}

fn preset_names() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|preset| preset.name).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;
