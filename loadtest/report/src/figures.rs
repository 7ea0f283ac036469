//! The numbers the report shows, taken out of `results.json` in one place so the charts, the
//! summary and the diff agree: per build, the throughput levels folded over their repeats
//! (median, min, max, and a 95 % interval from `loadtest_results::stats`), the fault cells
//! paired across builds, the deploys and the scale run.
//!
//! Throughput is of successful requests: a build that answers every request with a fast
//! error must not look fast. Latency is of successful requests too (the lab records it so).

use loadtest_results::Results;
use loadtest_results::analysis::{Slice, Timeline};
use loadtest_results::component::Build;
use loadtest_results::experiments::capacity::{Capacity, Ramp};
use loadtest_results::experiments::deploy::Deploys;
use loadtest_results::experiments::faults::Cell;
use loadtest_results::experiments::scale::Scale;
use loadtest_results::experiments::throughput::Level;
use loadtest_results::experiments::{Findings, Outcome};
use loadtest_results::profile::FaultCell;
use loadtest_results::stats::{self, Estimate};

/// A figure measured once per repeat: the median is what the report states, min and max
/// its spread, `estimate` its 95 % interval (none for one run).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
    /// Every repeat's value, sorted: what a ratio's interval is computed from.
    pub values: Vec<f64>,
    pub estimate: Estimate,
}

/// One throughput level of one build, over its repeats.
#[derive(Clone, Debug)]
pub(crate) struct LevelFigures {
    pub users: usize,
    /// Successful requests per second.
    pub requests_per_s: Spread,
    /// Median over repeats of each percentile (of successful requests), in milliseconds.
    pub raw_ms: [f64; 3],
    pub corrected_ms: [f64; 3],
    /// The same percentiles over the repeats, with their spread; `None` where no repeat had a
    /// successful request.
    pub raw: [Option<Spread>; 3],
    pub corrected: [Option<Spread>; 3],
    /// The repeat-median latency at each nine of the successful requests' distribution:
    /// (quantile, ms). Empty in results recorded before the distribution was.
    pub nines: Vec<(f64, f64)>,
    /// Per process of the system under test, the median over repeats of its CPU seconds per
    /// 1 000 successful requests and its resident MiB at the level's end; empty where not
    /// recorded.
    pub processes: Vec<ProcessFigures>,
    /// CPU seconds of the system under test per 1 000 successful requests; `None` where the
    /// target could not measure it.
    pub cpu_per_1k: Option<Spread>,
    /// Calls between the shop's processes per request (`Level::hops`); `None` on the
    /// monolith and wherever they were not counted.
    pub hops_per_request: Option<Spread>,
    pub peak_rss_mib: Option<Spread>,
    pub generator_limited: bool,
    /// The busiest repeat's generator CPU share.
    pub generator_share: f64,
    pub error_rate: f64,
}

/// One process's share of a level's cost.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProcessFigures {
    pub process: String,
    pub cpu_per_1k: f64,
    pub rss_mib: f64,
}

/// The percentiles `raw_ms` and `corrected_ms` hold, in order.
pub(crate) const PERCENTILES: [&str; 3] = ["p50", "p95", "p99"];

/// One cell of the fault matrix on both builds: the same kind, context and rate (an
/// `errors` cell at 30 % is not paired with one at 50 %).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FaultPair<'a> {
    pub fault: FaultCell,
    pub monolith: Option<&'a Cell>,
    pub micro: Option<&'a Cell>,
}

impl Spread {
    /// `None` without samples. The median of an even count is the mean of the middle two.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut values: Vec<f64> = values
            .into_iter()
            .filter(|value| value.is_finite())
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let estimate = Estimate::of(values.iter().copied())?;
        Some(Spread {
            median: estimate.median,
            min: estimate.min,
            max: estimate.max,
            samples: estimate.n,
            values,
            estimate,
        })
    }

    /// Whether the repeats disagree by more than [`stats::DISAGREE`] (never for one run).
    pub fn disagrees(&self) -> bool {
        self.estimate.disagrees()
    }

    /// (max - min) / median: how far the repeats are apart.
    pub fn relative_range(&self) -> f64 {
        if self.median.abs() < f64::EPSILON {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }
}

