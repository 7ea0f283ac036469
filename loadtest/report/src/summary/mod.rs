//! What a reader wants first: the key figures of both builds with their spread, a verdict
//! per claim the lab tests (stated with the numbers, including where the monolith wins),
//! and the warnings that say how far to trust the run.

use crate::figures::{self, LevelFigures, Spread, outcomes, throughput};
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::experiments::capacity::Capacity;
use loadtest_results::experiments::deploy::{Deploy, Deploys};
use loadtest_results::stats;

#[cfg(test)]
mod tests;
pub(crate) mod text;
mod verdicts;
mod warnings;

pub(crate) use verdicts::verdicts;
pub(crate) use warnings::{experiment_name, warnings};

/// Whether a claim held in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Holds,
    Mixed,
    DoesNotHold,
    NotTested,
}

#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub claim: &'static str,
    pub status: Status,
    /// The numbers behind the verdict, in a sentence or two.
    pub evidence: String,
}

/// One figure of both builds. `lower_is_better` orders the diff's "better / worse".
#[derive(Clone, Debug)]
pub(crate) struct KeyFigure {
    pub name: String,
    pub unit: &'static str,
    pub monolith: Option<Spread>,
    pub micro: Option<Spread>,
    pub lower_is_better: bool,
    /// What a build without the figure shows instead.
    pub absent: &'static str,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Mixed => "mixed",
            Status::DoesNotHold => "does not hold",
            Status::NotTested => "not tested",
        }
    }
}

impl KeyFigure {
    /// micro ÷ monolith of the medians, with its 95 % interval (Welch's t on the repeats'
    /// logs) where both builds ran more than one repeat.
    pub fn ratio(&self) -> Option<stats::Ratio> {
        let (monolith, micro) = (self.monolith.as_ref()?, self.micro.as_ref()?);
        if monolith.median.abs() < f64::EPSILON {
            return None;
        }
        figures::ratio(monolith, micro)
    }
}

/// The highest load level both builds ran, and their figures at it.
pub(crate) fn top_level(results: &Results) -> Option<(LevelFigures, LevelFigures)> {
    let monolith = throughput(results, Build::Monolith);
    let micro = throughput(results, Build::Micro);
    monolith.iter().rev().find_map(|level| {
        let other = micro.iter().find(|other| other.users == level.users)?;
        Some((level.clone(), other.clone()))
    })
}

pub(crate) fn key_figures(results: &Results) -> Vec<KeyFigure> {
    let mut figures = Vec::new();
    let exact = |value: f64| Spread::of([value]);
    // The headline: how much load each build sustains within the SLO, from open-loop load.
    let capacities = Build::BOTH.map(|build| crate::figures::capacity(results, build));
    if let Some(plan) = capacities.iter().flatten().map(|c| &c.plan).next() {
        let sustained = crate::figures::capacity_ok_per_s;
        // A ramp that met its last step gives a floor, not a capacity: the name says which.
        let floors: Vec<String> = Build::BOTH
            .into_iter()
            .zip(capacities)
            .filter(|(_, capacity)| capacity.is_some_and(Capacity::is_lower_bound))
            .map(|(build, _)| format!("{build}'s is a floor: its ramp ran out of steps"))
            .collect();
        figures.push(KeyFigure {
            name: format!(
                "capacity at p99 ≤ {:.0} ms (open loop, successes){}",
                plan.slo.p99_ms,
                if floors.is_empty() {
                    String::new()
                } else {
                    format!("; {}", floors.join(", "))
                }
            ),
            unit: "req/s",
            monolith: sustained(capacities[0]),
            micro: sustained(capacities[1]),
            lower_is_better: false,
            absent: "below the first step",
        });
    }
    if let Some((monolith, micro)) = top_level(results) {
        let users = monolith.users;
        let mut add =
            |name: String, unit, pick: &dyn Fn(&LevelFigures) -> Option<Spread>, lower| {
                figures.push(KeyFigure {
                    name,
                    unit,
                    monolith: pick(&monolith),
                    micro: pick(&micro),
                    lower_is_better: lower,
                    absent: "not measured",
                });
            };
        add(
            format!("successful throughput at {users} users"),
            "req/s",
            &|level| Some(level.requests_per_s.clone()),
            false,
        );
        add(
            format!("p50 latency at {users} users"),
            "ms",
            &|level| level.raw[0].clone(),
            true,
        );
        add(
            format!("p99 latency at {users} users"),
            "ms",
            &|level| level.raw[2].clone(),
            true,
        );
        add(
            format!("p99 CO-corrected at {users} users"),
            "ms",
            &|level| level.corrected[2].clone(),
            true,
        );
        add(
            format!("CPU per 1 000 successful requests at {users} users"),
            "CPU s",
            &|level| level.cpu_per_1k.clone(),
            true,
        );
        add(
            format!("peak memory at {users} users"),
            "MiB",
            &|level| level.peak_rss_mib.clone(),
            true,
        );
    }
    let per_build = |pick: &dyn Fn(Build) -> Option<f64>| {
        (
            pick(Build::Monolith).and_then(exact),
            pick(Build::Micro).and_then(exact),
        )
    };
    let mut add = |name: &str, unit, (monolith, micro): (Option<Spread>, Option<Spread>), lower| {
        if monolith.is_some() || micro.is_some() {
            figures.push(KeyFigure {
                name: name.to_owned(),
                unit,
                monolith,
                micro,
                lower_is_better: lower,
                absent: "not measured",
            });
        }
    };
    add(
        "mean blast radius of the faults",
        "%",
        per_build(&|build| mean_blast_radius(results, build).map(|radius| radius * 100.0)),
        true,
    );
    add(
        "recreate deploy: median time to ready",
        "ms",
        per_build(&|build| median_ready(results, build, "recreate")),
        true,
    );
    // The storm is rolling deploys too: a row that left it out read 0 where the verdict
    // below counted its failures.
    add(
        "rolling deploys and the storm: failed requests",
        "requests",
        per_build(&|build| {
            figures::deploys(results, build)
                .map(|deploys| (failed(deploys, "rolling") + deploys.storm.failed_requests) as f64)
        }),
        true,
    );
    add(
        "speedup with one more replica",
        "×",
        per_build(&|build| figures::scale(results, build).map(|scale| scale.speedup)),
        false,
    );
    add(
        "capacity gained per added core",
        "req/s",
        per_build(&|build| {
            figures::scale(results, build)
                .and_then(|scale| scale.gain.as_ref())
                .and_then(|gain| gain.per_cpu)
        }),
        false,
    );
    add(
        "capacity gained per added MiB",
        "req/s",
        per_build(&|build| {
            figures::scale(results, build)
                .and_then(|scale| scale.gain.as_ref())
                .and_then(|gain| gain.per_mib)
        }),
        false,
    );
    if let Some(calibration) = &results.calibration {
        let hop = &calibration.hop;
        add(
            "one service boundary (gateway hop)",
            "µs",
            (None, exact(hop.boundary_us() as f64)),
            true,
        );
        if let Some(hop) = figures.last_mut() {
            hop.absent = "none (its contexts call each other in-process)";
        }
    }
    figures
}

