//! Deploys: under steady load, redeploy each component of one build — the monolith: the
//! whole process; micro: each service alone, then the gateway — and count what the users
//! saw; then a deploy storm (the profile's number of deploys in a row).
//!
//! Strategy: **recreate** (SIGTERM, drain in-flight requests, exit; start the same build on
//! the same port; wait for `/ready`). Rolling deploys need a front door that keeps the
//! public port while instances change; see ARCHITECTURE.md for their status.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Experiment;
use crate::lab::analysis::{stats, window};
use crate::lab::load;
use crate::supervisor::Component;

#[derive(Clone, Debug, Serialize)]
pub struct Deploy {
    pub component: String,
    pub strategy: &'static str,
    pub started_at_ms: u64,
    /// From the stop signal until the new process answered `/ready`.
    pub time_to_ready_ms: u64,
    /// Requests sent from the deploy's start to 500 ms after it was ready.
    pub requests: usize,
    pub failed_requests: usize,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Storm {
    pub deploys: usize,
    pub strategy: &'static str,
    pub duration_ms: u64,
    pub requests: usize,
    pub failed_requests: usize,
    pub median_time_to_ready_ms: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Deploys {
    pub each: Vec<Deploy>,
    pub storm: Storm,
}

/// After each deploy the load runs this long on the new process before the next.
const SETTLE: Duration = Duration::from_millis(500);

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Deploys> {
    let profile = experiment.profile;
    let components = experiment.target.components();
    let deploys = components.len() + profile.storm;
    // Each deploy is about half a second of restart plus the settle time; the load runs
    // on until the events are done and is cut there.
    let duration = Duration::from_secs(2) + Duration::from_millis(1200) * deploys as u32;
    experiment.step(&format!(
        "{} deploys then a storm of {} under {} users",
        components.len(),
        profile.storm,
        profile.steady_users
    ));
    let plan = load::LoadPlan {
        users: profile.steady_users,
        duration,
        ..experiment.plan()
    };
    let epoch = Instant::now();
    let recorder = experiment.recorder(epoch);
    let target = &mut *experiment.target;
    let events = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut timed = Vec::new();
        let storm_order = components.iter().cycle().take(profile.storm);
        for (index, component) in components.iter().chain(storm_order).enumerate() {
            let started_at_ms = epoch.elapsed().as_millis() as u64;
            let outcome = target.recreate(*component).await;
            let ready_at_ms = epoch.elapsed().as_millis() as u64;
            timed.push((
                index < components.len(),
                *component,
                started_at_ms,
                ready_at_ms,
                outcome.err().map(|error| format!("{error:#}")),
            ));
            tokio::time::sleep(SETTLE).await;
        }
        timed
    };
    let (run, timed) = tokio::join!(load::run(&plan, &experiment.shop, &recorder), events);
    let run = run?;
    let count = |from: u64, to: u64| -> (usize, usize) {
        let seen = stats(window(&run.records, from, to, |_| true));
        (seen.requests, seen.requests - seen.ok)
    };
    let mut each = Vec::new();
    let mut storm_ready = Vec::new();
    let (mut storm_from, mut storm_to) = (u64::MAX, 0);
    for (single, component, started_at_ms, ready_at_ms, error) in timed {
        let to = ready_at_ms + SETTLE.as_millis() as u64;
        if single {
            let (requests, failed_requests) = count(started_at_ms, to);
            each.push(deploy(
                component,
                started_at_ms,
                ready_at_ms,
                requests,
                failed_requests,
                error,
            ));
        } else {
            storm_ready.push(ready_at_ms - started_at_ms);
            storm_from = storm_from.min(started_at_ms);
            storm_to = storm_to.max(to);
        }
    }
    storm_ready.sort_unstable();
    let (requests, failed_requests) = count(storm_from, storm_to);
    let storm = Storm {
        deploys: storm_ready.len(),
        strategy: "recreate",
        duration_ms: storm_to.saturating_sub(storm_from),
        requests,
        failed_requests,
        median_time_to_ready_ms: storm_ready.get(storm_ready.len() / 2).copied().unwrap_or(0),
    };
    experiment.history.extend(run.records);
    Ok(Deploys { each, storm })
}

fn deploy(
    component: Component,
    started_at_ms: u64,
    ready_at_ms: u64,
    requests: usize,
    failed_requests: usize,
    error: Option<String>,
) -> Deploy {
    Deploy {
        component: component.to_string(),
        strategy: "recreate",
        started_at_ms,
        time_to_ready_ms: ready_at_ms - started_at_ms,
        requests,
        failed_requests,
        error,
    }
}
