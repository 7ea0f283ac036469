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

impl HopLadder {
    /// What one service boundary adds to a request: the route through the gateway minus the
    /// catalog service asked directly for the same page. Both rungs are measured in the same
    /// rounds, one request after the other, so a change in the machine's latency over the
    /// run moves both; the monolith's rung is measured minutes apart, on the other build's
    /// turn, and a difference against it read anything from +22 to +516 µs over eight runs
    /// of one binary on one machine (2026-12-07), this one from +154 to +269 µs.
    pub fn boundary_us(&self) -> i64 {
        self.gateway_us as i64 - self.service_us as i64
    }
}

#[cfg(test)]
mod tests {
    use super::HopLadder;

    #[test]
    fn the_boundary_is_the_gateway_rung_over_the_service_rung_of_the_same_rounds() {
        // The q1 run of 2026-12-07: the monolith's turn read slow, and gateway - monolith
        // would have called the boundary +22 µs.
        let ladder = HopLadder {
            requests: 400,
            null_us: 160,
            monolith_us: 533,
            service_us: 384,
            gateway_us: 555,
        };
        assert_eq!(ladder.boundary_us(), 171);
    }
}
