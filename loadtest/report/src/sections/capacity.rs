//! The capacity section: each build's highest sustained arrival rate at the SLO from
//! open-loop load, the hockey-stick chart, and every step of the ramps.

use crate::charts::{Charts, HockeyStick};
use crate::document::{Block, Cell, Document, Tone};
use crate::figures::{capacity, count, ms, percent};
use crate::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::experiments::capacity::Capacity;
use loadtest_results::stats::Estimate;

pub(super) fn capacity_section(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    let builds: Vec<(Build, &Capacity)> = Build::BOTH
        .into_iter()
        .filter_map(|build| Some((build, capacity(results, build)?)))
        .collect();
    let Some((_, first)) = builds.first() else {
        return Ok(());
    };
    let plan = &first.plan;
    document.section("capacity", "Capacity at the SLO (open loop)");
    document.paragraph(format!(
        "Journeys (browse and buy, by their weights) arrive at a target rate whether or not the \
         shop keeps up ({} arrivals, at most {} journeys in flight; an arrival beyond that is \
         dropped and counted). Every latency is of successful requests, measured from the \
         moment the request was due, so a shop that falls behind cannot hide it. The rate \
         starts at {:.0} journeys/s and is multiplied by {} per step of {} s, at most {}, \
         until a step misses the SLO: p99 ≤ {:.0} ms, errors ≤ {}, drops ≤ {}. The capacity \
         is the highest rate that met it; {}. {}",
        plan.arrivals.as_str(),
        plan.max_in_flight,
        plan.start_per_s,
        plan.factor,
        plan.step_duration.as_secs_f64(),
        count(plan.max_steps, "step", "steps"),
        plan.slo.p99_ms,
        percent(plan.slo.max_error_rate),
        percent(plan.slo.max_drop_rate),
        match first.ramps.len() {
            1 => "one run: no spread, no interval".to_owned(),
            n => format!(
                "over {n} repeats, the median with the 95 % Student t interval of the mean"
            ),
        },
        logins(&builds)
    ));
    let plot = HockeyStick {
        builds: builds.clone(),
        slo_ms: plan.slo.p99_ms,
    };
    document.push(Block::Figure(charts.save(
        "capacity",
        "Latency against throughput: the hockey stick",
        &plot,
    )?));
    let rows = builds
        .iter()
        .map(|(build, capacity)| {
            vec![
                Cell::plain(build_label(*build)),
                interval_cell(capacity, capacity.sustained.as_ref(), "journeys/s"),
                interval_cell(
                    capacity,
                    capacity.sustained_requests_per_s.as_ref(),
                    "ok req/s",
                ),
                Cell::plain(
                    capacity
                        .ramps
                        .iter()
                        .map(|ramp| ramp.stopped.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            ]
        })
        .collect();
    document.table(
        &[
            "build",
            "capacity",
            "successes at capacity",
            "where the ramp stopped",
        ],
        rows,
    );
    document.subsection("Every step");
    let mut rows = Vec::new();
    for (build, capacity) in &builds {
        for ramp in &capacity.ramps {
            for step in &ramp.steps {
                let latency = |value: Option<u64>| {
                    value.map_or_else(
                        || Cell::toned("no success", Tone::Bad),
                        |us| Cell::plain(ms(us as f64 / 1000.0)),
                    )
                };
                rows.push(vec![
                    Cell::plain(build_label(*build)),
                    Cell::plain(ramp.repeat.to_string()),
                    Cell::plain(format!("{:.0}/s", step.offered_per_s)),
                    Cell::plain(format!("{} of {}", step.started, step.due)),
                    Cell::plain(format!("{:.0}", step.ok_per_s)),
                    Cell::plain(percent(step.error_rate())),
                    latency(step.p50_us),
                    latency(step.p99_us),
                    if step.generator_limited {
                        Cell::toned(
                            format!("{} (saturated)", percent(step.generator_cpu_share)),
                            Tone::Warn,
                        )
                    } else {
                        Cell::plain(percent(step.generator_cpu_share))
                    },
                    if step.met {
                        Cell::toned("met", Tone::Good)
                    } else {
                        Cell::toned(step.missed.join(", "), Tone::Bad)
                    },
                ]);
            }
        }
    }
    document.table(
        &[
            "build",
            "repeat",
            "offered",
            "started",
            "ok req/s",
            "errors",
            "p50",
            "p99",
            "generator",
            "SLO",
        ],
        rows,
    );
    Ok(())
}

/// `420 journeys/s [95 % CI 380–460, n=3]`, or `420 journeys/s (one run)`.
/// A capacity figure; "at least" when a ramp ran out of steps before the shop missed.
fn interval_cell(capacity: &Capacity, estimate: Option<&Estimate>, unit: &str) -> Cell {
    match estimate {
        Some(estimate) if capacity.is_lower_bound() => Cell::toned(
            format!("at least {} {unit}", estimate.describe(0)),
            Tone::Warn,
        ),
        Some(estimate) => Cell::plain(format!("{} {unit}", estimate.describe(0))),
        None => Cell::toned("below the first step", Tone::Bad),
    }
}

/// What the ramps did about logging in, which decides whether the first steps carried the
/// password hashes of first logins.
fn logins(builds: &[(Build, &Capacity)]) -> String {
    let ramps = || {
        builds
            .iter()
            .flat_map(|(_, capacity)| capacity.ramps.iter())
    };
    if ramps().any(|ramp| ramp.logged_in_first.is_none()) {
        return "Users logged in at their first buy arrival, inside whichever step that fell \
                in: the first steps' latencies include those password hashes."
            .to_owned();
    }
    let failed: usize = ramps()
        .filter_map(|ramp| ramp.logged_in_first)
        .map(|logged_in| logged_in.users - logged_in.succeeded)
        .sum();
    let users = ramps()
        .filter_map(|ramp| ramp.logged_in_first)
        .map(|logged_in| logged_in.users)
        .max()
        .unwrap_or(0);
    let failed = match failed {
        0 => String::new(),
        n => format!(
            " ({n} of those logins failed; those users logged in at their first buy arrival)"
        ),
    };
    format!(
        "Before each ramp the {users} seeded users logged in once, as Goose users do before \
         their loop, outside every step's figures{failed}: a step measures its journeys, not the \
         first logins that would otherwise fall in it."
    )
}
