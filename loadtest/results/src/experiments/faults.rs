//! The fault matrix's findings: one [`Cell`] per fault kind and context.

use domain::Context;
use serde::{Deserialize, Serialize};

use crate::analysis::WindowStats;
use crate::profile::FaultKind;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub kind: FaultKind,
    pub context: Context,
    /// The process the fault hit (`monolith` for every context of the monolith).
    pub process: String,
    pub injected_at_ms: u64,
    pub healed_at_ms: u64,
    pub journeys: Vec<Phases>,
    /// Share of journey steps (route templates) that did worse during the fault.
    pub blast_radius: f64,
    pub degraded_steps: Vec<String>,
    /// From the heal to the first 250 ms in which requests succeed as often as before.
    pub time_to_recover_ms: Option<u64>,
    /// Processes the lab restarted after this fault (self-healing).
    pub restarts: usize,
    /// Where the platform's own restart policy brought a killed or crashed process back:
    /// the longest time one was gone, from its exit (or the kill) to running and ready
    /// again. None where nothing healed by itself (the lab's restarts are in `restarts`).
    #[serde(default)]
    pub healed_in_ms: Option<u64>,
    /// Set when the fault could not be injected or healed as asked — including "not
    /// applicable: ..." (the build has no such link) and "unavailable: ..." (this machine
    /// or backend cannot realize it).
    pub error: Option<String>,
    /// Whether the fault was in force during the window. When not, the cell carries no
    /// measurements: the windows would only show an undisturbed shop.
    pub applied: bool,
    /// What was in force: the proxy's toxics, the CPU quota.
    pub note: Option<String>,
    /// Retry amplification during the fault (microservices): the requests the context's
    /// callers sent to it per call they made, from the callers' own hop counters
    /// (`hop_attempts_total` over `hop_calls_total`, upstream = the context) read at the
    /// injection and at the heal. 1.0 when nothing was retried; `None` on the monolith (no
    /// hops) or where a caller's counters could not be read (a killed caller).
    #[serde(default)]
    pub attempts_per_call: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Phases {
    pub journey: String,
    pub before: WindowStats,
    pub during: WindowStats,
    pub after: WindowStats,
}
