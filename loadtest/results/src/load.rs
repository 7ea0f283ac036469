//! What `shoplab load --json FILE` writes: one load run against one shop, its counts, the
//! latency of its successful requests, and the gates it was held to.
//!
//! Failed requests are counted apart and are in neither the throughput nor the latency: a
//! shop that refuses every request at once is not a fast shop.

use serde::{Deserialize, Serialize};

use crate::gates::Verdict;
use crate::latency::Percentiles;

/// One `shoplab load` run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadSummary {
    pub base_url: String,
    /// Closed-loop Goose users.
    pub users: usize,
    /// Goose's ceiling on requests per second (`--rate`), not a target.
    #[serde(default)]
    pub rate_ceiling: Option<usize>,
    /// The wall time the load ran, in seconds.
    pub wall_s: f64,
    pub requests: usize,
    /// Requests answered 2xx (and the refusals a journey expects, as the recorder classifies
    /// them).
    pub successes: usize,
    pub failures: usize,
    /// `failures / requests`; `None` when no request was sent.
    pub error_rate: Option<f64>,
    /// Successful requests per wall second.
    pub successes_per_s: f64,
    /// Percentiles of the successful requests' latency (time to first byte); `None` when
    /// none succeeded.
    pub latency_of_successes: Option<Percentiles>,
    /// Goose's coordinated-omission-corrected percentiles (`average` back-fill). Goose mixes
    /// every request into them, so they are given only when no request failed.
    #[serde(default)]
    pub corrected: Option<Percentiles>,
    /// CPU seconds the generator used (user + system).
    pub generator_cpu_s: f64,
    /// Per route template, in name order.
    pub transactions: Vec<TransactionSummary>,
    /// `--fail-if` gates and the `--max-error-rate` limit, each with what was measured.
    pub gates: Vec<Verdict>,
    /// Every gate passed.
    pub passed: bool,
}

/// One route template of the journeys (`GET /api/products/{id}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransactionSummary {
    pub name: String,
    pub requests: usize,
    pub successes: usize,
    /// `None` when none of its requests succeeded.
    pub latency_of_successes: Option<Percentiles>,
}
