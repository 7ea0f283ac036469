//! The deploy experiment's findings: each deploy under load, and the storm.

use serde::{Deserialize, Serialize};

use crate::analysis::Timeline;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deploy {
    pub component: String,
    /// `recreate`, `rolling` or `rollback`.
    pub strategy: String,
    pub started_at_ms: u64,
    /// Recreate: from the stop signal until the new process answered `/ready`. Rolling:
    /// from the new process's start until traffic moved to it and the old one stopped.
    /// Rollback: until the bad release was given up.
    pub time_to_ready_ms: u64,
    /// Requests sent from the deploy's start until 250 ms before the next deploy: to 1.25 s
    /// after ready for a recreate (callers' breakers take a second to close again), to
    /// 250 ms after ready for a rolling deploy or a rollback.
    pub requests: usize,
    pub failed_requests: usize,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Storm {
    pub deploys: usize,
    pub started_at_ms: u64,
    pub strategy: String,
    pub duration_ms: u64,
    pub requests: usize,
    pub failed_requests: usize,
    pub median_time_to_ready_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deploys {
    pub each: Vec<Deploy>,
    pub storm: Storm,
    /// The whole run in slices of [`EVENT_SLICE_MS`], on the clock of the deploys' times.
    pub timeline: Timeline,
}