/// Over the faults judged on both builds where both ran faults, so the two means (and
/// their ratio) are of the same cells; over the build's own judged cells otherwise.
fn mean_blast_radius(results: &Results, build: Build) -> Option<f64> {
    let pairs = figures::fault_pairs(results);
    let both_ran = pairs
        .iter()
        .any(|pair| pair.monolith.is_some() && pair.micro.is_some());
    let radii: Vec<f64> = pairs
        .iter()
        .filter_map(|pair| {
            if both_ran {
                let (monolith, micro) = pair.judged()?;
                Some(if build == Build::Monolith {
                    monolith
                } else {
                    micro
                })
            } else {
                pair.cell(build)
                    .filter(|cell| cell.judgeable())
                    .map(|cell| cell.blast_radius)
            }
        })
        .collect();
    (!radii.is_empty()).then(|| radii.iter().sum::<f64>() / radii.len() as f64)
}

/// Deploys that were measured (a deploy that outlasted the load is not).
pub(super) fn measured<'a>(
    deploys: &'a Deploys,
    strategy: &'a str,
) -> impl Iterator<Item = &'a Deploy> + 'a {
    deploys.each.iter().filter(move |deploy| {
        deploy.strategy == strategy
            && deploy
                .error
                .as_deref()
                .is_none_or(|error| !error.starts_with("not measured"))
    })
}

pub(super) fn failed(deploys: &Deploys, strategy: &str) -> usize {
    measured(deploys, strategy)
        .map(|deploy| deploy.failed_requests)
        .sum()
}

pub(super) fn median_ready(results: &Results, build: Build, strategy: &str) -> Option<f64> {
    let deploys = figures::deploys(results, build)?;
    Spread::of(measured(deploys, strategy).map(|deploy| deploy.time_to_ready_ms as f64))
        .map(|spread| spread.median)
}

pub(super) fn is_service(deploy: &Deploy) -> bool {
    !matches!(
        deploy.component.as_str(),
        "gateway" | "monolith" | "front-door"
    )
}

pub(super) fn share(failed: usize, requests: usize) -> f64 {
    failed as f64 / requests.max(1) as f64
}

/// Every build that ran anything, in the usual order.
pub(crate) fn builds(results: &Results) -> Vec<Build> {
    Build::BOTH
        .into_iter()
        .filter(|build| outcomes(results, *build).next().is_some())
        .collect()
}
