//! Faults: under steady load, each cell of the profile's matrix (kind × context, and for `errors`
//! the share of calls that fail) in turn —
//! a quiet window before, the fault, a window after healing — on one build. Per journey the
//! success rate and p99 before / during / after; the blast radius (the share of journey
//! steps, by route template, that did worse during the fault); the time to recover after the
//! heal; and how many processes the lab had to restart.
//!
//! How each kind is realized: `kill` is `kill -9` of the process that runs the context (the
//! monolith: the whole shop), restarted by the lab's self-healing (`Target::self_heal_until`;
//! on compose, by the engine's restart policy); `pause` is SIGSTOP, healed
//! by SIGCONT; `latency`, `errors`, `cpu_hog` and `leak` are the in-process faults of the
//! admin API, healed by `DELETE /admin/faults`; `abort` is the admin API's abort (the next
//! call into the context aborts its process), restarted the same way.
//!
//! The network kinds go through fault proxies (`loadtest_platform::sidecars::fault_proxy`), put in front of the
//! services and databases the matrix names before the load starts: `net_latency`,
//! `net_reset` and `net_cut` break the link between the callers and the context's service
//! (microservices; the monolith has no network between contexts, so those cells are
//! recorded as not applicable); `db_down` drops every connection to the database that holds
//! the context's data (the service's own, or the monolith's one; PostgreSQL only — SQLite is
//! embedded, so the cell is recorded as unavailable). `cpu_limit` puts the process that runs
//! the context (the whole monolith) under a cgroup v1 CPU quota ([`loadtest_platform::cgroup`]).
//! ARCHITECTURE.md, "Fault kinds, as the lab realizes them", has the whole table.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use domain::Context;
use domain::faults::Fault;

use super::{EVENT_SLICE_MS, Experiment};
use crate::load;
use loadtest_platform::{Injection, Target};
use loadtest_results::analysis::{Timeline, WindowStats, degraded, names, stats, timeline, window};
use loadtest_results::component::Build;
use loadtest_results::experiments::faults::{Cell, Phases};
use loadtest_results::history::RequestRecord;
use loadtest_results::profile::{FaultCell, FaultKind};

/// What the events task saw of one fault.
struct Event {
    fault: FaultCell,
    injected_at_ms: u64,
    healed_at_ms: u64,
    restarts: usize,
    /// The longest a process was gone before the platform's restart policy had it back.
    healed_in_ms: Option<u64>,
    error: Option<String>,
    applied: bool,
    note: Option<String>,
    attempts_per_call: Option<f64>,
    hop_calls: Option<u64>,
}

