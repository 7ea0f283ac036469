//! The cores and the per-process limits a run gave each side, as recorded in `results.json`.
//! Applying them (pinning threads, writing cgroups) is the local platform's job.

use serde::{Deserialize, Serialize};

/// What one process of the system under test (replicas of a component summed) used during a
/// load level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// The component: `monolith`, `gateway`, `catalog`, ...
    pub process: String,
    pub cpu_s: f64,
    /// Resident memory at the level's end (MiB).
    pub rss_mib: f64,
}

/// Which cores each side got, as recorded in the results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pinning {
    pub cores: usize,
    /// Empty when the machine has one core and nothing was pinned.
    pub generator_cpus: Vec<usize>,
    pub sut_cpus: Vec<usize>,
}

impl Pinning {
    /// The generator on the last core, the system under test on the rest (both builds get
    /// the same cores); nothing pinned on a one-core machine.
    pub fn plan() -> Pinning {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return Pinning {
                cores,
                generator_cpus: Vec::new(),
                sut_cpus: Vec::new(),
            };
        }
        Pinning {
            cores,
            generator_cpus: vec![cores - 1],
            sut_cpus: (0..cores - 1).collect(),
        }
    }

    /// The cores the generator may use (all of them when nothing is pinned).
    pub fn generator_cores(&self) -> usize {
        if self.generator_cpus.is_empty() {
            self.cores
        } else {
            self.generator_cpus.len()
        }
    }

    /// The cores the system under test may use (all of them when nothing is pinned).
    pub fn sut_cores(&self) -> usize {
        if self.sut_cpus.is_empty() {
            self.cores
        } else {
            self.sut_cpus.len()
        }
    }
}

/// Per-process resource limits of the shop's processes (the monolith, each service, the
/// gateway; not the lab's own front door and proxies), as a run's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessLimits {
    /// CFS quota in cores (0.5 = half of one core); `None`: no quota, the process may use
    /// every core the system under test is pinned to.
    pub cpu_cores: Option<f64>,
    /// `memory.limit_in_bytes` in MiB; past it the kernel's OOM killer ends the process
    /// (and the lab's self-healing restarts it). `None`: no limit.
    pub memory_mib: Option<u64>,
}

impl ProcessLimits {
    pub fn is_none(&self) -> bool {
        self.cpu_cores.is_none() && self.memory_mib.is_none()
    }

    /// `cpu 0.50 cores, memory 256 MiB per process`, or `none`.
    pub fn describe(&self) -> String {
        if self.is_none() {
            return "no per-process CPU or memory limit".into();
        }
        let cpu = self.cpu_cores.map_or("no CPU quota".into(), |cores| {
            format!("CPU {cores:.2} cores")
        });
        let memory = self
            .memory_mib
            .map_or("no memory limit".into(), |mib| format!("memory {mib} MiB"));
        format!("{cpu}, {memory} per process (cgroups)")
    }
}
