//! Capacity at an SLO, from open-loop load: the offered arrival rate is raised step by step
//! until the shop misses the SLO, and the highest rate it sustained is the build's capacity.
//!
//! Every figure here is of successful requests: a failure is counted (errors), never timed
//! as a fast answer. Latency is measured from the moment a journey was due to start, so a
//! shop that falls behind cannot hide it by slowing the generator down (no coordinated
//! omission).

use std::time::Duration;

use crate::stats::Estimate;
use serde::{Deserialize, Serialize};

/// How arrivals are spaced at a given rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Independent arrivals (exponential gaps): the bursts real traffic has.
    Poisson,
    /// Evenly spaced: the same offered rate without bursts.
    Uniform,
}

impl Arrivals {
    pub fn as_str(self) -> &'static str {
        match self {
            Arrivals::Poisson => "poisson",
            Arrivals::Uniform => "uniform",
        }
    }
}

/// What the shop must meet at a step for the step's rate to count as sustained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slo {
    /// The 99th percentile of successful requests, from due time, at most this.
    pub p99_ms: f64,
    /// Failed requests / requests at most this.
    pub max_error_rate: f64,
    /// Arrivals dropped (the in-flight cap was reached) / arrivals due at most this.
    pub max_drop_rate: f64,
}

impl Default for Slo {
    fn default() -> Slo {
        Slo {
            p99_ms: 100.0,
            max_error_rate: 0.01,
            max_drop_rate: 0.01,
        }
    }
}

/// The step plan of the capacity search: a geometric ramp of constant-rate steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CapacityPlan {
    /// The first step's arrival rate, in journeys per second.
    pub start_per_s: f64,
    /// Each next step offers this many times the last one's rate.
    pub factor: f64,
    /// At most this many steps per ramp (the ramp stops at the first step that misses).
    pub max_steps: usize,
    #[serde(with = "crate::profile::millis")]
    pub step_duration: Duration,
    pub arrivals: Arrivals,
    /// Journeys in flight at most; an arrival beyond it is dropped and counted.
    pub max_in_flight: usize,
    pub slo: Slo,
    /// After the first step that misses, this many more steps halve the gap (on a log
    /// scale) between the highest rate that met the SLO and the lowest that missed it: each
    /// halves the capacity's uncertainty from one step's `factor` to its square root, for
    /// one step's time. 0 in files from before.
    #[serde(default)]
    pub refine_steps: usize,
}

impl CapacityPlan {
    /// The offered rate of step `index` (0-based).
    pub fn rate(&self, index: usize) -> f64 {
        self.start_per_s * self.factor.powi(index as i32)
    }

    /// The rate a refining step offers between `met` and `missed`: their geometric mean,
    /// since the ramp's steps are geometric too.
    pub fn between(met: f64, missed: f64) -> f64 {
        (met * missed).sqrt()
    }
}

/// One build's capacity: a ramp per repeat and the sustained rate over them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Capacity {
    pub plan: CapacityPlan,
    pub ramps: Vec<Ramp>,
    /// The sustained rate over the repeats (journeys per second) with its interval.
    pub sustained: Option<Estimate>,
    /// The successful requests per second at the sustained step, over the repeats.
    pub sustained_requests_per_s: Option<Estimate>,
}

/// One ramp of the capacity search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ramp {
    pub repeat: usize,
    pub steps: Vec<CapacityStep>,
    /// The highest offered rate whose step met the SLO; `None` if the first step missed.
    pub sustained_per_s: Option<f64>,
    /// Why the ramp stopped: the SLO clause the first failing step broke, or that it ran
    /// out of steps (then the capacity is at least `sustained_per_s`).
    pub stopped: String,
    /// Seeded users logged in before the first step, outside every step's figures; `None`
    /// in results from before the lab did so, when users logged in at their first buy
    /// arrival, inside whichever step that fell in.
    #[serde(default)]
    pub logged_in_first: Option<LoggedIn>,
}

/// The logins before a ramp: how many were tried and how many succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    pub users: usize,
    pub succeeded: usize,
}

impl Capacity {
    /// Whether a ramp met the SLO at its last step: then the capacity is only a lower bound,
    /// and a figure or ratio built on it must say so.
    pub fn is_lower_bound(&self) -> bool {
        self.ramps.iter().any(Ramp::ran_out_of_steps)
    }
}

impl Ramp {
    /// The successful requests per second at the highest step that met the SLO.
    pub fn sustained_ok_per_s(&self) -> Option<f64> {
        let rate = self.sustained_per_s?;
        self.steps
            .iter()
            .find(|step| step.offered_per_s == rate)
            .map(|step| step.ok_per_s)
    }

    /// The ramp stops at its first miss (then refines below it), so a ramp without a
    /// missed step ran out of steps: its capacity is only a floor.
    pub fn ran_out_of_steps(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|step| step.met)
    }
}

/// One constant-rate step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Journeys per second offered.
    pub offered_per_s: f64,
    /// Journeys due in the step (the schedule's count).
    pub due: usize,
    /// Journeys started; `due - started` were dropped.
    pub started: usize,
    pub dropped: usize,
    pub requests: usize,
    pub errors: usize,
    /// Successful requests per second over the step.
    pub ok_per_s: f64,
    /// Successes only, measured from due time; `None` when nothing succeeded.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub generator_cpu_share: f64,
    pub generator_limited: bool,
    /// The step met every clause of the SLO.
    pub met: bool,
    /// The clauses it missed, in words (empty when met).
    pub missed: Vec<String>,
}

impl CapacityStep {
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.requests.max(1) as f64
    }

    pub fn drop_rate(&self) -> f64 {
        self.dropped as f64 / self.due.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(offered_per_s: f64, met: bool) -> CapacityStep {
        CapacityStep {
            offered_per_s,
            due: 10,
            started: 10,
            dropped: 0,
            requests: 30,
            errors: 0,
            ok_per_s: offered_per_s * 3.0,
            p50_us: Some(1_000),
            p99_us: Some(if met { 10_000 } else { 500_000 }),
            generator_cpu_share: 0.1,
            generator_limited: false,
            met,
            missed: Vec::new(),
        }
    }

    fn ramp(steps: Vec<CapacityStep>) -> Ramp {
        Ramp {
            repeat: 1,
            sustained_per_s: None,
            stopped: String::new(),
            logged_in_first: None,
            steps,
        }
    }

    #[test]
    fn a_refining_step_between_the_last_met_and_the_first_missed_is_their_geometric_mean() {
        assert!((CapacityPlan::between(20.0, 80.0) - 40.0).abs() < 1e-9);
        assert!((CapacityPlan::between(680.0, 1224.0) - 912.3).abs() < 0.1);
    }

    #[test]
    fn a_ramp_is_a_floor_only_when_no_step_missed_even_if_its_last_refining_step_met() {
        let refined = ramp(vec![
            step(20.0, true),
            step(36.0, true),
            step(65.0, false),
            step(48.4, true),
            step(56.1, true),
        ]);
        assert!(!refined.ran_out_of_steps());
        assert!(ramp(vec![step(20.0, true), step(36.0, true)]).ran_out_of_steps());
        assert!(!ramp(vec![step(20.0, false)]).ran_out_of_steps());
        assert!(!ramp(Vec::new()).ran_out_of_steps());
    }
}
