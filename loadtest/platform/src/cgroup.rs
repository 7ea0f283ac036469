//! A CPU limit on one running process, through cgroup v1's CFS quota — what `docker run
//! --cpus` does, without Docker: the lab's `cpu_limit` fault.
//!
//! The limit is a cgroup of its own under the cpu hierarchy (`/sys/fs/cgroup/cpu/
//! shoplab-<pid>/`) with `cpu.cfs_quota_us` / `cpu.cfs_period_us` set to the share of one
//! core asked for; the process is moved in by writing its PID to `cgroup.procs`, which takes
//! every thread it has (and the ones it starts later). Lifting it sets the quota back to
//! unlimited, moves the process back to the cgroup it came from and removes the cgroup.
//!
//! The same mechanism, with the memory controller beside it, holds the shop's processes
//! to the per-process limits a run asks for ([`ProcessLimits`], [`confine`]): each process
//! gets a group `shoplab-limits-<pid>` in the cpu and/or memory hierarchy for its lifetime.
//!
//! These machines have cgroup v1 only (no `cpu.max`, no `systemd-run`). Where the cpu
//! hierarchy is missing or not writable (not root, a read-only mount), [`limit_cpu`] says
//! why, and the lab records the cell as unavailable rather than as a fault that did nothing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
pub use loadtest_results::resources::ProcessLimits;

/// Where the cgroup v1 cpu controller is mounted on these machines.
pub const CPU_HIERARCHY: &str = "/sys/fs/cgroup/cpu";
/// Where the cgroup v1 memory controller is mounted.
pub const MEMORY_HIERARCHY: &str = "/sys/fs/cgroup/memory";

/// Whether this machine can enforce `limits`; the reason when it cannot.
pub fn check_available(limits: &ProcessLimits) -> anyhow::Result<()> {
    let needs = [
        (
            limits.cpu_cores.is_some(),
            CPU_HIERARCHY,
            "cpu.cfs_quota_us",
        ),
        (
            limits.memory_mib.is_some(),
            MEMORY_HIERARCHY,
            "memory.limit_in_bytes",
        ),
    ];
    for (needed, hierarchy, file) in needs {
        if !needed {
            continue;
        }
        anyhow::ensure!(
            Path::new(hierarchy).join(file).exists(),
            "no cgroup v1 controller with {file} at {hierarchy}"
        );
        let probe = Path::new(hierarchy).join(format!("shoplab-probe-{}", std::process::id()));
        std::fs::create_dir_all(&probe)
            .with_context(|| format!("cannot create a cgroup in {hierarchy}"))?;
        let _ = std::fs::remove_dir(&probe);
    }
    Ok(())
}

/// A process held to [`ProcessLimits`]; dropping it removes its groups (once the process
/// has exited; a group with a live process in it stays, and goes with the next reboot).
#[derive(Debug)]
pub struct Confinement {
    groups: Vec<PathBuf>,
}

/// Moves process `pid` into groups of its own that enforce `limits`.
pub fn confine(pid: u32, limits: &ProcessLimits) -> anyhow::Result<Confinement> {
    let mut confinement = Confinement { groups: Vec::new() };
    let name = format!("shoplab-limits-{pid}");
    if let Some(cores) = limits.cpu_cores {
        let group = Path::new(CPU_HIERARCHY).join(&name);
        confinement.groups.push(group.clone());
        std::fs::create_dir_all(&group)
            .with_context(|| format!("cannot create the cgroup {}", group.display()))?;
        write(&group.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        write(
            &group.join("cpu.cfs_quota_us"),
            &quota_us(cores).to_string(),
        )?;
        write(&group.join("cgroup.procs"), &pid.to_string())?;
    }
    if let Some(mib) = limits.memory_mib {
        let group = Path::new(MEMORY_HIERARCHY).join(&name);
        confinement.groups.push(group.clone());
        std::fs::create_dir_all(&group)
            .with_context(|| format!("cannot create the cgroup {}", group.display()))?;
        write(
            &group.join("memory.limit_in_bytes"),
            &(mib * 1024 * 1024).to_string(),
        )?;
        write(&group.join("cgroup.procs"), &pid.to_string())?;
    }
    Ok(confinement)
}

impl Drop for Confinement {
    fn drop(&mut self) {
        for group in &self.groups {
            let _ = std::fs::remove_dir(group);
        }
    }
}

fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(1_000)
}

/// The CFS period the quota is a share of (the kernel's default, 100 ms).
const PERIOD_US: u64 = 100_000;

/// A CPU limit in force on one process; lift it with [`CpuLimit::lift`] (dropping it lifts
/// it too, as well as it can, so a failed test leaves no cgroup behind).
#[derive(Debug)]
pub struct CpuLimit {
    pid: u32,
    group: PathBuf,
    /// The cgroup the process was in before, to move it back to.
    home: PathBuf,
    quota_us: u64,
    lifted: bool,
}

