//! Keeping the load generator and the system under test off each other's cores: the lab
//! pins its own threads to the last core and tells every child (through
//! [`PIN_CPUS`]) to pin its threads to the others. Each side pins every thread it has by
//! thread id (`/proc/<pid>/task`), since an affinity set with `sched_setaffinity` belongs to
//! one thread and only threads created afterwards inherit it.

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Environment variable naming the CPUs a child pins itself to (`0,1`).
pub const PIN_CPUS: &str = "SHOPLAB_PIN_CPUS";

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

    /// Pins this process (the generator) and returns the environment for the children.
    pub fn apply(&self) -> anyhow::Result<Vec<(String, String)>> {
        if self.generator_cpus.is_empty() {
            return Ok(Vec::new());
        }
        pin_self(&self.generator_cpus)?;
        let list: Vec<String> = self.sut_cpus.iter().map(ToString::to_string).collect();
        Ok(vec![(PIN_CPUS.to_owned(), list.join(","))])
    }
}

/// Pins every thread of this process to `cpus`.
pub fn pin_self(cpus: &[usize]) -> anyhow::Result<()> {
    let mut set = CpuSet::new();
    for cpu in cpus {
        set.set(*cpu)?;
    }
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Some(tid) = entry?
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A thread may have ended since the listing; that is fine.
        let _ = sched_setaffinity(Pid::from_raw(tid), &set);
    }
    Ok(())
}

/// In a child: pins itself when the lab asked for it.
pub fn pin_from_env() -> anyhow::Result<()> {
    let Ok(list) = std::env::var(PIN_CPUS) else {
        return Ok(());
    };
    let cpus: Vec<usize> = list
        .split(',')
        .filter_map(|cpu| cpu.trim().parse().ok())
        .collect();
    if cpus.is_empty() {
        return Ok(());
    }
    pin_self(&cpus)
}