impl FaultPair<'_> {
    pub fn cell(&self, build: Build) -> Option<&Cell> {
        match build {
            Build::Monolith => self.monolith,
            Build::Micro => self.micro,
        }
    }

    /// The two builds' blast radii (monolith, micro) where the fault can be judged on both
    /// (`Cell::judgeable`): what a comparison of the two may use.
    pub fn judged(&self) -> Option<(f64, f64)> {
        let radius = |cell: Option<&Cell>| {
            cell.filter(|cell| cell.judgeable())
                .map(|cell| cell.blast_radius)
        };
        Some((radius(self.monolith)?, radius(self.micro)?))
    }

    /// `kill · recommendations`, `errors 30 % · inventory`: how the report names a cell.
    pub fn name(&self) -> String {
        self.fault.label()
    }

    /// A file name for the cell's chart, one per rate.
    pub fn stem(&self) -> String {
        self.fault.stem()
    }
}

/// The experiments that ran on `build`, in run order.
pub(crate) fn outcomes(results: &Results, build: Build) -> impl Iterator<Item = &Outcome> {
    results
        .experiments
        .iter()
        .filter(move |outcome| outcome.build == build)
}

/// The build's capacity search, where the throughput experiment ran one.
pub(crate) fn capacity(results: &Results, build: Build) -> Option<&Capacity> {
    outcomes(results, build).find_map(|outcome| match &outcome.findings {
        Findings::Throughput { capacity, .. } => capacity.as_ref(),
        _ => None,
    })
}

/// The successful requests per second at each ramp's highest step within the SLO, over the
/// repeats; `None` without a capacity or with no ramp meeting its first step.
pub(crate) fn capacity_ok_per_s(capacity: Option<&Capacity>) -> Option<Spread> {
    Spread::of(capacity?.ramps.iter().filter_map(Ramp::sustained_ok_per_s))
}

