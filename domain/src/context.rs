//! The names of the bounded contexts, spelled once.

use serde::{Deserialize, Serialize};

/// A bounded context. The spelling (`as_str`) is the same everywhere: folder, module,
/// service name, table owner, metric label, compose service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Context {
    Catalog,
    Inventory,
    Cart,
    Orders,
    Payments,
    Users,
    Recommendations,
}

impl Context {
    pub const ALL: [Context; 7] = [
        Context::Catalog,
        Context::Inventory,
        Context::Cart,
        Context::Orders,
        Context::Payments,
        Context::Users,
        Context::Recommendations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Context::Catalog => "catalog",
            Context::Inventory => "inventory",
            Context::Cart => "cart",
            Context::Orders => "orders",
            Context::Payments => "payments",
            Context::Users => "users",
            Context::Recommendations => "recommendations",
        }
    }

    pub fn parse(name: &str) -> Option<Context> {
        Context::ALL
            .into_iter()
            .find(|context| context.as_str() == name)
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}
