//! CPU seconds and memory of the system under test: by PID from the kernel's process table
//! (the local target's children), or from the cgroup v1 accounting the Docker engine keeps
//! per container (what `docker stats` reads), so a container's every process is counted.

use std::path::PathBuf;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// What to read one process, or one container, by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Pid(u32),
    /// A container's cgroup v1 folders: `cpuacct.usage` (ns) and `memory.usage_in_bytes`.
    Cgroup {
        cpuacct: PathBuf,
        memory: PathBuf,
    },
}

/// Reads [`Probe`]s.
pub struct Meter {
    /// `None` where the kernel's process table cannot be read; PID samples are then zero.
    system: Option<System>,
}

/// What the system under test used over a window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
}

impl Meter {
    pub fn new() -> Meter {
        Meter {
            system: System::new().ok(),
        }
    }

    /// Total CPU seconds and resident memory (MiB) of these processes and containers now.
    pub fn sample(&mut self, probes: &[Probe]) -> (f64, f64) {
        let mut cpu_s = 0.0;
        let mut memory_bytes = 0u64;
        let pids: Vec<Pid> = probes
            .iter()
            .filter_map(|probe| match probe {
                Probe::Pid(pid) => Some(Pid::from_u32(*pid)),
                Probe::Cgroup { .. } => None,
            })
            .collect();
        if let (Some(system), false) = (self.system.as_mut(), pids.is_empty()) {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            for pid in &pids {
                if let Some(process) = system.process(*pid) {
                    cpu_s += process.accumulated_cpu_time() as f64 / 1000.0;
                    memory_bytes += process.memory();
                }
            }
        }
        for probe in probes {
            if let Probe::Cgroup { cpuacct, memory } = probe {
                // A container that is gone (mid-restart) reads as zero, like a PID that is.
                cpu_s += read_number(&cpuacct.join("cpuacct.usage")) as f64 / 1e9;
                memory_bytes += read_number(&memory.join("memory.usage_in_bytes"));
            }
        }
        (cpu_s, memory_bytes as f64 / (1024.0 * 1024.0))
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::new()
    }
}

fn read_number(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}
