//! Keeping the load generator and the system under test off each other's cores: the lab
//! pins its own threads to the last core and tells every child (through
//! [`PIN_CPUS`]) to pin its threads to the others. Each side pins every thread it has by
//! thread id (`/proc/<pid>/task`), since an affinity set with `sched_setaffinity` belongs to
//! one thread and only threads created afterwards inherit it.

pub use loadtest_results::resources::Pinning;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

/// Environment variable naming the CPUs a child pins itself to (`0,1`).
pub const PIN_CPUS: &str = "SHOPLAB_PIN_CPUS";

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

/// In a child: pins itself when the lab asked for it. `shoplab`'s `main` calls it before it
/// builds its runtime, so the runtime's workers are as many as the cores pinned to.
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

/// Pins this process (the generator) to its cores and returns the environment that pins the
/// children to theirs.
pub fn apply(pinning: &Pinning) -> anyhow::Result<Vec<(String, String)>> {
    if pinning.generator_cpus.is_empty() {
        return Ok(Vec::new());
    }
    pin_self(&pinning.generator_cpus)?;
    let list: Vec<String> = pinning.sut_cpus.iter().map(ToString::to_string).collect();
    Ok(vec![(PIN_CPUS.to_owned(), list.join(","))])
}
