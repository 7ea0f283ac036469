//! `--fail-if` gates: thresholds a run must stay within, so CI can fail a build on a number.
//!
//! A gate is written `[BUILD.]MEASURE OP VALUE[UNIT]` and fails when the comparison holds:
//!
//! - `p99>200ms`: the p99 of successful requests is over 200 ms (units `us`, `ms`, `s`);
//!   also `p50`, `p95`, `max`;
//! - `error_rate>1%`: more than 1 % of requests failed (`0.01` means the same);
//! - `throughput<500`: fewer than 500 successful requests per second (`500/s` too);
//! - `micro.p99>150ms`, `monolith.error_rate>0%`: one build only (`compare`);
//! - `ratio.p99>3`: the micro build's p99 is over three times the monolith's (`compare`;
//!   the ratio is micro ÷ monolith, a plain number, `3x` too).
//!
//! Operators: `>`, `>=`, `<`, `<=`. Without a build prefix a `compare` gate holds each build
//! to it. Latency gates read successful requests only: a failure answered fast must not pass
//! a latency gate. A gate whose measure cannot be taken (no request succeeded, a build not
//! run) fails and says why: a gate nobody could check is not a gate passed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Results;
use crate::component::Build;
use crate::experiments::Findings;
use crate::latency::Percentiles;

/// One parsed `--fail-if` threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// As the user wrote it, for messages.
    text: String,
    scope: Scope,
    measure: Measure,
    comparison: Comparison,
    /// In the measure's canonical unit: milliseconds, a share (0–1), requests per second, or
    /// a plain ratio.
    limit: f64,
}

/// Which run or build a gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The one run of `load`; each build in turn in `compare`.
    Each,
    Build(Build),
    /// Micro ÷ monolith.
    Ratio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    P50,
    P95,
    P99,
    Max,
    ErrorRate,
    Throughput,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
}

/// What a gate is measured on: one run, or one build's part of a `compare`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    pub requests: usize,
    pub successes: usize,
    /// The wall time the requests were sent in.
    pub wall_s: f64,
    /// Percentiles of the successful requests only; `None` when none succeeded.
    pub latency_of_successes: Option<Percentiles>,
}

/// One gate evaluated: what was measured and whether the run stays within it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The gate as written.
    pub gate: String,
    /// `run`, `monolith`, `micro` or `micro ÷ monolith`.
    pub subject: String,
    /// The measured value in the gate's unit (ms, %, req/s or ×); `None` when it could not be
    /// measured (then `passed` is false and `note` says why).
    pub value: Option<f64>,
    pub unit: String,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Verdict {
    /// `FAIL p99>200ms: monolith p99 = 231.40 ms`.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.passed { "PASS" } else { "FAIL" };
        write!(out, "{status} {}: {} ", self.gate, self.subject)?;
        match (self.value, &self.note) {
            (Some(value), _) => write!(out, "= {}", show(value, &self.unit)),
            (None, Some(note)) => write!(out, "not measured: {note}"),
            (None, None) => write!(out, "not measured"),
        }
    }
}

