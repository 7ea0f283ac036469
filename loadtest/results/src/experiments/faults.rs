//! The fault matrix's findings: one [`Cell`] per cell of the profile's matrix (a kind, a
//! context, and a rate where the kind takes one).

use serde::{Deserialize, Serialize};

use crate::analysis::WindowStats;
use crate::profile::FaultCell;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    /// What was injected where: `kind`, `context` and, for `errors`, `rate`, written beside
    /// the cell's other fields as before the rate was recorded. A cell from then reads at
    /// the rate every `errors` cell ran at ([`crate::profile::RATE_BEFORE_CELLS`]).
    #[serde(flatten)]
    pub fault: FaultCell,
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
    /// The calls `attempts_per_call` is over: a ratio of a handful of calls says little,
    /// and the report says how many it was. Absent in files from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop_calls: Option<u64>,
}

/// A journey that succeeded less often than this before a fault was failing already: what
/// the cell measured of it says nothing about the fault.
pub const HEALTHY_BEFORE: f64 = 0.9;

impl Cell {
    /// The journeys that were failing, or sent nothing, before the fault was injected.
    pub fn unhealthy_before(&self) -> impl Iterator<Item = &Phases> {
        self.journeys.iter().filter(|phases| {
            !phases
                .before
                .success_rate
                .is_some_and(|rate| rate >= HEALTHY_BEFORE)
        })
    }

    /// Whether the blast radius says something about this fault: it was in force, and every
    /// journey was sent and healthy before it. A shop that already failed (a process still
    /// down from the cell before) degrades nothing further, and its 0 % would read as a
    /// contained fault.
    pub fn judgeable(&self) -> bool {
        self.applied && self.unhealthy_before().next().is_none()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Phases {
    pub journey: String,
    pub before: WindowStats,
    pub during: WindowStats,
    pub after: WindowStats,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FaultKind, RATE_BEFORE_CELLS};
    use domain::Context;

    /// A cell as results.json held it before the rate was recorded.
    const OLD_CELL: &str = r#"{
        "kind": "errors", "context": "inventory", "process": "inventory",
        "injected_at_ms": 1750, "healed_at_ms": 3000, "journeys": [],
        "blast_radius": 0.25, "degraded_steps": ["POST /api/orders"],
        "time_to_recover_ms": 250, "restarts": 0, "error": null, "applied": true,
        "note": null
    }"#;

    #[test]
    fn a_cell_records_its_rate_beside_its_kind_and_old_cells_read_at_the_old_rate() {
        let old: Cell = serde_json::from_str(OLD_CELL).unwrap();
        assert_eq!(old.fault.kind, FaultKind::Errors);
        assert_eq!(old.fault.context, Context::Inventory);
        assert_eq!(old.fault.rate, Some(RATE_BEFORE_CELLS));
        assert_eq!(old.degraded_steps, ["POST /api/orders"]);
        let cell = Cell {
            fault: FaultCell::errors(Context::Inventory, 0.7).unwrap(),
            ..old
        };
        let written = serde_json::to_value(&cell).unwrap();
        assert_eq!(written["kind"], "errors");
        assert_eq!(written["context"], "inventory");
        assert_eq!(written["rate"], 0.7);
        let read: Cell = serde_json::from_value(written).unwrap();
        assert_eq!(read.fault, cell.fault);
        assert_eq!(read.blast_radius, 0.25);
    }
}
