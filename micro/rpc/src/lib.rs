//! The internal API of every context, in one place per context: the routes a service mounts
//! over its in-process implementation, and the client that implements the same domain trait
//! over HTTP. Keeping both halves side by side means a path or a body shape cannot drift
//! between caller and callee.
//!
//! Errors survive the hop: a service answers with the shop's error body, and the client maps
//! status + code back to the same `DomainError` variant, so a 404 in `catalog` is a 404 at
//! the gateway. A hop that fails (refused, reset, timed out, its circuit breaker open, the
//! caller's deadline passed) is `Unavailable`.

pub mod cart;
pub mod catalog;
pub mod deadline;
pub mod directory;
pub mod inventory;
pub mod orders;
pub mod payments;
pub mod recommendations;
pub mod trust;
pub mod upstream;
pub mod users;

pub use directory::{Directory, ReplicaList};
pub use upstream::{Upstream, UpstreamSettings};
