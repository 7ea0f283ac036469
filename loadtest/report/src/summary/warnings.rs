//! The warnings: what in this run limits what its numbers say — a saturated generator,
//! repeats that disagree, broken invariants, faults this machine could not realize, deploys
//! that were not measured.

use crate::figures::{self, first_line, percent, throughput};
use crate::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::experiments::Findings;
use loadtest_results::stats;

/// A build that reached this share of the null endpoint's rate may be measuring the
/// generator.
const NEAR_CEILING: f64 = 0.7;

/// Every warning, most serious first.
pub(crate) fn warnings(results: &Results) -> Vec<String> {
    let mut warnings = Vec::new();
    invariants(results, &mut warnings);
    generator(results, &mut warnings);
    capacity(results, &mut warnings);
    noise(results, &mut warnings);
    failures(results, &mut warnings);
    faults(results, &mut warnings);
    deploys(results, &mut warnings);
    scale(results, &mut warnings);
    if results.calibration.is_none() {
        warnings.push(
            "Calibration was not measured in this run: the generator's ceiling and the parts of \
             one hop are unknown."
                .to_owned(),
        );
    }
    warnings
}

fn invariants(results: &Results, warnings: &mut Vec<String>) {
    for outcome in &results.experiments {
        let experiment = experiment_name(&outcome.findings);
        let build = build_label(outcome.build);
        for invariant in &outcome.invariants.invariants {
            if invariant.violations > 0 {
                warnings.push(format!(
                    "Invariant {} ({}) was violated {}× on the {build} during {experiment}; first: {}.",
                    invariant.id,
                    invariant.name,
                    invariant.violations,
                    invariant
                        .first_example
                        .as_deref()
                        .map_or("no example recorded".to_owned(), first_line)
                ));
            }
        }
        if !outcome.quiescent {
            warnings.push(format!(
                "The {build} was not quiescent after {experiment}: a reservation was still held \
                 or an order pending when the audit was taken, so I8 and I9 may report a \
                 checkout still in flight."
            ));
        }
    }
}

fn generator(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let levels = throughput(results, build);
        for level in levels.iter().filter(|level| level.generator_limited) {
            warnings.push(format!(
                "The generator was saturated at {} users on the {} (it used {} of its cores): \
                 that level's throughput may be the generator's limit, not the shop's.",
                level.users,
                build_label(build),
                percent(level.generator_share)
            ));
        }
        if let (Some(calibration), Some(top)) = (&results.calibration, levels.last()) {
            let ceiling = calibration.null_endpoint.requests_per_s;
            if ceiling > 0.0 && top.requests_per_s.median >= NEAR_CEILING * ceiling {
                warnings.push(format!(
                    "The {} reached {} of the generator's ceiling ({ceiling:.0} req/s against an \
                     endpoint that does nothing): its throughput is bounded by the generator.",
                    build_label(build),
                    percent(top.requests_per_s.median / ceiling)
                ));
            }
        }
    }
}

/// Repeats that disagree by more than [`stats::DISAGREE`] (max - min over the median) in
/// capacity, throughput or p99; one run has no repeats to disagree and is never flagged.
fn noise(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let capacity = figures::capacity_ok_per_s(figures::capacity(results, build));
        if let Some(spread) = capacity.filter(figures::Spread::disagrees) {
            warnings.push(format!(
                "Noisy: the capacity at the SLO of the {} varied by {} between its {} ramps \
                 ({:.0} to {:.0} successful req/s; flagged past {}): a ramp ends on one of its \
                 steps, so a step more or less moves it a lot; compare medians with care.",
                build_label(build),
                percent(spread.relative_range()),
                spread.samples,
                spread.min,
                spread.max,
                percent(stats::DISAGREE)
            ));
        }
        for level in throughput(results, build) {
            let figures = [
                (
                    "successful throughput",
                    Some(&level.requests_per_s),
                    "req/s",
                ),
                ("p99", level.raw[2].as_ref(), "ms"),
            ];
            for (name, spread, unit) in figures {
                let Some(spread) = spread.filter(|spread| spread.disagrees()) else {
                    continue;
                };
                warnings.push(format!(
                    "Noisy: the {name} of the {} at {} users varied by {} between its {} repeats \
                     ({:.1} to {:.1} {unit}; flagged past {}); compare medians with care.",
                    build_label(build),
                    level.users,
                    percent(spread.relative_range()),
                    spread.samples,
                    spread.min,
                    spread.max,
                    percent(stats::DISAGREE)
                ));
            }
        }
    }
}

/// Levels where requests failed: their figures are of the successes alone, and the
/// CO-corrected percentiles (Goose's, over every request) mix in the failures.
fn failures(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        for level in throughput(results, build) {
            if level.error_rate > 0.01 {
                warnings.push(format!(
                    "The {} at {} users failed {} of its requests: its throughput and raw \
                     latency are of the successful ones; the CO-corrected percentiles are \
                     Goose's over every request and include the failures.",
                    build_label(build),
                    level.users,
                    percent(level.error_rate)
                ));
            }
        }
    }
}

