//! The throughput sweep's findings: one [`Level`] per load level and repeat.

use serde::{Deserialize, Serialize};

use crate::analysis::Timeline;
use crate::latency::{Percentiles, Quantile};
use crate::resources::ProcessUsage;

/// A generator busier than this (share of the cores it may use) may have limited the level.
pub const GENERATOR_LIMIT: f64 = 0.8;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Level {
    pub users: usize,
    pub repeat: usize,
    pub requests: usize,
    pub requests_per_s: f64,
    pub errors: usize,
    pub error_rate: f64,
    /// Of the successful requests only.
    pub raw: Percentiles,
    /// The successful requests' latency distribution (raw) at each nine, for the "nines"
    /// plot; empty in results written before it was recorded.
    #[serde(default)]
    pub nines: Vec<Quantile>,
    /// After Goose's coordinated-omission back-fill (`average` cadence).
    pub corrected: Percentiles,
    /// CPU seconds of the system under test; `None` where the target has nothing to read
    /// them by (no probes: the Kubernetes target), never a zero standing in for "unknown".
    pub sut_cpu_s: Option<f64>,
    pub sut_peak_rss_mib: Option<f64>,
    /// CPU and memory per process of the system under test (the sums above, split); empty
    /// where the target has no probes, and in results recorded before it was.
    #[serde(default)]
    pub processes: Vec<ProcessUsage>,
    /// Calls the shop's processes sent each other during the level (hop attempts, retries
    /// included, summed over every caller's `hop_attempts_total`): what the CPU above paid
    /// for in hops. `None` on the monolith, where the lab cannot reach the processes'
    /// `/metrics` (a swarm's overlay), and in results recorded before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hops: Option<u64>,
    /// Successful requests per CPU second of the system under test: a failed request, often
    /// the cheapest to answer, must not make serving look cheaper. (All requests in results
    /// written before 2026-12-07, when the sweep's levels failed none or almost none.)
    pub requests_per_sut_cpu_s: Option<f64>,
    pub generator_cpu_s: f64,
    /// Generator CPU seconds / (wall seconds x cores it may use).
    pub generator_cpu_share: f64,
    /// The generator was busy enough that it, not the shop, may have set the pace.
    pub generator_limited: bool,
    /// Where the load came from several generators placed by the platform (`compare
    /// --generators N`): each one's share. The figures above are theirs merged: records
    /// joined on one clock, histograms added, CPU summed; the share is the busiest one's.
    /// Empty when the lab's own process was the generator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<GeneratorUsage>,
    /// Per second.
    pub timeline: Timeline,
}

impl Level {
    /// The requests that succeeded: what CPU is priced per (see `requests_per_sut_cpu_s`).
    pub fn successes(&self) -> usize {
        self.requests.saturating_sub(self.errors)
    }
}

/// One of several load generators of a level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorUsage {
    /// Its task or pod, and its node.
    pub generator: String,
    /// Its share, `k/n`.
    pub share: String,
    /// When it started, after the first generator did (how well the start was agreed).
    pub started_after_ms: u64,
    pub wall_s: f64,
    pub requests: usize,
    pub cpu_s: f64,
    /// CPU seconds / (wall seconds x the cores it was given).
    pub cpu_share: f64,
}