/// Load before the first fault's quiet window, so Goose's start (users logging in) is not
/// read as the shop's normal state.
const WARM_UP: Duration = Duration::from_secs(1);

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<(Vec<Cell>, Timeline)> {
    let profile = experiment.profile;
    let cell_length = profile.fault_before + profile.fault_during + profile.fault_after;
    let duration = WARM_UP + cell_length * profile.faults.len() as u32 + Duration::from_secs(1);
    experiment.step(&format!(
        "{} faults under {} users, {:.0} s",
        profile.faults.len(),
        profile.steady_users,
        duration.as_secs_f64()
    ));
    let plan = load::LoadPlan {
        users: profile.steady_users,
        duration,
        ..experiment.plan()
    };
    place_proxies(experiment.target, &profile.faults)
        .await
        .context("put the fault proxies in place")?;
    let epoch = Instant::now();
    let recorder = experiment.recorder(epoch);
    let target = &mut *experiment.target;
    let http = reqwest::Client::builder()
        .pool_idle_timeout(loadtest_platform::CLIENT_POOL_IDLE)
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let events = async {
        let mut events = Vec::new();
        for (index, fault) in profile.faults.iter().enumerate() {
            let (kind, context) = (&fault.kind, &fault.context);
            let start = epoch + WARM_UP + cell_length * index as u32;
            tokio::time::sleep_until((start + profile.fault_before).into()).await;
            let counted = super::hop_count(target, &http, Some(*context)).await;
            let injected_at_ms = epoch.elapsed().as_millis() as u64;
            let injected = inject(target, fault).await;
            // The fault window. On the local target a killed process stays down for all of
            // it (a crash whose restart takes that long); anything else that exits — an
            // abort, or collateral — is restarted by the lab's self-healing as it happens.
            // On a container platform the engine's restart policy is the process manager,
            // killed processes included: the lab only watches it work.
            let window_end = start + profile.fault_before + profile.fault_during;
            let self_healed = if *kind == FaultKind::Kill && target.lab_restarts_processes() {
                tokio::time::sleep_until(window_end.into()).await;
                Vec::new()
            } else {
                target.self_heal_until(window_end).await
            };
            let healed_at_ms = epoch.elapsed().as_millis() as u64;
            let (attempts_per_call, hop_calls) = match (
                counted,
                super::hop_count(target, &http, Some(*context)).await,
            ) {
                (Some(before), Some(after)) => (
                    after.attempts_per_call(&before),
                    Some(after.calls_since(&before)),
                ),
                _ => (None, None),
            };
            let (injected, error) = match injected {
                Ok(injected) => (injected, None),
                Err(error) => (Injection::default(), Some(format!("{error:#}"))),
            };
            let applied = error.is_none() && injected.not_realized.is_none();
            let not_realized = injected.not_realized.clone();
            let note = injected.note.clone();
            let healed = heal(target, fault, injected).await;
            events.push(Event {
                fault: *fault,
                injected_at_ms,
                healed_at_ms,
                restarts: healed.as_ref().copied().unwrap_or(0) + self_healed.len(),
                healed_in_ms: self_healed.iter().map(|restart| restart.down_ms).max(),
                error: error
                    .or(not_realized)
                    .or(healed.err().map(|error| format!("{error:#}"))),
                applied,
                note,
                attempts_per_call,
                hop_calls,
            });
        }
        // The last cell's after-window, then the load may stop (a heal that took long
        // pushes it past the plan's end, where the load stops by itself).
        let end = epoch + WARM_UP + cell_length * profile.faults.len() as u32;
        tokio::time::sleep_until(end.into()).await;
        let _ = done_tx.send(());
        events
    };
    let stop = async {
        let _ = done_rx.await;
    };
    let (run, events) = tokio::join!(
        load::run_until(&plan, &experiment.shop, &recorder, stop),
        events
    );
    let run = run?;
    let target = &*experiment.target;
    let cells = events
        .into_iter()
        .map(|event| {
            let process = target.process_name(target.build.process_of(event.fault.context));
            cell(process, &run.records, event, profile.fault_after)
        })
        .collect();
    let timeline = timeline(&run.records, EVENT_SLICE_MS);
    experiment.history.extend(run.records);
    Ok((cells, timeline))
}

/// The proxied links the matrix needs, put in place before the load starts (a proxy is
/// one more loopback hop, which only this experiment pays, in every window alike).
async fn place_proxies(target: &mut Target, faults: &[FaultCell]) -> anyhow::Result<()> {
    let wanted = |kinds: &[FaultKind]| -> BTreeSet<Context> {
        faults
            .iter()
            .filter(|cell| kinds.contains(&cell.kind))
            .map(|cell| cell.context)
            .collect()
    };
    let services = match target.build {
        Build::Micro => wanted(&[
            FaultKind::NetLatency,
            FaultKind::NetReset,
            FaultKind::NetCut,
        ]),
        Build::Monolith => BTreeSet::new(),
    };
    let databases = if target.is_postgres() {
        wanted(&[FaultKind::DbDown])
    } else {
        BTreeSet::new()
    };
    target.place_proxies(&services, &databases).await
}

