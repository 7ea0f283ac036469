//! Nodes: what only a cluster can show. Under steady load (through the front door), a
//! worker node is **lost** — killed as a host dies, its engine and every task on it at once
//! — and timed until the orchestrator runs every replica elsewhere; the node comes back
//! empty. Then another worker is **drained** for maintenance and timed the same way, and
//! then one is drained **with spares**: each service on it first gets one more replica
//! elsewhere (the procedure for services with one replica, [`Drain::WithSpares`]), timed
//! from the first scale-up. For each: the requests that failed from the event until 250 ms
//! after it was over, and the invariants after (no order, unit of stock or cent may be
//! lost).
//!
//! The node holding the database and the one running the control plane are never chosen:
//! losing the database's node stops every write until it returns (the report says which
//! node that is), and a swarm of one manager loses its control plane with it.

use std::time::{Duration, Instant};

use super::{EVENT_SLICE_MS, Experiment};
use crate::load;
use loadtest_platform::{Drain, NodeView};
use loadtest_results::analysis::{stats, timeline, window};
use loadtest_results::experiments::nodes::{NodeEvent, Nodes};

/// The load runs this long before the first event and after each.
const SETTLE: Duration = Duration::from_secs(2);
/// An event's window runs this long after it was over.
const TAIL: Duration = Duration::from_millis(250);
/// The load's ceiling: a node loss waits for the swarm to notice the node is gone (its
/// heartbeats, seconds) and to start every task elsewhere, then the node's return, then two
/// drains and their returns. The load stops as soon as they are done.
const CEILING: Duration = Duration::from_secs(600);

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Nodes> {
    let profile = experiment.profile;
    let before = experiment.target.nodes().await;
    let database_node = before
        .iter()
        .find(|node| node.holds_database)
        .map(|node| node.hostname.clone());
    experiment.step(&format!(
        "a node lost, then one drained, under {} users",
        profile.steady_users
    ));
    let plan = load::LoadPlan {
        users: profile.steady_users,
        duration: CEILING,
        ..experiment.plan()
    };
    let epoch = Instant::now();
    let recorder = experiment.recorder(epoch);
    let target = &mut *experiment.target;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let events = async {
        let mut timed = Vec::new();
        tokio::time::sleep(SETTLE).await;
        for kind in [Kind::Loss, Kind::Drain, Kind::DrainWithSpares] {
            let nodes = target.nodes().await;
            let Some(victim) = victim(&nodes) else {
                timed.push(Timed {
                    kind,
                    node: String::new(),
                    tasks: Vec::new(),
                    started_at_ms: epoch.elapsed().as_millis() as u64,
                    over_at_ms: epoch.elapsed().as_millis() as u64,
                    error: Some(format!(
                        "not applicable: no worker node with a task of the shop among {} \
                         node(s) (the manager holds the database and is never chosen)",
                        nodes.len()
                    )),
                });
                continue;
            };
            let started_at_ms = epoch.elapsed().as_millis() as u64;
            let outcome = match kind {
                Kind::Loss => target.lose_node(&victim.hostname).await,
                Kind::Drain => target.drain_node(&victim.hostname, Drain::Plain).await,
                Kind::DrainWithSpares => {
                    target.drain_node(&victim.hostname, Drain::WithSpares).await
                }
            };
            let over_at_ms = epoch.elapsed().as_millis() as u64;
            let mut error = outcome.err().map(|error| format!("{error:#}"));
            tokio::time::sleep(TAIL).await;
            if let Err(back) = target.return_node(&victim.hostname).await {
                error.get_or_insert(format!("the node did not come back: {back:#}"));
            }
            timed.push(Timed {
                kind,
                node: victim.hostname.clone(),
                tasks: victim.tasks.iter().map(ToString::to_string).collect(),
                started_at_ms,
                over_at_ms,
                error,
            });
            tokio::time::sleep(SETTLE).await;
        }
        let _ = done_tx.send(());
        timed
    };
    let stop = async {
        let _ = done_rx.await;
    };
    let (run, timed) = tokio::join!(
        load::run_until(&plan, &experiment.shop, &recorder, stop),
        events
    );
    let run = run?;
    let load_ended_ms = (run.wall_s * 1000.0) as u64;
    let events = timed
        .into_iter()
        .map(|event| {
            let to = event.over_at_ms + TAIL.as_millis() as u64;
            let seen = stats(window(&run.records, event.started_at_ms, to, |_| true));
            let error = match event.error {
                None if to > load_ended_ms => Some(format!(
                    "not measured: it ended at {to} ms, after the load stopped at \
                     {load_ended_ms} ms"
                )),
                error => error,
            };
            NodeEvent {
                kind: event.kind.as_str().to_owned(),
                node: event.node,
                tasks: event.tasks,
                started_at_ms: event.started_at_ms,
                recovered_ms: event.over_at_ms - event.started_at_ms,
                requests: seen.requests,
                failed_requests: seen.requests - seen.ok,
                error,
            }
        })
        .collect();
    let timeline = timeline(&run.records, EVENT_SLICE_MS);
    experiment.history.extend(run.records);
    Ok(Nodes {
        nodes: before.len(),
        database_node,
        events,
        timeline,
    })
}

/// The worker (neither the manager nor the database's node) with the most tasks of the shop.
fn victim(nodes: &[NodeView]) -> Option<&NodeView> {
    nodes
        .iter()
        .filter(|node| !node.manager && !node.holds_database && !node.tasks.is_empty())
        .max_by_key(|node| node.tasks.len())
}

struct Timed {
    kind: Kind,
    node: String,
    tasks: Vec<String>,
    started_at_ms: u64,
    over_at_ms: u64,
    error: Option<String>,
}

#[derive(Clone, Copy)]
enum Kind {
    Loss,
    Drain,
    DrainWithSpares,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Loss => "loss",
            Kind::Drain => "drain",
            Kind::DrainWithSpares => "drain-with-spares",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Context;
    use loadtest_results::component::Component;

    fn node(name: &str, manager: bool, tasks: usize) -> NodeView {
        NodeView {
            hostname: name.into(),
            manager,
            holds_database: manager,
            tasks: vec![Component::Service(Context::Catalog); tasks],
        }
    }

    #[test]
    fn the_victim_is_the_busiest_worker_never_the_manager() {
        let nodes = [
            node("n1", true, 9),
            node("n2", false, 2),
            node("n3", false, 4),
        ];
        assert_eq!(
            victim(&nodes).map(|node| node.hostname.as_str()),
            Some("n3")
        );
        let alone = [node("n1", true, 9), node("n2", false, 0)];
        assert!(
            victim(&alone).is_none(),
            "an empty worker is not worth losing"
        );
    }
}