/// Faults that measured nothing, grouped by build and reason.
fn faults(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let Some((cells, _)) = figures::faults(results, build) else {
            continue;
        };
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for cell in cells.iter().filter(|cell| !cell.applied) {
            let reason = cell
                .error
                .as_deref()
                .map_or("the fault was not in force".to_owned(), first_line);
            let name = cell.fault.label();
            match groups.iter_mut().find(|(seen, _)| *seen == reason) {
                Some((_, names)) => names.push(name),
                None => groups.push((reason, vec![name])),
            }
        }
        // A journey already failing (or not sent) before an applied fault: its during and
        // after say nothing about the fault, whatever the blast radius leaves out.
        let mut failing = Vec::new();
        for cell in cells.iter().filter(|cell| cell.applied) {
            for phases in cell.unhealthy_before() {
                let before = match phases.before.success_rate {
                    Some(rate) => percent(rate),
                    None => "no request".to_owned(),
                };
                failing.push(format!(
                    "{} in {} ({before})",
                    phases.journey,
                    cell.fault.label()
                ));
            }
        }
        if !failing.is_empty() {
            warnings.push(format!(
                "On the {} a journey was failing, or not sent, before its fault was injected: {}. \
                 Those figures say nothing about the fault; the shop was not healthy to begin \
                 with, so their cells' blast radius is left out of every mean and verdict.",
                build_label(build),
                failing.join(", ")
            ));
        }
        for (reason, names) in groups {
            let (what, reason) = if let Some(why) = reason.strip_prefix("unavailable: ") {
                ("unavailable on this machine", why)
            } else if let Some(why) = reason.strip_prefix("not applicable: ") {
                ("not applicable", why)
            } else {
                ("not in force", reason.as_str())
            };
            warnings.push(format!(
                "{} fault{} {what} on the {} ({}): {reason}.",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                build_label(build),
                names.join(", ")
            ));
        }
    }
}

fn deploys(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let Some(deploys) = figures::deploys(results, build) else {
            continue;
        };
        for deploy in &deploys.each {
            if let Some(error) = &deploy.error {
                warnings.push(format!(
                    "The {} deploy of {} on the {}: {}.",
                    deploy.strategy,
                    deploy.component,
                    build_label(build),
                    first_line(error)
                ));
            }
        }
    }
}

/// A speed-up beyond linear: the added process bought more than its CPU, so the gain per
/// added core overstates what a replica adds.
fn scale(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let Some(scale) = figures::scale(results, build) else {
            continue;
        };
        let Some(linear) = scale.beyond_linear() else {
            continue;
        };
        let why = match scale.quota.cores {
            Some(cores) => format!(
                "a process held to {cores:.2} cores is throttled for part of every quota period \
                 while its requests queue, and more processes shorten that queue"
            ),
            None => "fewer processes queued more of the same requests".to_owned(),
        };
        warnings.push(format!(
            "The scale experiment on the {}: ×{:.2} from {} replicas of {} where {} served, more \
             than the ×{linear:.2} their CPU allows. Part of the gain is not capacity: {why} \
             (p50 {} before, {} after), so the gain per added core is overstated.",
            build_label(build),
            scale.speedup,
            scale.after.replicas,
            scale.component,
            scale.before.replicas,
            figures::ms(scale.before.latency.p50_us as f64 / 1000.0),
            figures::ms(scale.after.latency.p50_us as f64 / 1000.0),
        ));
    }
}

pub(crate) fn experiment_name(findings: &Findings) -> &'static str {
    match findings {
        Findings::Throughput { .. } => "throughput",
        Findings::Deploy(_) => "deploy",
        Findings::Faults { .. } => "faults",
        Findings::Scale(_) => "scale",
        Findings::Nodes(_) => "nodes",
    }
}

/// What limits a capacity figure: a generator busy enough to set the pace at a step up to
/// the knee, a ramp that ran out of steps (the capacity is only a lower bound), or one whose
/// first step already missed (no capacity within the plan).
fn capacity(results: &Results, warnings: &mut Vec<String>) {
    for build in Build::BOTH {
        let Some(capacity) = figures::capacity(results, build) else {
            continue;
        };
        let label = build_label(build);
        for ramp in &capacity.ramps {
            if let Some(step) = ramp.steps.iter().find(|step| step.generator_limited) {
                warnings.push(format!(
                    "The generator used {} of its cores at {:.0} journeys/s in the capacity ramp of the {label} \
                     (repeat {}): that step may measure the generator.",
                    percent(step.generator_cpu_share),
                    step.offered_per_s,
                    ramp.repeat
                ));
            }
            if ramp.steps.iter().all(|step| step.met) {
                warnings.push(format!(
                    "The capacity ramp of the {label} (repeat {}) met the SLO at every step: its \
                     capacity is at least {:.0} journeys/s, not measured beyond.",
                    ramp.repeat,
                    ramp.sustained_per_s.unwrap_or_default()
                ));
            } else if ramp.sustained_per_s.is_none() {
                warnings.push(format!(
                    "The capacity ramp of the {label} (repeat {}) missed the SLO at its first step \
                     ({:.0} journeys/s): its capacity is below what the plan measures.",
                    ramp.repeat, capacity.plan.start_per_s
                ));
            }
        }
    }
}
