//! How much of each experiment a run does: `quick` (CI, workshops: about two minutes on a
//! 2-core machine) or `full`. Every field is recorded in `results.json`.

use std::time::Duration;

use domain::Context;
use serde::{Deserialize, Serialize};

use crate::experiments::capacity::{Arrivals, CapacityPlan, Slo};

/// A fault the faults experiment injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// `kill -9` the process that runs the context; the lab restarts it (self-healing).
    Kill,
    /// SIGSTOP the process that runs the context; SIGCONT to heal.
    Pause,
    /// Every call into the context waits this long (in-process, admin API).
    Latency,
    /// A share of calls into the context fail with `unavailable` (in-process, admin API).
    Errors,
    /// The next call into the context aborts its process; the lab restarts it.
    Abort,
    /// Busy threads in the process that runs the context.
    CpuHog,
    /// Memory allocated at a steady rate in the process that runs the context.
    Leak,
    /// Every answer from the context's service is held back (a fault proxy between its
    /// callers and it; microservices only).
    NetLatency,
    /// Every connection to the context's service is closed before it answers (fault proxy).
    NetReset,
    /// Connections to the context's service are accepted and nothing answers: a blackhole
    /// (fault proxy).
    NetCut,
    /// The database holding the context's data drops every connection (a fault proxy in
    /// front of PostgreSQL; the monolith's one database).
    DbDown,
    /// The process that runs the context gets a fifth of one core (cgroup v1 CFS quota).
    CpuLimit,
}

impl FaultKind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Latency,
        FaultKind::Errors,
        FaultKind::Abort,
        FaultKind::CpuHog,
        FaultKind::Leak,
        FaultKind::NetLatency,
        FaultKind::NetReset,
        FaultKind::NetCut,
        FaultKind::DbDown,
        FaultKind::CpuLimit,
    ];

    /// The kind's name: its spelling in the fault catalogue (`domain::faults`), where its
    /// parameters and their defaults are specified.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Latency => "latency",
            FaultKind::Errors => "errors",
            FaultKind::Abort => "abort",
            FaultKind::CpuHog => "cpu_hog",
            FaultKind::Leak => "leak",
            FaultKind::NetLatency => "net_latency",
            FaultKind::NetReset => "net_reset",
            FaultKind::NetCut => "net_cut",
            FaultKind::DbDown => "db_down",
            FaultKind::CpuLimit => "cpu_limit",
        }
    }
}

/// A tenth of one core per process, for the scale experiment. On the lab's 2-core machines
/// the shop is pinned to one core (the generator has the other), and without quotas every
/// process shares it: one more replica then adds contention, not CPU (×0.92–0.96 measured).
/// Under a quota the busiest process is held at its quota while the core still has room,
/// so it is the bottleneck and one more replica of it, under the same quota, adds CPU
/// that was there to use. 0.1 keeps the quotas of the microservices' eight processes and
/// the added one (0.9 cores) under the one core, so the quota, not the core, is what limits
/// each process, with the monolith under the same per-process rule. At a quota of 0.1 a
/// busy process runs 10 ms of every 100 ms CFS period, so latencies carry up to 90 ms of
/// throttling: the experiment reads throughput, not latency.
pub const SCALE_QUOTA_CORES: f64 = 0.1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    /// Goose users per throughput level.
    pub levels: Vec<usize>,
    #[serde(with = "millis")]
    pub level_duration: Duration,
    /// Repeats of each throughput level (medians are over these).
    pub repeats: usize,
    /// Each half (one replica, two replicas) of the scale experiment.
    #[serde(with = "millis")]
    pub scale_duration: Duration,
    /// The CPU quota (cores) the scale experiment holds each shop process to, the added one
    /// too; `None`: none, the processes share the shop's cores (and what results from
    /// before the quota read as).
    #[serde(default)]
    pub scale_quota_cores: Option<f64>,
    /// Goose users of the steady load under which deploys and faults happen.
    pub steady_users: usize,
    /// Rolling/recreate deploys in a row for the deploy storm.
    pub storm: usize,
    pub faults: Vec<(FaultKind, Context)>,
    #[serde(with = "millis")]
    pub fault_before: Duration,
    #[serde(with = "millis")]
    pub fault_during: Duration,
    #[serde(with = "millis")]
    pub fault_after: Duration,
    /// How long the generator drives the null endpoint (see `calibration`).
    #[serde(with = "millis")]
    pub calibration: Duration,
    /// The capacity search's open-loop ramp (see `experiments::capacity`); `None` runs the
    /// closed-loop levels alone (and is what results from before the search read as).
    #[serde(default)]
    pub capacity: Option<CapacityPlan>,
}

