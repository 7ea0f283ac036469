//! The spectrum: every topology the run measured, by its number of processes, from the one
//! process of the monolith to the eight of the microservices (seven services and the
//! gateway). Shown when the run has more than the two builds or a topology between them.

use domain::Topology;

use crate::charts::{Charts, SpectrumChart};
use crate::document::{Block, Cell, Document};
use crate::figures::Spread;
use loadtest_results::Results;
use loadtest_results::experiments::throughput::Level;
use loadtest_results::experiments::{Findings, Outcome};
use loadtest_results::resources::ProcessUsage;

/// One topology's figures, each over the repeats (median, min and max).
#[derive(Clone, Debug)]
pub(crate) struct SpectrumPoint {
    /// The preset's name or the spec.
    pub topology: String,
    /// Group processes, and the gateway where there is more than one.
    pub processes: usize,
    /// Journeys per second sustained at the SLO (the capacity ramp), one value per ramp.
    pub capacity: Option<Spread>,
    /// CPU milliseconds per request at the highest closed-loop level.
    pub cpu_ms_per_request: Option<Spread>,
    /// p99 of successful requests at the highest level, in milliseconds.
    pub p99_ms: Option<Spread>,
    /// Resident MiB of the shop's processes summed, at the highest level.
    pub memory_mib: Option<Spread>,
}

/// The lab's front door: run on the two builds only (a topology between them has none yet),
/// idle during the throughput sweep, which goes past it. Left out of every process sum here
/// so every topology counts the same processes: the shop's own.
const FRONT_DOOR: &str = "front-door";

/// One point per topology, in the order the run measured them; a topology without a
/// throughput outcome has none.
pub(crate) fn points(results: &Results) -> Vec<SpectrumPoint> {
    let mut names: Vec<&str> = Vec::new();
    for outcome in &results.experiments {
        if !names.contains(&outcome.topology_name()) {
            names.push(outcome.topology_name());
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let outcome = results.experiments.iter().find(|outcome| {
                outcome.topology_name() == name
                    && matches!(outcome.findings, Findings::Throughput { .. })
            })?;
            point(name, outcome)
        })
        .collect()
}

fn point(name: &str, outcome: &Outcome) -> Option<SpectrumPoint> {
    let Findings::Throughput { levels, capacity } = &outcome.findings else {
        return None;
    };
    let topology = Topology::parse(name).ok()?;
    let processes = topology.groups().len() + usize::from(topology.needs_gateway());
    let highest = levels.iter().map(|level| level.users).max()?;
    let top: Vec<_> = levels
        .iter()
        .filter(|level| level.users == highest)
        .collect();
    Some(SpectrumPoint {
        topology: name.to_owned(),
        processes,
        capacity: capacity.as_ref().and_then(|capacity| {
            Spread::of(
                capacity
                    .ramps
                    .iter()
                    .map(|ramp| ramp.sustained_per_s.unwrap_or(0.0)),
            )
        }),
        cpu_ms_per_request: Spread::of(top.iter().filter(|level| level.requests > 0).filter_map(
            |level| {
                // The shop's processes' own CPU; a file without per-process figures falls
                // back on the whole system under test's (`requests_per_sut_cpu_s`).
                if level.processes.is_empty() {
                    level
                        .requests_per_sut_cpu_s
                        .map(|rate| 1000.0 / rate.max(1e-9))
                } else {
                    let cpu_s: f64 = shop(level).map(|process| process.cpu_s).sum();
                    Some(cpu_s * 1000.0 / level.requests as f64)
                }
            },
        )),
        p99_ms: Spread::of(
            top.iter()
                .filter(|level| level.requests > level.errors)
                .map(|level| level.raw.p99_us as f64 / 1000.0),
        ),
        memory_mib: Spread::of(top.iter().filter_map(|level| {
            if level.processes.is_empty() {
                level.sut_peak_rss_mib
            } else {
                Some(shop(level).map(|process| process.rss_mib).sum())
            }
        })),
    })
}

/// The shop's own processes of a level, without the front door.
fn shop(level: &Level) -> impl Iterator<Item = &ProcessUsage> {
    level
        .processes
        .iter()
        .filter(|process| process.process != FRONT_DOOR)
}

/// The spectrum's section: how each figure was measured, the chart, and the table.
pub(crate) fn section(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    if !results.has_spectrum() {
        return Ok(());
    }
    let points = points(results);
    document.section("spectrum", "The spectrum: by number of processes");
    let highest = results.profile.levels.iter().copied().max().unwrap_or(0);
    document.paragraph(format!(
        "Every topology of the run by its number of processes (the groups of contexts, and the \
         gateway in front when there is more than one). Each ran the throughput experiment on \
         the same cores with the same data and load, one after the other. Capacity is the \
         highest arrival rate of the open-loop ramp whose step met the SLO, in journeys per \
         second (0 where the first step missed). CPU per request is the CPU time of the \
         shop's processes during the highest closed-loop level ({highest} users), divided by \
         its requests. p99 is of successful requests at that level. Memory is the resident \
         memory of the shop's processes summed at that level's end. The lab's front door, \
         which only the two builds run and which the sweep goes past, is counted in none of \
         them. Each point is the median over {} repeat(s); where there were several, the \
         whisker spans the smallest to the largest.",
        results.profile.repeats
    ));
    document.push(Block::Figure(charts.save(
        "spectrum",
        "The spectrum: capacity, CPU, latency and memory by number of processes",
        &SpectrumChart {
            points: points.clone(),
        },
    )?));
    let show = |spread: &Option<Spread>, places: usize| match spread {
        None => "not measured".to_owned(),
        Some(spread) if spread.samples > 1 => format!(
            "{:.places$} ({:.places$}–{:.places$})",
            spread.median, spread.min, spread.max
        ),
        Some(spread) => format!("{:.places$}", spread.median),
    };
    let rows = points
        .iter()
        .map(|point| {
            vec![
                Cell::plain(point.topology.clone()),
                Cell::plain(point.processes.to_string()),
                Cell::plain(show(&point.capacity, 1)),
                Cell::plain(show(&point.cpu_ms_per_request, 2)),
                Cell::plain(show(&point.p99_ms, 1)),
                Cell::plain(show(&point.memory_mib, 0)),
            ]
        })
        .collect();
    document.table(
        &[
            "topology",
            "processes",
            "capacity at the SLO (journeys/s)",
            "CPU per request (ms)",
            "p99 at the highest level (ms)",
            "memory (MiB)",
        ],
        rows,
    );
    Ok(())
}