impl Gate {
    /// Parses a gate for `compare`: any build prefix, and ratios.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let trimmed = text.trim();
        let at = trimmed
            .find(['<', '>'])
            .ok_or_else(|| format!("{text:?} has no comparison: write one of >, >=, <, <="))?;
        let (name, rest) = trimmed.split_at(at);
        let (comparison, value) = if let Some(value) = rest.strip_prefix(">=") {
            (Comparison::AtLeast, value)
        } else if let Some(value) = rest.strip_prefix("<=") {
            (Comparison::AtMost, value)
        } else if let Some(value) = rest.strip_prefix('>') {
            (Comparison::Above, value)
        } else {
            (Comparison::Below, &rest[1..])
        };
        let name = name.trim();
        let (scope, measure_name) = match name.split_once('.') {
            None => (Scope::Each, name),
            Some(("ratio", measure)) => (Scope::Ratio, measure),
            Some((build, measure)) => match Build::BOTH
                .into_iter()
                .find(|known| known.as_str() == build)
            {
                Some(build) => (Scope::Build(build), measure),
                None => {
                    return Err(format!(
                        "{text:?}: {build:?} is not a build; prefix with monolith., micro. or ratio."
                    ));
                }
            },
        };
        let measure = Measure::parse(measure_name).ok_or_else(|| {
            format!(
                "{text:?}: {measure_name:?} is not a measure; use p50, p95, p99, max, error_rate \
                 or throughput"
            )
        })?;
        let limit = limit(text, scope, measure, value.trim())?;
        Ok(Gate {
            text: trimmed.to_owned(),
            scope,
            measure,
            comparison,
            limit,
        })
    }

    /// Parses a gate for one run (`load`): no build prefix, no ratio.
    pub fn parse_single_run(text: &str) -> Result<Gate, String> {
        let gate = Gate::parse(text)?;
        if gate.scope != Scope::Each {
            return Err(format!(
                "{text:?}: a build prefix or ratio needs both builds (shoplab compare); \
                 shoplab load measures one run"
            ));
        }
        Ok(gate)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the gate on one run (`load`).
    pub fn evaluate_run(&self, run: &Measured) -> Verdict {
        self.verdict("run", self.measure.of(run))
    }

    /// Evaluates the gate on a `compare`: one verdict per build it reads, or one for a ratio.
    pub fn evaluate_results(&self, results: &Results) -> Vec<Verdict> {
        let of = |build| measure_of_build(results, build, self.measure);
        match self.scope {
            Scope::Each => Build::BOTH
                .into_iter()
                .map(|build| self.verdict(build.as_str(), of(build)))
                .collect(),
            Scope::Build(build) => vec![self.verdict(build.as_str(), of(build))],
            Scope::Ratio => {
                let ratio = of(Build::Micro).and_then(|micro| {
                    let monolith = of(Build::Monolith)?;
                    if monolith == 0.0 {
                        Err("the monolith's value is 0: no ratio".to_owned())
                    } else {
                        Ok(micro / monolith)
                    }
                });
                vec![self.verdict("micro ÷ monolith", ratio)]
            }
        }
    }

    fn verdict(&self, subject: &str, value: Result<f64, String>) -> Verdict {
        let unit = if self.scope == Scope::Ratio {
            "×"
        } else {
            self.measure.unit()
        };
        // Error rates are compared as shares and shown as percentages.
        let shown = |value: f64| {
            if self.measure == Measure::ErrorRate && self.scope != Scope::Ratio {
                value * 100.0
            } else {
                value
            }
        };
        match value {
            Ok(value) => Verdict {
                gate: self.text.clone(),
                subject: subject.to_owned(),
                value: Some(shown(value)),
                unit: unit.to_owned(),
                passed: !self.comparison.holds(value, self.limit),
                note: None,
            },
            Err(why) => Verdict {
                gate: self.text.clone(),
                subject: subject.to_owned(),
                value: None,
                unit: unit.to_owned(),
                passed: false,
                note: Some(why),
            },
        }
    }
}

impl FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Gate, String> {
        Gate::parse(text)
    }
}

impl Measure {
    fn parse(name: &str) -> Option<Measure> {
        Some(match name {
            "p50" => Measure::P50,
            "p95" => Measure::P95,
            "p99" => Measure::P99,
            "max" => Measure::Max,
            "error_rate" => Measure::ErrorRate,
            "throughput" => Measure::Throughput,
            _ => return None,
        })
    }

    fn unit(self) -> &'static str {
        match self {
            Measure::P50 | Measure::P95 | Measure::P99 | Measure::Max => "ms",
            Measure::ErrorRate => "%",
            Measure::Throughput => "req/s",
        }
    }

    fn latency_ms(self, latency: &Percentiles) -> f64 {
        let us = match self {
            Measure::P50 => latency.p50_us,
            Measure::P95 => latency.p95_us,
            Measure::P99 => latency.p99_us,
            _ => latency.max_us,
        };
        us as f64 / 1000.0
    }

    /// The measure on one run, in its canonical unit.
    fn of(self, run: &Measured) -> Result<f64, String> {
        match self {
            Measure::ErrorRate if run.requests == 0 => Err("no request was sent".into()),
            Measure::ErrorRate => {
                Ok((run.requests - run.successes.min(run.requests)) as f64 / run.requests as f64)
            }
            // Successes only: failed requests are no throughput.
            Measure::Throughput => Ok(run.successes as f64 / run.wall_s.max(0.001)),
            _ => run
                .latency_of_successes
                .as_ref()
                .map(|latency| self.latency_ms(latency))
                .ok_or_else(|| "no request succeeded".to_owned()),
        }
    }
}