impl Profile {
    pub fn quick() -> Profile {
        Profile {
            name: "quick".into(),
            levels: vec![4, 16],
            level_duration: Duration::from_secs(5),
            repeats: 1,
            scale_duration: Duration::from_secs(3),
            scale_quota_cores: Some(SCALE_QUOTA_CORES),
            steady_users: 8,
            storm: 10,
            faults: vec![
                (FaultKind::Kill, Context::Recommendations),
                (FaultKind::Latency, Context::Payments),
                (FaultKind::Errors, Context::Inventory),
            ],
            fault_before: Duration::from_millis(750),
            fault_during: Duration::from_millis(1250),
            fault_after: Duration::from_millis(1250),
            calibration: Duration::from_secs(2),
            // 20, 36, 65, 117, 210, 378, 680, 1224, 2203 journeys/s, 2 s each, stopping at
            // the first miss: coarse, to stay within the quick profile's two minutes. The
            // ninth step is there because the monolith met the eighth on 2 cores in one
            // run (its capacity was then only a floor, which the report says when it happens).
            capacity: Some(CapacityPlan {
                start_per_s: 20.0,
                factor: 1.8,
                max_steps: 9,
                step_duration: Duration::from_secs(2),
                arrivals: Arrivals::Poisson,
                max_in_flight: 256,
                slo: Slo::default(),
            }),
        }
    }

    pub fn full() -> Profile {
        let kinds = [
            FaultKind::Kill,
            FaultKind::Pause,
            FaultKind::Latency,
            FaultKind::Errors,
            FaultKind::Abort,
            FaultKind::CpuHog,
            FaultKind::Leak,
            FaultKind::NetLatency,
            FaultKind::NetReset,
            FaultKind::NetCut,
            FaultKind::DbDown,
            FaultKind::CpuLimit,
        ];
        let targets = [
            Context::Recommendations,
            Context::Payments,
            Context::Inventory,
        ];
        Profile {
            name: "full".into(),
            levels: vec![2, 4, 8, 16, 32],
            level_duration: Duration::from_secs(30),
            repeats: 3,
            scale_duration: Duration::from_secs(30),
            // The same as quick: the quota follows from the machine, not from the length of
            // the run (see SCALE_QUOTA_CORES); longer halves only narrow the figures.
            scale_quota_cores: Some(SCALE_QUOTA_CORES),
            steady_users: 16,
            storm: 100,
            faults: kinds
                .iter()
                .flat_map(|kind| targets.iter().map(move |target| (*kind, *target)))
                .collect(),
            fault_before: Duration::from_secs(3),
            fault_during: Duration::from_secs(5),
            fault_after: Duration::from_secs(5),
            calibration: Duration::from_secs(10),
            // Finer steps and longer ones than quick: 100 × 1.25^k up to about 1.8k
            // journeys/s, 5 s each; at most 14 × 5 s × 3 repeats × 2 builds = 7 minutes.
            capacity: Some(CapacityPlan {
                start_per_s: 100.0,
                factor: 1.25,
                max_steps: 14,
                step_duration: Duration::from_secs(5),
                arrivals: Arrivals::Poisson,
                max_in_flight: 512,
                slo: Slo::default(),
            }),
        }
    }
}

/// Durations as whole milliseconds in the results.
pub(crate) mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let millis: u64 = serde::Deserialize::deserialize(deserializer)?;
        Ok(Duration::from_millis(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::FaultKind;

    #[test]
    fn every_kind_the_lab_injects_is_specified_in_the_fault_catalogue() {
        for kind in FaultKind::ALL {
            assert!(
                domain::faults::spec(kind.as_str()).is_some(),
                "{} is not in domain::faults::catalogue()",
                kind.as_str()
            );
        }
    }
}