/// The catalogue's fault for the cell: its rate where it has one, every other parameter at
/// its default (`domain::faults`: the same defaults the admin API fills in and the workshop
/// offers). The profile was checked before the run, so a refusal here is a bug.
fn fault_of(cell: &FaultCell) -> anyhow::Result<Fault> {
    cell.fault().map_err(anyhow::Error::msg)
}

async fn inject(target: &mut Target, cell: &FaultCell) -> anyhow::Result<Injection> {
    target.inject(cell.context, fault_of(cell)?).await
}

/// Undoes the fault; brings back whatever process is gone. Returns how many came back.
async fn heal(
    target: &mut Target,
    cell: &FaultCell,
    injection: Injection,
) -> anyhow::Result<usize> {
    target
        .heal(cell.context, fault_of(cell)?, injection)
        .await?;
    let restored = target.restore().await?;
    if restored > 0 {
        target.heal_faults().await?;
    }
    Ok(restored)
}

fn cell(process: String, records: &[RequestRecord], event: Event, after: Duration) -> Cell {
    let span = event.healed_at_ms - event.injected_at_ms;
    let before_from = event.injected_at_ms.saturating_sub(span);
    let after_to = event.healed_at_ms + after.as_millis() as u64;
    let phases = |keep: &dyn Fn(&RequestRecord) -> bool| {
        (
            stats(window(records, before_from, event.injected_at_ms, keep)),
            stats(window(
                records,
                event.injected_at_ms,
                event.healed_at_ms,
                keep,
            )),
            stats(window(records, event.healed_at_ms, after_to, keep)),
        )
    };
    let journeys = names(records, |record| &record.journey)
        .into_iter()
        .map(|journey| {
            let (before, during, after) = phases(&|record| record.journey == journey);
            Phases {
                journey,
                before,
                during,
                after,
            }
        })
        .collect();
    // The steps seen before the fault: one that was not (a login that only happens at a
    // journey's start) cannot be judged, so it is not counted either way.
    let steps = names(
        &window(records, before_from, event.injected_at_ms, |_| true)
            .cloned()
            .collect::<Vec<_>>(),
        |record| &record.transaction,
    );
    let degraded_steps: Vec<String> = steps
        .iter()
        .filter(|step| {
            let (before, during, _) = phases(&|record| &record.transaction == *step);
            degraded(&before, &during)
        })
        .cloned()
        .collect();
    let before_all = stats(window(records, before_from, event.injected_at_ms, |_| true));
    let cell = Cell {
        fault: event.fault,
        process,
        injected_at_ms: event.injected_at_ms,
        healed_at_ms: event.healed_at_ms,
        journeys: Vec::new(),
        blast_radius: 0.0,
        degraded_steps: Vec::new(),
        time_to_recover_ms: None,
        restarts: event.restarts,
        healed_in_ms: event.healed_in_ms,
        error: event.error,
        applied: event.applied,
        note: event.note,
        attempts_per_call: event.attempts_per_call,
        hop_calls: event.hop_calls,
    };
    if !event.applied {
        // Not in force: the windows would only show an undisturbed shop.
        return cell;
    }
    Cell {
        journeys,
        blast_radius: degraded_steps.len() as f64 / steps.len().max(1) as f64,
        degraded_steps,
        time_to_recover_ms: recovery(records, &before_all, event.healed_at_ms, after_to),
        ..cell
    }
}

/// The first 250 ms slice after the heal whose success rate is back to the one before.
fn recovery(
    records: &[RequestRecord],
    before: &WindowStats,
    healed_at_ms: u64,
    until_ms: u64,
) -> Option<u64> {
    const SLICE_MS: u64 = 250;
    let target = before.success_rate.unwrap_or(1.0) - 0.02;
    (healed_at_ms..until_ms)
        .step_by(SLICE_MS as usize)
        .find(|from| {
            let slice = stats(window(records, *from, from + SLICE_MS, |_| true));
            slice.success_rate.is_some_and(|rate| rate >= target)
        })
        .map(|from| from - healed_at_ms)
}
