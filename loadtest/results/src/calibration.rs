//! The calibration measured in the same run as the experiments it qualifies: the generator's
//! ceiling against a null endpoint, and the parts of one service boundary (the hop ladder).

use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    pub null_endpoint: NullEndpoint,
    pub hop: HopLadder,
}

/// The generator against an endpoint that costs nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NullEndpoint {
    pub users: usize,
    pub duration_s: f64,
    pub requests_per_s: f64,
    pub latency: Percentiles,
    /// Generator CPU seconds / (wall seconds x cores it may use).
    pub generator_cpu_share: f64,
    /// The generator was the bottleneck, so `requests_per_s` is its ceiling. When not, the
    /// server side set the pace (the shop's cores were busy with something else) and the
    /// generator's ceiling is higher than this.
    pub generator_limited: bool,
}

/// Medians of `requests` sequential requests per rung (after a warm-up), in microseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HopLadder {
    pub requests: usize,
    /// `GET /null` on the front door: a loopback HTTP round trip and nothing else.
    pub null_us: u64,
    /// `GET /api/products?page=1&per_page=20` on the monolith.
    pub monolith_us: u64,
    /// The catalog service's own search route (what the gateway calls for that page).
    pub service_us: u64,
    /// The same public route through the gateway: one service boundary more.
    pub gateway_us: u64,
}
