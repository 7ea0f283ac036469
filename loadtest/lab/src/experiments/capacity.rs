//! Capacity at an SLO: open-loop load (`crate::open_loop`) at a rising arrival rate, one
//! constant-rate step after another, until a step misses the SLO — the 99th percentile of
//! successful requests (from due time) above the limit, or more than the allowed share of
//! requests failed or of arrivals dropped. The highest rate that met it is the build's
//! capacity; over the repeats, its median with a 95 % interval (`stats::Estimate`).
//!
//! Every seeded user logs in before the first step ([`open_loop::log_in_everyone`]): a
//! step measures journeys at its rate, not the first logins that happened to fall in it.
//!
//! The steps are a geometric ramp (`CapacityPlan::rate`), coarse on purpose: the quick
//! profile must stay within its two minutes. After the first miss, `refine_steps` more
//! steps bisect (geometrically) between the highest rate that met the SLO and the lowest
//! that missed, so a coarse ramp still places the capacity within a fraction of a step.

use std::time::Instant;

use super::Experiment;
use crate::open_loop::{self, OpenLoopPlan, OpenLoopRun, Rate};
use loadtest_results::analysis::stats;
use loadtest_results::experiments::capacity::{
    Capacity, CapacityPlan, CapacityStep, LoggedIn, Ramp,
};
use loadtest_results::experiments::throughput::GENERATOR_LIMIT;
use loadtest_results::history::Outcome;
use loadtest_results::stats::Estimate;

/// How many users log in at once before a ramp: enough to keep both cores of a small machine
/// busy with password hashes, few enough that no login waits long for a database writer.
const LOGINS_AT_ONCE: usize = 4;

/// Runs the profile's capacity plan on the build; `None` when the profile has none.
pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Option<Capacity>> {
    let Some(plan) = experiment.profile.capacity.clone() else {
        return Ok(None);
    };
    let mut ramps = Vec::new();
    for repeat in 1..=experiment.profile.repeats.max(1) {
        ramps.push(ramp(experiment, &plan, repeat).await?);
    }
    let sustained: Vec<f64> = ramps
        .iter()
        .filter_map(|ramp| ramp.sustained_per_s)
        .collect();
    let requests: Vec<f64> = ramps.iter().filter_map(Ramp::sustained_ok_per_s).collect();
    Ok(Some(Capacity {
        plan,
        sustained: Estimate::of(sustained),
        sustained_requests_per_s: Estimate::of(requests),
        ramps,
    }))
}

async fn ramp(
    experiment: &mut Experiment<'_>,
    plan: &CapacityPlan,
    repeat: usize,
) -> anyhow::Result<Ramp> {
    let mut steps = Vec::new();
    let mut sustained_per_s = None;
    // Every user logs in once, before the first step and outside every step's figures.
    let sessions = open_loop::Sessions::default();
    experiment.step(&format!(
        "capacity: logging in the {} seeded users before the ramp, repeat {repeat}",
        experiment.shop.users
    ));
    let logins = open_loop::log_in_everyone(
        &experiment.template.base_url,
        &experiment.shop,
        &experiment.recorder(Instant::now()),
        &sessions,
        experiment.template.request_timeout,
        LOGINS_AT_ONCE,
    )
    .await?;
    let logged_in_first = LoggedIn {
        users: experiment.shop.users as usize,
        succeeded: sessions.len(),
    };
    experiment.history.extend(logins);
    let mut stopped = format!(
        "ran out of steps: the capacity is at least the last step's rate ({} steps)",
        plan.max_steps
    );
    let mut missed_at = None;
    for index in 0..plan.max_steps {
        let rate = plan.rate(index);
        let step = run_step(experiment, plan, rate, &sessions, repeat, index).await?;
        let met = step.met;
        if !met {
            stopped = format!("{rate:.0}/s missed: {}", step.missed.join(", "));
            missed_at = Some(rate);
        }
        steps.push(step);
        if !met {
            break;
        }
        sustained_per_s = Some(rate);
    }
    // Between the highest rate that met the SLO and the lowest that missed it, the
    // refining steps halve the gap each (a first step that missed has nothing below it).
    if let (Some(mut met), Some(mut missed)) = (sustained_per_s, missed_at) {
        for refine in 0..plan.refine_steps {
            let rate = CapacityPlan::between(met, missed);
            let step = run_step(
                experiment,
                plan,
                rate,
                &sessions,
                repeat,
                plan.max_steps + refine,
            )
            .await?;
            if step.met {
                met = rate;
                sustained_per_s = Some(rate);
            } else {
                missed = rate;
            }
            steps.push(step);
        }
        if plan.refine_steps > 0 {
            stopped = format!(
                "{stopped}; refined by {} steps to between {met:.0}/s (met) and {missed:.0}/s \
                 (missed)",
                plan.refine_steps
            );
        }
    }
    Ok(Ramp {
        repeat,
        steps,
        sustained_per_s,
        stopped,
        logged_in_first: Some(logged_in_first),
    })
}