impl Comparison {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Above => value > limit,
            Comparison::AtLeast => value >= limit,
            Comparison::Below => value < limit,
            Comparison::AtMost => value <= limit,
        }
    }
}

/// The limit in the measure's canonical unit, or an error naming the bad part.
fn limit(text: &str, scope: Scope, measure: Measure, value: &str) -> Result<f64, String> {
    let number = |digits: &str| -> Result<f64, String> {
        digits
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite() && *number >= 0.0)
            .ok_or_else(|| format!("{text:?}: {value:?} is not a number >= 0"))
    };
    if value.is_empty() {
        return Err(format!("{text:?} has no value after its comparison"));
    }
    if scope == Scope::Ratio {
        return number(value.strip_suffix(['x', '×']).unwrap_or(value));
    }
    match measure {
        Measure::ErrorRate => match value.strip_suffix('%') {
            Some(percent) => Ok(number(percent)? / 100.0),
            None => {
                let share = number(value)?;
                if share > 1.0 {
                    Err(format!(
                        "{text:?}: an error rate is a share from 0 to 1 or a percentage \
                         ({value}%?)"
                    ))
                } else {
                    Ok(share)
                }
            }
        },
        Measure::Throughput => number(value.strip_suffix("/s").unwrap_or(value)),
        _ => {
            // `ms` is tried before `s`, which it ends with.
            for (unit, per_ms) in [("us", 0.001), ("µs", 0.001), ("ms", 1.0), ("s", 1000.0)] {
                if let Some(digits) = value.strip_suffix(unit) {
                    return Ok(number(digits)? * per_ms);
                }
            }
            Err(format!(
                "{text:?}: the latency {value:?} needs a unit: us, ms or s (e.g. 200ms)"
            ))
        }
    }
}

/// A measure of one build in a `compare`: its throughput experiment's highest load level
/// (the most users), the median over that level's repeats. That level is where the builds
/// differ most and where the report's key figures are read.
fn measure_of_build(results: &Results, build: Build, measure: Measure) -> Result<f64, String> {
    let levels: Vec<_> = results
        .experiments
        .iter()
        .filter(|outcome| outcome.build == build)
        .filter_map(|outcome| match &outcome.findings {
            Findings::Throughput { levels, .. } => Some(levels),
            _ => None,
        })
        .flatten()
        .collect();
    let Some(top) = levels.iter().map(|level| level.users).max() else {
        return Err(format!(
            "no throughput level was run on the {build} build (--experiments throughput)"
        ));
    };
    let mut values = Vec::new();
    for level in levels.iter().filter(|level| level.users == top) {
        let successes = level.requests.saturating_sub(level.errors);
        let wall_s = if level.requests_per_s > 0.0 {
            level.requests as f64 / level.requests_per_s
        } else {
            0.0
        };
        let run = Measured {
            requests: level.requests,
            successes,
            wall_s,
            latency_of_successes: (successes > 0).then_some(level.raw),
        };
        values.push(measure.of(&run)?);
    }
    values.sort_by(f64::total_cmp);
    Ok(median(&values))
}

