//! The scale experiment's findings: the same load before and after one more replica.

use serde::{Deserialize, Serialize};

use crate::latency::Percentiles;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scale {
    /// The component that got a second replica.
    pub component: String,
    pub users: usize,
    pub before: Half,
    pub after: Half,
    /// after / before, requests per second.
    pub speedup: f64,
    /// Cores the system under test may use (replicas share them).
    pub sut_cores: usize,
    /// CPU seconds per process during the first half (how the hottest was chosen).
    pub cpu_by_process: Vec<(String, f64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Half {
    pub replicas: usize,
    pub requests_per_s: f64,
    pub error_rate: f64,
    pub latency: Percentiles,
    /// `None` where the target has nothing to read CPU by (as a throughput level's).
    pub sut_cpu_s: Option<f64>,
    pub requests_per_sut_cpu_s: Option<f64>,
}