/// One constant-rate step of the ramp: open-loop journeys at `rate` for the plan's step
/// duration, judged against the SLO; its records join the run's history.
async fn run_step(
    experiment: &mut Experiment<'_>,
    plan: &CapacityPlan,
    rate: f64,
    sessions: &open_loop::Sessions,
    repeat: usize,
    index: usize,
) -> anyhow::Result<CapacityStep> {
    experiment.step(&format!(
        "capacity: {rate:.0} journeys/s open loop, repeat {repeat}"
    ));
    let open = OpenLoopPlan {
        base_url: experiment.template.base_url.clone(),
        rate: Rate::constant(rate),
        duration: plan.step_duration,
        arrivals: plan.arrivals,
        max_in_flight: plan.max_in_flight,
        request_timeout: experiment.template.request_timeout,
        seed: (repeat * 1000 + index) as u64,
        only: None,
    };
    let recorder = experiment.recorder(Instant::now());
    let run =
        open_loop::run_from(&open, &experiment.shop, &recorder, Instant::now(), sessions).await?;
    let step = judge(plan, rate, &run, experiment.generator_cores);
    experiment.history.extend(run.records);
    Ok(step)
}

/// One step's figures and whether it met the SLO.
fn judge(
    plan: &CapacityPlan,
    rate: f64,
    run: &OpenLoopRun,
    generator_cores: usize,
) -> CapacityStep {
    let ok = stats(
        run.records
            .iter()
            .filter(|record| record.outcome == Outcome::Ok),
    );
    let requests = run.records.len();
    let errors = requests - ok.requests;
    let share = run.generator_cpu_s / (run.wall_s.max(0.001) * generator_cores.max(1) as f64);
    let mut step = CapacityStep {
        offered_per_s: rate,
        due: run.due,
        started: run.started,
        dropped: run.dropped,
        requests,
        errors,
        ok_per_s: ok.requests as f64 / run.window_s.max(0.001),
        p50_us: (ok.requests > 0).then_some(ok.latency.p50_us),
        p99_us: (ok.requests > 0).then_some(ok.latency.p99_us),
        generator_cpu_share: share,
        generator_limited: share > GENERATOR_LIMIT,
        met: false,
        missed: Vec::new(),
    };
    let slo = &plan.slo;
    match step.p99_us {
        None => step.missed.push("no request succeeded".to_owned()),
        Some(p99_us) if p99_us as f64 / 1000.0 > slo.p99_ms => step.missed.push(format!(
            "p99 {:.1} ms > {:.0} ms",
            p99_us as f64 / 1000.0,
            slo.p99_ms
        )),
        Some(_) => {}
    }
    if step.error_rate() > slo.max_error_rate {
        step.missed.push(format!(
            "errors {:.2} % > {:.0} %",
            step.error_rate() * 100.0,
            slo.max_error_rate * 100.0
        ));
    }
    if step.drop_rate() > slo.max_drop_rate {
        step.missed.push(format!(
            "dropped {:.2} % > {:.0} %",
            step.drop_rate() * 100.0,
            slo.max_drop_rate * 100.0
        ));
    }
    step.met = step.missed.is_empty();
    step
}
