//! Deploys: under steady load (through the front door), redeploy each component of one
//! build — the monolith: the whole process; micro: each service alone, then the gateway —
//! first by **recreate** (SIGTERM, drain in-flight requests, exit; start the same build on
//! the same port; wait for `/ready`), then **rolling** (start the new process on a free
//! port, wait for `/ready`, move traffic to it, drain and stop the old one); then a
//! **rollback** (a rolling deploy of a release that never gets ready is abandoned, the old
//! process keeps serving); then a **deploy storm** (the profile's number of rolling deploys
//! in a row, round the components). For each: time to ready and the requests that failed
//! from the deploy's start until 250 ms before the next one (see [`Deploy::requests`]).

use std::time::{Duration, Instant};

use super::{EVENT_SLICE_MS, Experiment};
use crate::load;
use loadtest_results::analysis::{stats, timeline, window};
use loadtest_results::experiments::deploy::{Deploy, Deploys, Storm};

/// After each deploy the load runs this long on the new process before the next.
const SETTLE: Duration = Duration::from_millis(500);
/// A deploy's window closes this long before the next deploy starts, so a request sent at
/// the end of one window has its answer before the next deploy can disturb it (measured: a
/// checkout sent 15 ms before the next recreate failed, and was counted against the rolling
/// deploy before it).
const GAP: Duration = Duration::from_millis(250);

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Deploys> {
    let profile = experiment.profile;
    let components = experiment.target.components();
    // The load's ceiling: every deploy at its usual pace on the local target (a recreate's
    // restart and settle, a roll's, a rollback's start deadline, a storm's back-to-back
    // rolls). The load ends as soon as the deploys are done; a deploy that still ends after
    // the ceiling is marked as not measured rather than counted as clean. A container
    // platform's deploys go through the engine (a compose call, a container's start, a
    // stop grace), measured at several seconds each, so its ceiling is far higher.
    let local_pace = Duration::from_secs(2)
        + Duration::from_millis(1800) * components.len() as u32
        + Duration::from_millis(900) * components.len() as u32
        + Duration::from_millis(2500)
        + Duration::from_millis(500) * profile.storm as u32;
    let duration = local_pace * experiment.target.deploy_pace();
    experiment.step(&format!(
        "{} deploys then a storm of {} under {} users",
        components.len() * 2 + 1,
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
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let events = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut timed = Vec::new();
        let singles = components.iter().flat_map(|component| {
            [
                (*component, Strategy::Recreate),
                (*component, Strategy::Rolling),
            ]
        });
        let rollback = std::iter::once((
            *components.last().expect("a build has components"),
            Strategy::Rollback,
        ));
        let storm = components
            .iter()
            .cycle()
            .take(profile.storm)
            .map(|component| (*component, Strategy::Storm));
        for (component, strategy) in singles.chain(rollback).chain(storm) {
            let started_at_ms = epoch.elapsed().as_millis() as u64;
            let outcome = match strategy {
                Strategy::Recreate => target.recreate(component).await,
                Strategy::Rolling | Strategy::Storm => target.roll(component).await,
                Strategy::Rollback => target.roll_bad_release(component).await.map(drop),
            };
            let ready_at_ms = epoch.elapsed().as_millis() as u64;
            timed.push((
                strategy,
                component,
                started_at_ms,
                ready_at_ms,
                outcome.err().map(|error| format!("{error:#}")),
            ));
            tokio::time::sleep(strategy.settle()).await;
        }
        // The last deploy's window, then the load may stop.
        tokio::time::sleep(SETTLE).await;
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
    let count = |from: u64, to: u64| -> (usize, usize) {
        let seen = stats(window(&run.records, from, to, |_| true));
        (seen.requests, seen.requests - seen.ok)
    };
    let mut each = Vec::new();
    let mut storm_ready = Vec::new();
    let (mut storm_from, mut storm_to) = (u64::MAX, 0);
    for (strategy, component, started_at_ms, ready_at_ms, error) in timed {
        let to = ready_at_ms + strategy.tail().as_millis() as u64;
        let error = match error {
            None if to > load_ended_ms => Some(format!(
                "not measured: it ended at {to} ms, after the load stopped at {load_ended_ms} ms"
            )),
            error => error,
        };
        if strategy != Strategy::Storm {
            let (requests, failed_requests) = count(started_at_ms, to);
            each.push(Deploy {
                component: experiment.target.process_name(component),
                strategy: strategy.as_str().into(),
                started_at_ms,
                time_to_ready_ms: ready_at_ms - started_at_ms,
                requests,
                failed_requests,
                error,
            });
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
        started_at_ms: if storm_ready.is_empty() {
            0
        } else {
            storm_from
        },
        strategy: "rolling".into(),
        duration_ms: storm_to.saturating_sub(storm_from),
        requests,
        failed_requests,
        median_time_to_ready_ms: storm_ready.get(storm_ready.len() / 2).copied().unwrap_or(0),
    };
    let timeline = timeline(&run.records, EVENT_SLICE_MS);
    experiment.history.extend(run.records);
    Ok(Deploys {
        each,
        storm,
        timeline,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    Recreate,
    Rolling,
    /// A rolling deploy of a release that never gets ready.
    Rollback,
    /// A rolling deploy inside the storm.
    Storm,
}

impl Strategy {
    /// How long the load runs on after this deploy was ready before the next one starts.
    fn settle(self) -> Duration {
        match self {
            // Callers' breakers opened while the process was gone stay open up to
            // `hop_breaker_open_ms` (1 s): that aftermath is the recreate's, not the next
            // deploy's.
            Strategy::Recreate => SETTLE + Duration::from_millis(1000),
            // A storm is deploys back to back.
            Strategy::Storm => Duration::ZERO,
            Strategy::Rolling | Strategy::Rollback => SETTLE,
        }
    }

    /// How long after ready the deploy's window runs: up to the gap before the next deploy
    /// (a storm is measured as a whole, up to the gap after its last deploy).
    fn tail(self) -> Duration {
        match self {
            Strategy::Storm => SETTLE - GAP,
            other => other.settle() - GAP,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::Rolling | Strategy::Storm => "rolling",
            Strategy::Rollback => "rollback",
        }
    }
}
