//! The contract suite: black-box cases written once against a base URL, and the harness
//! that runs each of them against a freshly started, freshly seeded target.
//!
//! Every build (the monolith in-process, the microservices behind their gateway, a
//! docker-compose deployment) runs these same cases unchanged; only the function that
//! starts a target differs. A case sees nothing but HTTP, so a case that passes on one
//! build and fails on another points at the boundary, not at the test.

mod cases;
mod client;
mod database;
mod harness;
mod json;

pub use cases::cases;
pub use client::{Call, Ctx, Resp, User};
pub use database::{POSTGRES_URL_ENV, TestDatabase};
pub use harness::{
    ADMIN_TOKEN_ENV, ADMIN_URL_ENV, BASE_URL_ENV, METRICS_TOKEN_ENV, READY_DEADLINE, StartFn,
    StartedTarget, TOKEN_SECRET_ENV, Target, default_reset, run_main, wait_ready,
};
pub use json::Fields;

use futures::future::BoxFuture;

/// One contract case: a sentence for a name, and the async body that checks it.
#[derive(Clone, Copy)]
pub struct Case {
    /// `area::sentence`, e.g. `orders::checkout_without_stock_returns_409_and_changes_nothing`.
    pub name: &'static str,
    pub run: fn(Ctx) -> BoxFuture<'static, anyhow::Result<()>>,
}
