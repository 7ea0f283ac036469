//! The spectrum: every topology the run measured, by its number of processes, from the one
//! process of the monolith to the eight of the microservices (seven services and the
//! gateway). Shown when the run has more than the two builds or a topology between them.
//! Its figures come from the throughput, deploy and fault experiments of each topology;
//! `claims` says where on the spectrum each claim flips.

mod claims;

pub(crate) use claims::verdicts;

use domain::{Context, Topology};

use crate::charts::{Charts, SpectrumChart};
use crate::document::{Block, Cell, Document};
use crate::figures::Spread;
use loadtest_results::Results;
use loadtest_results::experiments::deploy::Deploy;
use loadtest_results::experiments::faults::Cell as FaultCell;
use loadtest_results::experiments::throughput::Level;
use loadtest_results::experiments::{Findings, Outcome};
use loadtest_results::profile::FaultKind;
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
    /// Blast radius of a `kill`: per cell in force, the percentage of route templates that
    /// did worse during the fault (`faults::Cell::blast_radius`).
    pub blast_kill: Option<Spread>,
    /// The same of the partial `errors` fault.
    pub blast_errors: Option<Spread>,
    /// What a payments change restarts, from the deploy experiment's rolling deploy of the
    /// process hosting payments; `None` where none was recorded as done.
    pub payments_roll: Option<PaymentsRoll>,
}

/// The deploy experiment's rolling deploy of the process hosting `payments`, on one
/// topology.
#[derive(Clone, Debug)]
pub(crate) struct PaymentsRoll {
    /// The process (`monolith`, `payments`, or the group's name).
    pub process: String,
    /// Contexts that process hosts, of the seven: the share of the shop a payments change
    /// restarts, in percent.
    pub contexts: usize,
    pub share_percent: f64,
    /// Requests that failed during the roll (from its start to 250 ms after it was done),
    /// one value per rolling deploy recorded (per repeat).
    pub failed: Spread,
    /// Requests sent in those windows, summed.
    pub requests: usize,
}

/// The lab's front door: run on the two builds only (a topology between them has none yet),
/// idle during the throughput sweep, which goes past it. Left out of every process sum here
/// so every topology counts the same processes: the shop's own.
const FRONT_DOOR: &str = "front-door";

/// One point per topology, in the order the run measured them, from whatever of the
/// throughput, deploy and fault experiments it ran.
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
            let outcomes: Vec<&Outcome> = results
                .experiments
                .iter()
                .filter(|outcome| outcome.topology_name() == name)
                .collect();
            point(name, &outcomes)
        })
        .collect()
}

fn point(name: &str, outcomes: &[&Outcome]) -> Option<SpectrumPoint> {
    let topology = Topology::parse(name).ok()?;
    let processes = topology.groups().len() + usize::from(topology.needs_gateway());
    let mut point = SpectrumPoint {
        topology: name.to_owned(),
        processes,
        capacity: None,
        cpu_ms_per_request: None,
        p99_ms: None,
        memory_mib: None,
        blast_kill: None,
        blast_errors: None,
        payments_roll: None,
    };
    let cells: Vec<&FaultCell> = outcomes
        .iter()
        .filter_map(|outcome| match &outcome.findings {
            Findings::Faults { cells, .. } => Some(cells),
            _ => None,
        })
        .flatten()
        .filter(|cell| cell.judgeable())
        .collect();
    let blast = |kind: FaultKind| {
        Spread::of(
            cells
                .iter()
                .filter(|cell| cell.fault.kind == kind)
                .map(|cell| cell.blast_radius * 100.0),
        )
    };
    point.blast_kill = blast(FaultKind::Kill);
    point.blast_errors = blast(FaultKind::Errors);
    point.payments_roll = payments_roll(&topology, outcomes);
    if let Some(outcome) = outcomes
        .iter()
        .find(|outcome| matches!(outcome.findings, Findings::Throughput { .. }))
    {
        throughput(&mut point, outcome);
    }
    Some(point)
}

/// The process hosting `payments` on `topology`, under the name the deploy experiment
/// records it by: the monolith's, the service's, or its group's.
fn payments_process(topology: &Topology) -> String {
    if topology.is_single() {
        "monolith".to_owned()
    } else {
        topology.group_of(Context::Payments).name()
    }
}

fn payments_roll(topology: &Topology, outcomes: &[&Outcome]) -> Option<PaymentsRoll> {
    let process = payments_process(topology);
    let rolls: Vec<&Deploy> = outcomes
        .iter()
        .filter_map(|outcome| match &outcome.findings {
            Findings::Deploy(deploys) => Some(&deploys.each),
            _ => None,
        })
        .flatten()
        .filter(|deploy| deploy.strategy == "rolling" && deploy.component == process)
        // A roll that failed or was not measured restarted nothing it could be judged by.
        .filter(|deploy| deploy.error.is_none())
        .collect();
    let failed = Spread::of(rolls.iter().map(|deploy| deploy.failed_requests as f64))?;
    let contexts = topology.group_of(Context::Payments).contexts().len();
    Some(PaymentsRoll {
        process,
        contexts,
        share_percent: contexts as f64 * 100.0 / Context::ALL.len() as f64,
        failed,
        requests: rolls.iter().map(|deploy| deploy.requests).sum(),
    })
}

