//! Faults: under steady load, each fault of the profile's matrix (kind x context) in turn —
//! a quiet window before, the fault, a window after healing — on one build. Per journey the
//! success rate and p99 before / during / after; the blast radius (the share of journey
//! steps, by route template, that did worse during the fault); the time to recover after the
//! heal; and how many processes the lab had to restart.
//!
//! How each kind is realized: `kill` is `kill -9` of the process that runs the context (the
//! monolith: the whole shop), restarted by the lab at heal time; `pause` is SIGSTOP, healed
//! by SIGCONT; `latency`, `errors`, `cpu_hog` and `leak` are the in-process faults of the
//! admin API, healed by `DELETE /admin/faults`; `abort` is the admin API's abort (the next
//! call into the context aborts its process), restarted by the lab at heal time.

use std::time::{Duration, Instant};

use domain::Context;
use serde::Serialize;
use serde_json::json;

use super::Experiment;
use crate::history::RequestRecord;
use crate::lab::analysis::{WindowStats, degraded, names, stats, window};
use crate::lab::load;
use crate::lab::profile::FaultKind;
use crate::lab::target::Target;
use crate::supervisor::{Build, Component};

#[derive(Clone, Debug, Serialize)]
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
    /// Set when the fault could not be injected or healed as asked.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Phases {
    pub journey: String,
    pub before: WindowStats,
    pub during: WindowStats,
    pub after: WindowStats,
}

/// What the events task saw of one fault.
struct Event {
    kind: FaultKind,
    context: Context,
    injected_at_ms: u64,
    healed_at_ms: u64,
    restarts: usize,
    error: Option<String>,
}

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Vec<Cell>> {
    let profile = experiment.profile;
    let cell_length = profile.fault_before + profile.fault_during + profile.fault_after;
    let duration = cell_length * profile.faults.len() as u32 + Duration::from_secs(1);
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
    let epoch = Instant::now();
    let recorder = experiment.recorder(epoch);
    let target = &mut *experiment.target;
    let events = async {
        let mut events = Vec::new();
        for (index, (kind, context)) in profile.faults.iter().enumerate() {
            let start = epoch + cell_length * index as u32;
            tokio::time::sleep_until((start + profile.fault_before).into()).await;
            let injected_at_ms = epoch.elapsed().as_millis() as u64;
            let injected = inject(target, *kind, *context).await;
            tokio::time::sleep_until((start + profile.fault_before + profile.fault_during).into())
                .await;
            let healed_at_ms = epoch.elapsed().as_millis() as u64;
            let healed = heal(target, *kind, *context).await;
            events.push(Event {
                kind: *kind,
                context: *context,
                injected_at_ms,
                healed_at_ms,
                restarts: healed.as_ref().copied().unwrap_or(0),
                error: injected
                    .err()
                    .or(healed.err())
                    .map(|error| format!("{error:#}")),
            });
        }
        events
    };
    let (run, events) = tokio::join!(load::run(&plan, &experiment.shop, &recorder), events);
    let run = run?;
    let build = experiment.target.build;
    let cells = events
        .into_iter()
        .map(|event| cell(build, &run.records, event, profile.fault_after))
        .collect();
    experiment.history.extend(run.records);
    Ok(cells)
}

fn process_of(build: Build, context: Context) -> Component {
    match build {
        Build::Monolith => Component::Monolith,
        Build::Micro => Component::Service(context),
    }
}

async fn inject(target: &mut Target, kind: FaultKind, context: Context) -> anyhow::Result<()> {
    let process = process_of(target.build, context);
    match kind {
        FaultKind::Kill => target.kill(process).await,
        FaultKind::Pause => target.pause(process, true),
        FaultKind::Latency => target.fault(context, "latency", json!({"ms": 300})).await,
        FaultKind::Errors => target.fault(context, "errors", json!({"rate": 0.5})).await,
        FaultKind::Abort => target.fault(context, "abort", json!({})).await,
        FaultKind::CpuHog => {
            target
                .fault(context, "cpu_hog", json!({"threads": 2}))
                .await
        }
        FaultKind::Leak => {
            let params = json!({"mb_per_sec": 64, "max_mb": 256});
            target.fault(context, "leak", params).await
        }
    }
}

/// Undoes the fault; restarts whatever process is gone. Returns how many were restarted.
async fn heal(target: &mut Target, kind: FaultKind, context: Context) -> anyhow::Result<usize> {
    match kind {
        FaultKind::Pause => target.pause(process_of(target.build, context), false)?,
        FaultKind::Kill => {}
        _ => {
            // A process an abort took down cannot be asked; the restart below clears it.
            let _ = target.heal_faults().await;
        }
    }
    let gone = target.deployment().exited();
    for (component, replica) in &gone {
        target.deployment().restart(*component, *replica).await?;
    }
    if !gone.is_empty() {
        target.heal_faults().await?;
    }
    Ok(gone.len())
}

fn cell(build: Build, records: &[RequestRecord], event: Event, after: Duration) -> Cell {
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
    let steps = names(records, |record| &record.transaction);
    let degraded_steps: Vec<String> = steps
        .iter()
        .filter(|step| {
            let (before, during, _) = phases(&|record| &record.transaction == *step);
            degraded(&before, &during)
        })
        .cloned()
        .collect();
    let before_all = stats(window(records, before_from, event.injected_at_ms, |_| true));
    Cell {
        kind: event.kind,
        context: event.context,
        process: process_of(build, event.context).to_string(),
        injected_at_ms: event.injected_at_ms,
        healed_at_ms: event.healed_at_ms,
        journeys,
        blast_radius: degraded_steps.len() as f64 / steps.len().max(1) as f64,
        degraded_steps,
        time_to_recover_ms: recovery(records, &before_all, event.healed_at_ms, after_to),
        restarts: event.restarts,
        error: event.error,
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
