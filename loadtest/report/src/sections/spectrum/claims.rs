//! Where on the spectrum each claim flips: for every claim about service boundaries the
//! run has figures for, its figure at each topology from the fewest processes to the most,
//! and the first topology where it departs from the fewest-process one in the claim's
//! direction — "independent deploy: a payments change restarts 100 % of the shop at 1
//! process (monolith), 43 % at 4 (coarse), 14 % at 8 (micro); flips at 4 processes
//! (coarse)".

use super::SpectrumPoint;
use crate::document::Tone;
use crate::figures::Spread;

/// How a flip is decided, stated under the verdicts.
pub(crate) const RULE: &str = "A count or a share (blast radius, the share a payments change \
     restarts, failed requests) flips at the first topology where it is lower than at the \
     fewest processes; a rate, a time or a size (capacity, CPU per request, p99, memory) where \
     it is more than 10 % from the fewest-process figure in the claim's direction and, where \
     there were repeats, the two ranges do not overlap. A single run has no interval: its \
     figures are one measurement each.";

/// A rate, time or size must move this far (relative) to count as a flip.
const MARGIN: f64 = 0.10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The claim holds where the figure is lower (a boundary that contains a fault).
    Lower,
    /// The claim holds where the figure is higher (a boundary that costs CPU).
    Higher,
}

struct Claim {
    name: &'static str,
    /// What the figure is, before its values.
    what: &'static str,
    value: fn(&SpectrumPoint) -> Option<Spread>,
    /// After the first value, and after every later one (` %`, or nothing).
    unit: &'static str,
    short: &'static str,
    places: usize,
    direction: Direction,
    /// Any difference counts (a count or a share), or only beyond [`MARGIN`].
    exact: bool,
}

const CLAIMS: [Claim; 8] = [
    Claim {
        name: "independent deploy",
        what: "a payments change restarts",
        value: |point| {
            point
                .payments_roll
                .as_ref()
                .and_then(|roll| Spread::of([roll.share_percent]))
        },
        unit: " % of the shop",
        short: " %",
        places: 0,
        direction: Direction::Lower,
        exact: true,
    },
    Claim {
        name: "no-downtime deploy",
        what: "the payments roll failed",
        value: |point| point.payments_roll.as_ref().map(|roll| roll.failed.clone()),
        unit: " requests",
        short: "",
        places: 0,
        direction: Direction::Lower,
        exact: true,
    },
    Claim {
        name: "fault isolation (kill)",
        what: "a kill degrades",
        value: |point| point.blast_kill.clone(),
        unit: " % of route templates",
        short: " %",
        places: 0,
        direction: Direction::Lower,
        exact: true,
    },
    Claim {
        name: "fault isolation (partial errors)",
        what: "the errors fault degrades",
        value: |point| point.blast_errors.clone(),
        unit: " % of route templates",
        short: " %",
        places: 0,
        direction: Direction::Lower,
        exact: true,
    },
    Claim {
        name: "the boundary costs capacity",
        what: "capacity at the SLO is",
        value: |point| point.capacity.clone(),
        unit: " journeys/s",
        short: "",
        places: 1,
        direction: Direction::Lower,
        exact: false,
    },
    Claim {
        name: "the boundary costs CPU",
        what: "CPU per request is",
        value: |point| point.cpu_ms_per_request.clone(),
        unit: " ms",
        short: "",
        places: 2,
        direction: Direction::Higher,
        exact: false,
    },
    Claim {
        name: "the boundary costs latency",
        what: "p99 is",
        value: |point| point.p99_ms.clone(),
        unit: " ms",
        short: "",
        places: 1,
        direction: Direction::Higher,
        exact: false,
    },
    Claim {
        name: "the boundary costs memory",
        what: "the shop's memory is",
        value: |point| point.memory_mib.clone(),
        unit: " MiB",
        short: "",
        places: 0,
        direction: Direction::Higher,
        exact: false,
    },
];

/// One line per claim the run has figures for at two topologies or more.
pub(crate) fn verdicts(points: &[SpectrumPoint]) -> Vec<(Tone, String)> {
    let mut ordered: Vec<&SpectrumPoint> = points.iter().collect();
    // Stable: topologies of as many processes keep the run's order.
    ordered.sort_by_key(|point| point.processes);
    CLAIMS
        .iter()
        .filter_map(|claim| verdict(claim, &ordered))
        .collect()
}

fn verdict(claim: &Claim, points: &[&SpectrumPoint]) -> Option<(Tone, String)> {
    let measured: Vec<(&SpectrumPoint, Spread)> = points
        .iter()
        .filter_map(|point| (claim.value)(point).map(|value| (*point, value)))
        .collect();
    if measured.len() < 2 {
        return None;
    }
    let places = claim.places;
    let figures: Vec<String> = measured
        .iter()
        .enumerate()
        .map(|(index, (point, value))| {
            let unit = if index == 0 { claim.unit } else { claim.short };
            let processes = if index == 0 {
                plural(point.processes)
            } else {
                point.processes.to_string()
            };
            format!(
                "{:.places$}{unit} at {processes} ({})",
                value.median, point.topology
            )
        })
        .collect();
    let (base_point, base) = &measured[0];
    let flip = measured[1..]
        .iter()
        .find(|(_, value)| flips(claim, base, value));
    let ending = match flip {
        Some((point, _)) => {
            // A flip at a few processes says nothing of the topologies past it: where the
            // cut falls can matter more than how many processes there are (a kill of
            // recommendations takes catalog with it where the two share a process).
            let back: Vec<String> = measured
                .iter()
                .skip_while(|(at, _)| !std::ptr::eq(*at, *point))
                .filter(|(_, value)| !flips(claim, base, value))
                .map(|(at, _)| format!("{} ({})", at.processes, at.topology))
                .collect();
            let flipped = format!("flips at {} ({})", plural(point.processes), point.topology);
            if back.is_empty() {
                flipped
            } else {
                format!(
                    "{flipped}, yet not at {}: not by the number of processes alone",
                    back.join(", ")
                )
            }
        }
        None if measured
            .iter()
            .all(|(_, value)| (value.median - base.median).abs() < 1e-9) =>
        {
            "the same at every point, so it does not flip".to_owned()
        }
        None => format!(
            "does not flip on this run's spectrum: no topology departs from {} ({}) by the rule \
             below",
            plural(base_point.processes),
            base_point.topology
        ),
    };
    let tone = if flip.is_some() {
        Tone::Good
    } else {
        Tone::Plain
    };
    Some((
        tone,
        format!(
            "{}: {} {}; {ending}.",
            claim.name,
            claim.what,
            figures.join(", ")
        ),
    ))
}

/// Whether `value` departs from `base` in the claim's direction by the rule.
fn flips(claim: &Claim, base: &Spread, value: &Spread) -> bool {
    let toward = match claim.direction {
        Direction::Lower => base.median - value.median,
        Direction::Higher => value.median - base.median,
    };
    if claim.exact {
        return toward > 1e-9;
    }
    let far_enough = toward > MARGIN * base.median.abs();
    let apart = match claim.direction {
        Direction::Lower => value.max < base.min,
        Direction::Higher => value.min > base.max,
    };
    // One sample each: min and max are the median, so `apart` adds nothing then.
    far_enough && (apart || base.samples < 2 || value.samples < 2)
}

fn plural(processes: usize) -> String {
    if processes == 1 {
        "1 process".to_owned()
    } else {
        format!("{processes} processes")
    }
}