pub(crate) fn levels(results: &Results, build: Build) -> Vec<&Level> {
    outcomes(results, build)
        .flat_map(|outcome| match &outcome.findings {
            Findings::Throughput { levels, .. } => levels.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// The throughput levels of `build` by users, each folded over its repeats.
pub(crate) fn throughput(results: &Results, build: Build) -> Vec<LevelFigures> {
    let levels = levels(results, build);
    let mut users: Vec<usize> = levels.iter().map(|level| level.users).collect();
    users.sort_unstable();
    users.dedup();
    users
        .into_iter()
        .filter_map(|users| {
            let repeats: Vec<&Level> = levels
                .iter()
                .copied()
                .filter(|level| level.users == users)
                .collect();
            // A repeat without a successful request has no latency: it is left out of the
            // latency figures rather than counted as 0 ms.
            let answered: Vec<&Level> = repeats
                .iter()
                .copied()
                .filter(|level| level.requests > level.errors)
                .collect();
            let spread = |pick: &dyn Fn(&Level) -> u64| {
                Spread::of(answered.iter().map(|level| pick(level) as f64 / 1000.0))
            };
            let raw = [
                spread(&|level| level.raw.p50_us),
                spread(&|level| level.raw.p95_us),
                spread(&|level| level.raw.p99_us),
            ];
            let corrected = [
                spread(&|level| level.corrected.p50_us),
                spread(&|level| level.corrected.p95_us),
                spread(&|level| level.corrected.p99_us),
            ];
            let median = |spread: &Option<Spread>| spread.as_ref().map_or(0.0, |s| s.median);
            Some(LevelFigures {
                users,
                requests_per_s: Spread::of(repeats.iter().map(|level| successes_per_s(level)))?,
                raw_ms: [median(&raw[0]), median(&raw[1]), median(&raw[2])],
                corrected_ms: [
                    median(&corrected[0]),
                    median(&corrected[1]),
                    median(&corrected[2]),
                ],
                nines: nines(&answered),
                processes: processes(&repeats),
                raw,
                corrected,
                cpu_per_1k: Spread::of(
                    repeats
                        .iter()
                        .filter(|level| level.successes() > 0)
                        .filter_map(|level| {
                            Some(level.sut_cpu_s? * 1000.0 / level.successes() as f64)
                        }),
                ),
                hops_per_request: Spread::of(
                    repeats
                        .iter()
                        .filter(|level| level.requests > 0)
                        .filter_map(|level| Some(level.hops? as f64 / level.requests as f64)),
                ),
                peak_rss_mib: Spread::of(repeats.iter().filter_map(|level| level.sut_peak_rss_mib)),
                generator_limited: repeats.iter().any(|level| level.generator_limited),
                generator_share: repeats
                    .iter()
                    .map(|level| level.generator_cpu_share)
                    .fold(0.0, f64::max),
                error_rate: Spread::of(repeats.iter().map(|level| level.error_rate))
                    .map_or(0.0, |spread| spread.median),
            })
        })
        .collect()
}

/// A level's successful requests per second: `requests_per_s` counts every request sent, and
/// `1 - error_rate` of them succeeded.
pub(crate) fn successes_per_s(level: &Level) -> f64 {
    level.requests_per_s * (1.0 - level.error_rate)
}

/// The median over repeats of each nine the repeats share, in milliseconds.
fn nines(repeats: &[&Level]) -> Vec<(f64, f64)> {
    let Some(first) = repeats.first() else {
        return Vec::new();
    };
    first
        .nines
        .iter()
        .filter_map(|point| {
            let values = repeats.iter().filter_map(|level| {
                level
                    .nines
                    .iter()
                    .find(|other| other.quantile == point.quantile)
                    .map(|other| other.us as f64 / 1000.0)
            });
            Some((point.quantile, Spread::of(values)?.median))
        })
        .collect()
}

/// Per process, in the order of the first repeat, the median over repeats.
fn processes(repeats: &[&Level]) -> Vec<ProcessFigures> {
    let Some(first) = repeats.first() else {
        return Vec::new();
    };
    first
        .processes
        .iter()
        .filter_map(|usage| {
            let of = |pick: &dyn Fn(&Level, f64, f64) -> f64| {
                Spread::of(repeats.iter().filter_map(|level| {
                    let same = level
                        .processes
                        .iter()
                        .find(|other| other.process == usage.process)?;
                    Some(pick(level, same.cpu_s, same.rss_mib))
                }))
                .map(|spread| spread.median)
            };
            Some(ProcessFigures {
                process: usage.process.clone(),
                cpu_per_1k: of(&|level, cpu_s, _| {
                    cpu_s * 1000.0 / level.successes().max(1) as f64
                })?,
                rss_mib: of(&|_, _, rss_mib| rss_mib)?,
            })
        })
        .collect()
}

/// What the hops cost in CPU at one load level (medians over the repeats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct HopCpu {
    /// Calls between the microservices' processes per request.
    pub hops_per_request: f64,
    /// The microservices' CPU per request beyond the monolith's, in µs.
    pub extra_us: f64,
    /// `extra_us` over `hops_per_request`: µs of CPU per hop, caller, callee and kernel
    /// together.
    pub per_hop_us: f64,
}

/// [`HopCpu`] of one load level. Every extra CPU second is charged to the hops, the
/// gateway's own routing and the saga's extra writes included. `None` without both builds'
/// CPU or without a hop count.
pub(crate) fn hop_cpu(monolith: &LevelFigures, micro: &LevelFigures) -> Option<HopCpu> {
    let hops_per_request = micro.hops_per_request.as_ref()?.median;
    let extra_us =
        (micro.cpu_per_1k.as_ref()?.median - monolith.cpu_per_1k.as_ref()?.median) * 1000.0;
    (hops_per_request > 0.0).then(|| HopCpu {
        hops_per_request,
        extra_us,
        per_hop_us: extra_us / hops_per_request,
    })
}

/// micro ÷ monolith of two figures over their repeats, with Welch's interval on logs.
pub(crate) fn ratio(monolith: &Spread, micro: &Spread) -> Option<stats::Ratio> {
    stats::ratio(&micro.values, &monolith.values)
}

/// The fault cells of `build` and the run's timeline they sit on.
pub(crate) fn faults(results: &Results, build: Build) -> Option<(&[Cell], &Timeline)> {
    outcomes(results, build).find_map(|outcome| match &outcome.findings {
        Findings::Faults { cells, timeline } => Some((cells.as_slice(), timeline)),
        _ => None,
    })
}

pub(crate) fn deploys(results: &Results, build: Build) -> Option<&Deploys> {
    outcomes(results, build).find_map(|outcome| match &outcome.findings {
        Findings::Deploy(deploys) => Some(deploys),
        _ => None,
    })
}

pub(crate) fn scale(results: &Results, build: Build) -> Option<&Scale> {
    outcomes(results, build).find_map(|outcome| match &outcome.findings {
        Findings::Scale(scale) => Some(&**scale),
        _ => None,
    })
}

/// Every fault cell that ran on either build, in the order of the first build's run.
pub(crate) fn fault_pairs(results: &Results) -> Vec<FaultPair<'_>> {
    let monolith = faults(results, Build::Monolith).map_or(&[][..], |(cells, _)| cells);
    let micro = faults(results, Build::Micro).map_or(&[][..], |(cells, _)| cells);
    let mut pairs: Vec<FaultPair<'_>> = Vec::new();
    for cell in monolith.iter().chain(micro) {
        if pairs.iter().any(|pair| pair.fault == cell.fault) {
            continue;
        }
        let same = |other: &&Cell| other.fault == cell.fault;
        pairs.push(FaultPair {
            fault: cell.fault,
            monolith: monolith.iter().find(same),
            micro: micro.iter().find(same),
        });
    }
    pairs
}

/// The journeys the timelines have, by name: the same order, so the same line style, in
/// every chart of the run.
pub(crate) fn journeys<'a>(timelines: impl IntoIterator<Item = &'a Timeline>) -> Vec<String> {
    let mut names: Vec<String> = timelines
        .into_iter()
        .flat_map(|timeline| timeline.slices.iter().map(|slice| slice.journey.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The share of a slice's requests answered 2xx.
pub(crate) fn success_rate(slice: &Slice) -> Option<f64> {
    let total = slice.ok + slice.fail + slice.maybe_applied;
    (total > 0).then(|| slice.ok as f64 / total as f64)
}

/// The middle of a slice, in seconds from `origin_ms` (negative before it).
pub(crate) fn slice_middle_s(slice: &Slice, slice_ms: u64, origin_ms: u64) -> f64 {
    (slice.t_ms as f64 + slice_ms as f64 / 2.0 - origin_ms as f64) / 1000.0
}

/// Milliseconds, with a sensible number of digits.
pub(crate) fn ms(value: f64) -> String {
    if value == 0.0 {
        "0 ms".to_owned()
    } else if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 10.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.2} ms")
    }
}

/// `1 process`, `2 processes`.
pub(crate) fn count(number: usize, one: &str, many: &str) -> String {
    format!("{number} {}", if number == 1 { one } else { many })
}

/// A share as a percentage.
pub(crate) fn percent(share: f64) -> String {
    let value = share * 100.0;
    if value != 0.0 && value.abs() < 1.0 {
        format!("{value:.2} %")
    } else {
        format!("{value:.0} %")
    }
}

/// The first line of a message, at most 140 characters.
pub(crate) fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(140) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// A measured figure to `places` decimals, or `absent` where the target could not measure it
/// (the CSV's empty field, the summary's `n/a`).
pub(crate) fn figure(value: Option<f64>, places: usize, absent: &str) -> String {
    value.map_or_else(|| absent.to_owned(), |value| format!("{value:.places$}"))
}

/// Fewer calls than this in a fault window make its attempts per call a curiosity, not a
/// measure: one retry among 3 calls reads 1.33, among 20 calls 1.05.
pub(crate) const FEW_HOP_CALLS: u64 = 20;

/// `1.73 attempts per call (412 calls)`, the calls said wherever the ratio is, and a ratio
/// over fewer than [`FEW_HOP_CALLS`] marked as too few to read. Results from before the
/// count was kept give the ratio alone.
pub(crate) fn attempts_per_call(attempts: f64, calls: Option<u64>) -> String {
    match calls {
        Some(calls) if calls < FEW_HOP_CALLS => {
            format!("{attempts:.2} attempts per call ({calls} calls: too few to read)")
        }
        Some(calls) => format!("{attempts:.2} attempts per call ({calls} calls)"),
        None => format!("{attempts:.2} attempts per call"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_per_call_says_over_how_many_calls_and_marks_a_handful() {
        assert_eq!(
            attempts_per_call(1.73, Some(412)),
            "1.73 attempts per call (412 calls)"
        );
        assert_eq!(
            attempts_per_call(4.0 / 3.0, Some(3)),
            "1.33 attempts per call (3 calls: too few to read)"
        );
        assert_eq!(attempts_per_call(1.5, None), "1.50 attempts per call");
    }

    #[test]
    fn a_spread_has_the_median_and_the_extremes_of_its_samples() {
        let spread = Spread::of([3.0, 1.0, 2.0]).expect("samples");
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([1.0, 3.0]).expect("samples").median, 2.0);
        assert!(Spread::of([]).is_none());
        assert!(
            Spread::of([5.0])
                .expect("one")
                .estimate
                .interval()
                .is_none()
        );
        assert!(
            (Spread::of([90.0, 100.0, 110.0])
                .expect("samples")
                .relative_range()
                - 0.2)
                .abs()
                < 1e-9
        );
    }
}
