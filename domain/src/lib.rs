//! The shop's domain: one trait per bounded context, the types they exchange, the one
//! error enum, input validation, the in-process fault registry and deterministic seed data.
//!
//! Architecture invariant: this crate knows nothing about HTTP or SQL. The monolith
//! implements the traits in-process over one database; the microservices implement them as
//! HTTP clients. Everything that must be identical in both builds (rules, validation, the
//! shapes on the wire) lives here.

pub mod admin;
pub mod cart;
pub mod catalog;
pub mod context;
pub mod error;
pub mod faults;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod recommendations;
pub mod seed;
pub mod tokens;
pub mod topology;
pub mod trust;
pub mod users;

pub use context::Context;
pub use error::{DomainError, DomainResult};
pub use topology::Topology;

use std::sync::Arc;

/// Every context the public API needs, as trait objects.
///
/// The public router is written against this struct only, so the monolith (in-process
/// implementations) and the gateway (HTTP clients) mount the very same handlers.
#[derive(Clone)]
pub struct Shop {
    pub catalog: Arc<dyn catalog::Catalog>,
    pub inventory: Arc<dyn inventory::Inventory>,
    pub cart: Arc<dyn cart::Cart>,
    pub orders: Arc<dyn orders::Orders>,
    pub users: Arc<dyn users::Users>,
    pub recommendations: Arc<dyn recommendations::Recommendations>,
    pub tokens: tokens::TokenKeys,
}

/// Milliseconds since the Unix epoch; the one clock format stored in every table.
pub fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
