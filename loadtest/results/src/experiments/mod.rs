//! What each experiment found on one build ([`Outcome`]), by experiment.

pub mod capacity;
pub mod deploy;
pub mod faults;
pub mod nodes;
pub mod scale;
pub mod throughput;

use serde::{Deserialize, Serialize};

use crate::analysis::Timeline;
use crate::invariants::CheckReport;

/// One experiment by name, as `--experiments` takes them. They run in this order whatever
/// order they were asked in: scale last, since it leaves its added replica behind, and every
/// other experiment must find each component at one replica on both builds (a node drained
/// under a monolith of two replicas and micro services of one would favour the monolith).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Throughput,
    Deploy,
    Faults,
    /// A cluster's node lost, then one drained, under load (platforms with nodes).
    Nodes,
    Scale,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Throughput => "throughput",
            Kind::Deploy => "deploy",
            Kind::Faults => "faults",
            Kind::Scale => "scale",
            Kind::Nodes => "nodes",
        }
    }
}

/// What one experiment found on one build.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum Findings {
    Throughput {
        levels: Vec<throughput::Level>,
        /// The capacity at the SLO from open-loop load; absent in runs without it.
        #[serde(default)]
        capacity: Option<capacity::Capacity>,
    },
    Deploy(deploy::Deploys),
    Faults {
        cells: Vec<faults::Cell>,
        /// The whole run, every cell one after the other, in slices of [`EVENT_SLICE_MS`].
        timeline: Timeline,
    },
    /// Boxed: the largest of the findings by far.
    Scale(Box<scale::Scale>),
    Nodes(nodes::Nodes),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Monolith for a topology of one process, micro for any topology with a gateway.
    pub build: crate::component::Build,
    /// The topology it ran on (`domain::topology`): a preset's name or a spec. None in a
    /// results file from before topologies, which ran the build's own preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    pub findings: Findings,
    pub invariants: CheckReport,
    /// Whether every reservation was settled before the audit was taken.
    pub quiescent: bool,
    pub duration_s: f64,
    /// Requests the experiment sent (the history written to `history.jsonl`).
    pub requests: usize,
}

impl Outcome {
    /// The topology's name: its preset or spec, or the build's own preset in an older file.
    pub fn topology_name(&self) -> &str {
        self.topology.as_deref().unwrap_or(self.build.as_str())
    }

    /// Whether it ran one of the two builds (the `monolith` or `micro` preset), which every
    /// section comparing the two builds reads; an intermediate topology is the spectrum's.
    pub fn is_build(&self) -> bool {
        self.topology_name() == self.build.as_str()
    }
}

/// The slice width of the fault and deploy timelines: fine enough to show a 1.5 s fault
/// window of the quick profile as more than one point.
pub const EVENT_SLICE_MS: u64 = 250;

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn scale_runs_after_every_other_experiment_whatever_the_order_asked() {
        let mut kinds = vec![Kind::Scale, Kind::Nodes, Kind::Deploy, Kind::Faults];
        kinds.sort();
        assert_eq!(
            kinds,
            vec![Kind::Deploy, Kind::Faults, Kind::Nodes, Kind::Scale]
        );
    }
}