/// Limits process `pid` (every thread) to `cores` of CPU time (0.2 = a fifth of one core).
/// Fails with the reason when this machine cannot do it.
pub fn limit_cpu(pid: u32, cores: f64) -> anyhow::Result<CpuLimit> {
    let hierarchy = Path::new(CPU_HIERARCHY);
    anyhow::ensure!(
        hierarchy.join("cpu.cfs_quota_us").exists(),
        "no cgroup v1 cpu controller at {CPU_HIERARCHY} (cgroup v2 only, or not mounted)"
    );
    let home = hierarchy.join(group_of(pid, "cpu")?.trim_start_matches('/'));
    let group = hierarchy.join(format!("shoplab-{pid}"));
    std::fs::create_dir_all(&group)
        .with_context(|| format!("cannot create the cgroup {}", group.display()))?;
    let quota_us = quota_us(cores);
    let mut limit = CpuLimit {
        pid,
        group,
        home,
        quota_us,
        lifted: false,
    };
    // Quota first, so the process is limited from the moment it is moved in.
    write(
        &limit.group.join("cpu.cfs_period_us"),
        &PERIOD_US.to_string(),
    )?;
    write(&limit.group.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
    if let Err(error) = write(&limit.group.join("cgroup.procs"), &pid.to_string()) {
        limit.lifted = true;
        let _ = std::fs::remove_dir(&limit.group);
        return Err(error);
    }
    Ok(limit)
}

impl CpuLimit {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The cgroup the process is held in.
    pub fn group(&self) -> &Path {
        &self.group
    }

    /// How many CFS periods have passed since the limit was set, and in how many of them
    /// the process was throttled (it had used its quota): from the cgroup's `cpu.stat`.
    pub fn throttling(&self) -> anyhow::Result<(u64, u64)> {
        let path = self.group.join("cpu.stat");
        let stat =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let field = |name: &str| {
            stat.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((field("nr_periods "), field("nr_throttled ")))
    }

    /// What was in force, for the results: `pid 123: cpu.cfs_quota_us=20000 per
    /// cpu.cfs_period_us=100000 (0.20 cores) in /sys/fs/cgroup/cpu/shoplab-123`.
    pub fn describe(&self) -> String {
        format!(
            "pid {}: cpu.cfs_quota_us={} per cpu.cfs_period_us={PERIOD_US} ({:.2} cores) in {}",
            self.pid,
            self.quota_us,
            self.quota_us as f64 / PERIOD_US as f64,
            self.group.display()
        )
    }

    /// Removes the quota, moves the process back where it was and removes the cgroup. A
    /// process that exited meanwhile (killed, restarted) is simply no longer in it.
    pub fn lift(mut self) -> anyhow::Result<()> {
        self.lifted = true;
        lift(self.pid, &self.group, &self.home)
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        if !self.lifted {
            let _ = lift(self.pid, &self.group, &self.home);
        }
    }
}

fn lift(pid: u32, group: &Path, home: &Path) -> anyhow::Result<()> {
    write(&group.join("cpu.cfs_quota_us"), "-1")?;
    if Path::new(&format!("/proc/{pid}")).exists() {
        write(&home.join("cgroup.procs"), &pid.to_string())?;
    }
    std::fs::remove_dir(group).with_context(|| format!("remove the cgroup {}", group.display()))
}

/// The process's cgroup under `controller`'s hierarchy (`cpu`, `memory`), from
/// `/proc/<pid>/cgroup` (`1:cpu:/some/path`, or `4:cpu,cpuacct:/` where two are mounted
/// together).
pub fn group_of(pid: u32, controller: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/cgroup");
    let table = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    table
        .lines()
        .find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, group) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|name| name == controller)
                .then(|| group.to_owned())
        })
        .with_context(|| format!("{path} names no {controller} cgroup"))
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value)
        .with_context(|| format!("cannot write {value} to {}", path.display()))
}

/// The mount of a cgroup v1 controller; cpuacct shares one with cpu on Debian
/// (`cpu,cpuacct`).
fn root(controller: &str) -> PathBuf {
    let joined = PathBuf::from("/sys/fs/cgroup/cpu,cpuacct");
    if controller == "cpuacct" && joined.is_dir() {
        return joined;
    }
    PathBuf::from("/sys/fs/cgroup").join(controller)
}

/// The first process of a group under the memory controller (`/docker/<id>`: a container's
/// init), by its PID on this machine; `None` when the group has none or is gone.
pub(crate) fn first_process(group: &str) -> Option<u32> {
    let procs = root("memory")
        .join(group.trim_start_matches('/'))
        .join("cgroup.procs");
    std::fs::read_to_string(procs)
        .ok()?
        .lines()
        .find_map(|line| line.trim().parse().ok())
}

/// What to read a container by: its groups (as `/proc/<pid>/cgroup` names them, or
/// `/docker/<id>` as an engine makes them) under the cpuacct and memory controllers, where
/// the engine keeps the accounting `docker stats` reads.
pub(crate) fn container_probe(cpuacct: &str, memory: &str) -> crate::Probe {
    crate::Probe::Cgroup {
        cpuacct: root("cpuacct").join(cpuacct.trim_start_matches('/')),
        memory: root("memory").join(memory.trim_start_matches('/')),
    }
}