fn throughput(point: &mut SpectrumPoint, outcome: &Outcome) {
    let Findings::Throughput { levels, capacity } = &outcome.findings else {
        return;
    };
    let Some(highest) = levels.iter().map(|level| level.users).max() else {
        return;
    };
    let top: Vec<_> = levels
        .iter()
        .filter(|level| level.users == highest)
        .collect();
    point.capacity = capacity.as_ref().and_then(|capacity| {
        Spread::of(
            capacity
                .ramps
                .iter()
                .map(|ramp| ramp.sustained_per_s.unwrap_or(0.0)),
        )
    });
    point.cpu_ms_per_request = Spread::of(
        top.iter()
            .filter(|level| level.requests > 0)
            .filter_map(|level| {
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
            }),
    );
    point.p99_ms = Spread::of(
        top.iter()
            .filter(|level| level.requests > level.errors)
            .map(|level| level.raw.p99_us as f64 / 1000.0),
    );
    point.memory_mib = Spread::of(top.iter().filter_map(|level| {
        if level.processes.is_empty() {
            level.sut_peak_rss_mib
        } else {
            Some(shop(level).map(|process| process.rss_mib).sum())
        }
    }));
}

/// The shop's own processes of a level, without the front door.
fn shop(level: &Level) -> impl Iterator<Item = &ProcessUsage> {
    level
        .processes
        .iter()
        .filter(|process| process.process != FRONT_DOOR)
}

/// Which cells the blast-radius columns are made of: the profile's `kill` and `errors`
/// cells by their labels, and how several of one kind fold into one point.
pub(crate) fn blast_cells(results: &Results) -> Option<String> {
    let labels = |kind: FaultKind| -> Vec<String> {
        results
            .profile
            .faults
            .iter()
            .filter(|cell| cell.kind == kind)
            .map(loadtest_results::profile::FaultCell::label)
            .collect()
    };
    let (kills, errors) = (labels(FaultKind::Kill), labels(FaultKind::Errors));
    if kills.is_empty() && errors.is_empty() {
        return None;
    }
    let several = kills.len() > 1 || errors.len() > 1;
    Some(format!(
        "The cells behind those two columns: {} for a kill, {} for errors{}",
        list_or_none(&kills),
        list_or_none(&errors),
        if several {
            "; where a kind has several cells, the point is their median and the whisker their \
             range."
        } else {
            "."
        }
    ))
}

fn list_or_none(labels: &[String]) -> String {
    if labels.is_empty() {
        "none".to_owned()
    } else {
        labels.join(", ")
    }
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
    document.paragraph(
        "Where the run also deployed and broke each topology (the deploy and fault \
         experiments, through the same steady load): the blast radius is the percentage of \
         route templates that did worse while the fault was in force (a kill of the process \
         hosting the cell's context, and the partial errors fault in its code), per cell the \
         fault experiment applied. The share a payments change restarts is the contexts hosted \
         by the process the deploy experiment's rolling deploy of payments replaced, of the \
         seven; its failed requests are those of that deploy's window (from its start to 250 \
         ms after the new process took over), a failed request never counted as fast. The \
         monolith and the microservices go through the lab's front door in these two \
         experiments, a topology between them straight to its gateway.",
    );
    if let Some(cells) = blast_cells(results) {
        document.paragraph(cells);
    }
    document.push(Block::Figure(charts.save(
        "spectrum",
        "The spectrum by number of processes",
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
    let percent = |spread: &Option<Spread>| match spread {
        None => "not measured".to_owned(),
        Some(spread) if spread.samples > 1 => format!(
            "{:.0} % ({:.0}–{:.0} %)",
            spread.median, spread.min, spread.max
        ),
        Some(spread) => format!("{:.0} %", spread.median),
    };
    let rows = points
        .iter()
        .map(|point| {
            let (restarts, failed) = match &point.payments_roll {
                None => ("not measured".to_owned(), "not measured".to_owned()),
                Some(roll) => (
                    format!(
                        "{:.0} % ({} of 7 contexts, in {})",
                        roll.share_percent, roll.contexts, roll.process
                    ),
                    format!(
                        "{} of {}",
                        show(&Some(roll.failed.clone()), 0),
                        roll.requests
                    ),
                ),
            };
            vec![
                Cell::plain(point.topology.clone()),
                Cell::plain(point.processes.to_string()),
                Cell::plain(percent(&point.blast_kill)),
                Cell::plain(percent(&point.blast_errors)),
                Cell::plain(restarts),
                Cell::plain(failed),
            ]
        })
        .collect();
    document.table(
        &[
            "topology",
            "processes",
            "blast radius of a kill",
            "blast radius of errors",
            "a payments change restarts",
            "failed requests in the payments roll",
        ],
        rows,
    );
    document.paragraph(format!(
        "Where each claim flips: the topologies from the fewest processes to the most, and the \
         first where the claim holds against the fewest-process one. {}",
        claims::RULE
    ));
    document.push(Block::List(claims::verdicts(&points)));
    Ok(())
}
