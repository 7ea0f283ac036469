//! The nodes experiment's findings: a cluster's node lost under load, then one drained for
//! maintenance, then one drained after its services got a spare replica, each timed until the orchestrator ran every replica elsewhere.

use serde::{Deserialize, Serialize};

use crate::analysis::Timeline;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Nodes {
    /// The cluster's nodes when the experiment began.
    pub nodes: usize,
    /// The node holding the database (never lost or drained: see [`NodeEvent`]).
    pub database_node: Option<String>,
    pub events: Vec<NodeEvent>,
    /// The whole run in slices of [`super::EVENT_SLICE_MS`], on the clock of the events.
    pub timeline: Timeline,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeEvent {
    /// `loss` (the node dies with every task on it), `drain` (planned maintenance) or
    /// `drain-with-spares` (each service on the node first got one more replica elsewhere).
    pub kind: String,
    pub node: String,
    /// The components that had a task on the node, one entry per task.
    pub tasks: Vec<String>,
    pub started_at_ms: u64,
    /// From the event until every service ran all its replicas again, none on the node.
    pub recovered_ms: u64,
    /// Requests sent from the event until 250 ms after it was recovered.
    pub requests: usize,
    pub failed_requests: usize,
    /// Why it was not measured: no node to choose, an error of the platform.
    pub error: Option<String>,
}