fn median(sorted: &[f64]) -> f64 {
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn show(value: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{value:.2} %"),
        "×" => format!("{value:.2}×"),
        "req/s" => format!("{value:.1} req/s"),
        _ => format!("{value:.2} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(requests: usize, successes: usize, p99_ms: u64) -> Measured {
        Measured {
            requests,
            successes,
            wall_s: 10.0,
            latency_of_successes: (successes > 0).then_some(Percentiles {
                p50_us: p99_ms * 500,
                p95_us: p99_ms * 900,
                p99_us: p99_ms * 1000,
                max_us: p99_ms * 2000,
            }),
        }
    }

    #[test]
    fn gates_parse_into_scope_measure_comparison_and_a_limit_in_canonical_units() {
        let cases = [
            (
                "p99>200ms",
                Scope::Each,
                Measure::P99,
                Comparison::Above,
                200.0,
            ),
            (
                "p50>=20ms",
                Scope::Each,
                Measure::P50,
                Comparison::AtLeast,
                20.0,
            ),
            (
                "p95<=1.5s",
                Scope::Each,
                Measure::P95,
                Comparison::AtMost,
                1500.0,
            ),
            (
                "max>500us",
                Scope::Each,
                Measure::Max,
                Comparison::Above,
                0.5,
            ),
            (
                "error_rate>1%",
                Scope::Each,
                Measure::ErrorRate,
                Comparison::Above,
                0.01,
            ),
            (
                "error_rate > 0.05",
                Scope::Each,
                Measure::ErrorRate,
                Comparison::Above,
                0.05,
            ),
            (
                "throughput<500",
                Scope::Each,
                Measure::Throughput,
                Comparison::Below,
                500.0,
            ),
            (
                "throughput<500/s",
                Scope::Each,
                Measure::Throughput,
                Comparison::Below,
                500.0,
            ),
            (
                "micro.p99>150ms",
                Scope::Build(Build::Micro),
                Measure::P99,
                Comparison::Above,
                150.0,
            ),
            (
                "ratio.p99>3",
                Scope::Ratio,
                Measure::P99,
                Comparison::Above,
                3.0,
            ),
            (
                "ratio.throughput<0.5x",
                Scope::Ratio,
                Measure::Throughput,
                Comparison::Below,
                0.5,
            ),
        ];
        for (text, scope, measure, comparison, limit) in cases {
            let gate = Gate::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(
                (gate.scope, gate.measure, gate.comparison),
                (scope, measure, comparison),
                "{text}"
            );
            assert!((gate.limit - limit).abs() < 1e-9, "{text}: {}", gate.limit);
        }
    }

    #[test]
    fn a_bad_gate_is_refused_naming_the_part_that_is_wrong() {
        let cases = [
            ("p99 200ms", "no comparison"),
            ("p98>200ms", "\"p98\" is not a measure"),
            ("p99>200", "needs a unit"),
            ("p99>fastms", "\"fastms\" is not a number"),
            ("p99>fast", "needs a unit"),
            ("p99>", "no value"),
            ("staging.p99>1ms", "\"staging\" is not a build"),
            ("error_rate>5", "a share from 0 to 1"),
            ("p99>-1ms", "is not a number >= 0"),
        ];
        for (text, expected) in cases {
            let error = Gate::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(
                error.contains(text),
                "{text}: the error does not quote it: {error}"
            );
        }
        let error = Gate::parse_single_run("ratio.p99>3").expect_err("a ratio on load");
        assert!(error.contains("both builds"), "{error}");
        assert!(Gate::parse_single_run("p99>3ms").is_ok());
    }

    #[test]
    fn a_gate_fails_exactly_when_its_comparison_holds() {
        let measured = run(1000, 990, 250);
        let verdict = |text: &str| Gate::parse(text).unwrap().evaluate_run(&measured);
        assert!(!verdict("p99>200ms").passed);
        assert!(verdict("p99>250ms").passed, "250 is not above 250");
        assert!(!verdict("p99>=250ms").passed);
        assert!(verdict("p99<250ms").passed);
        assert!(!verdict("error_rate>0.5%").passed, "1 % failed");
        assert!(verdict("error_rate>1%").passed);
        // 990 successes in 10 s.
        assert!(!verdict("throughput<100").passed);
        assert!(verdict("throughput<99").passed);
        let shown = verdict("error_rate>0.5%");
        assert_eq!(shown.value, Some(1.0), "shown as a percentage");
        assert_eq!(
            shown.to_string(),
            "FAIL error_rate>0.5%: run = 1.00 %",
            "{shown:?}"
        );
    }

    #[test]
    fn failed_requests_are_neither_throughput_nor_latency() {
        let dead = run(169_843, 0, 0);
        let throughput = Gate::parse("throughput<1").unwrap().evaluate_run(&dead);
        assert_eq!(throughput.value, Some(0.0));
        assert!(!throughput.passed);
        // A latency gate on a run where nothing succeeded cannot pass, whatever its limit.
        let latency = Gate::parse("p99>1h").err();
        assert!(latency.is_some(), "h is not a unit");
        let latency = Gate::parse("p99>3600s").unwrap().evaluate_run(&dead);
        assert!(!latency.passed);
        assert_eq!(latency.value, None);
        assert_eq!(latency.note.as_deref(), Some("no request succeeded"));
    }
}
