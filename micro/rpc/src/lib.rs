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

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use domain::trust::Identity;

/// The one middleware in front of a service's internal routes (mounted by `micro-kit` as a
/// route layer, so an unknown path is still a plain 404): who calls ([`trust`]: 401 without
/// a valid service token, 403 from a caller the route's rule does not name), then until when ([`deadline`]: 503 past it, 422 malformed), and
/// the handler runs inside that deadline. The caller is checked first, so a stranger learns
/// nothing, not even how its deadline is read.
///
/// One layer rather than one per concern: every axum layer around a route costs
/// a boxed clone of everything inside it on each request, so a hop paid for its depth
/// (callgrind, `bench/hop-instructions.sh`).
pub async fn inbound(
    State(identity): State<Arc<Identity>>,
    request: Request,
    next: Next,
) -> Response {
    let request = match trust::admit(&identity, request) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    match deadline::read(&request) {
        Err(refused) => *refused,
        Ok(None) => next.run(request).await,
        Ok(Some(at)) => deadline::scope(at, next.run(request)).await,
    }
}
