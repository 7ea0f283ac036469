//! CPU and memory limits on running processes, through cgroups — what `docker run --cpus`
//! does, without Docker: the lab's `cpu_limit` fault, the per-process limits a run asks for
//! ([`ProcessLimits`], [`confine`]) and the scale experiment's per-process quota
//! ([`Confinement::set_cpu`]).
//!
//! Both interfaces of the kernel are spoken, the one mounted decides ([`Version::detect`]):
//! cgroup v1, which these machines have (a hierarchy per controller: `/sys/fs/cgroup/cpu/`
//! with `cpu.cfs_quota_us` / `cpu.cfs_period_us`, `/sys/fs/cgroup/memory/` with
//! `memory.limit_in_bytes`), and cgroup v2, which current distributions mount alone (one
//! unified hierarchy at `/sys/fs/cgroup`, `cpu.max`, `memory.max`, controllers enabled in the
//! parent's `cgroup.subtree_control`; see [`v2`]). Either way a limit is a group of its own
//! under the hierarchy's root (`shoplab-<pid>` for the fault, `shoplab-limits-<pid>` for a
//! process's lifetime), the quota is written before the process is moved in by writing its
//! PID to `cgroup.procs` (which takes every thread it has, and the ones it starts later),
//! and lifting it puts back "no quota", moves the process home and removes the group.
//!
//! Written by hand rather than with cgroups-rs (kata-containers' crate, maintained, v1 and
//! v2): the lab writes four files per group, the same on both versions but for their names
//! and formats, and describes in its results exactly which file holds what; cgroups-rs 0.5
//! brings a second `nix` (0.25, beside the workspace's) and `zbus`, a D-Bus stack for its
//! systemd driver, to do that, and its builder hides which file a setting lands in.
//!
//! Where no hierarchy is mounted or it is not writable (not root, a read-only mount),
//! [`check_available`] and [`limit_cpu`] say why, and the lab records the cell as
//! unavailable rather than as a fault that did nothing.

mod limit;
mod v2;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
pub use limit::{CpuLimit, limit_cpu};
pub use loadtest_results::resources::ProcessLimits;
pub use v2::UNIFIED;

/// Where the cgroup v1 cpu controller is mounted on these machines.
pub const CPU_HIERARCHY: &str = "/sys/fs/cgroup/cpu";
/// Where the cgroup v1 memory controller is mounted.
pub const MEMORY_HIERARCHY: &str = "/sys/fs/cgroup/memory";

/// The CFS period a quota is a share of (the kernel's default, 100 ms), on both versions.
const PERIOD_US: u64 = 100_000;

/// Which interface of cgroups this machine mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A hierarchy per controller (these machines).
    V1,
    /// The unified hierarchy alone (current distributions).
    V2,
}

impl Version {
    /// v2 where the unified hierarchy's root is mounted at `/sys/fs/cgroup` (it alone has
    /// `cgroup.controllers` there); v1 otherwise. A hybrid mount (v1 controllers with an
    /// empty unified tree beside them for systemd) is v1: the controllers are on v1's side.
    pub fn detect() -> Version {
        if Path::new(UNIFIED).join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        }
    }

    /// `cgroup v1`, `cgroup v2`: how results and errors name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "cgroup v1",
            Version::V2 => "cgroup v2",
        }
    }

    /// The root of the hierarchy that holds `controller` (`cpu`, `memory`).
    fn root(self, controller: &str) -> PathBuf {
        match self {
            Version::V1 => PathBuf::from("/sys/fs/cgroup").join(controller),
            Version::V2 => PathBuf::from(UNIFIED),
        }
    }

    /// The file a CPU quota is written to, and what to write for `cores` (`None`: none).
    fn cpu_quota(self, cores: Option<f64>) -> (&'static str, String) {
        match self {
            Version::V1 => (
                "cpu.cfs_quota_us",
                cores.map_or_else(|| "-1".to_owned(), |cores| quota_us(cores).to_string()),
            ),
            Version::V2 => ("cpu.max", v2::cpu_max(cores.map(quota_us), PERIOD_US)),
        }
    }

    /// Writes a CPU quota of `cores` (`None`: none) into `group`.
    fn write_cpu_quota(self, group: &Path, cores: Option<f64>) -> anyhow::Result<()> {
        if self == Version::V1 {
            write(&group.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        }
        let (file, value) = self.cpu_quota(cores);
        write(&group.join(file), &value)
    }

    /// The quota in force in `group`, in cores; `None` where there is none.
    fn read_cpu_quota(self, group: &Path) -> anyhow::Result<Option<f64>> {
        let read = |file: &str| {
            let path = group.join(file);
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
        };
        match self {
            Version::V1 => {
                let quota: i64 = read("cpu.cfs_quota_us")?.trim().parse()?;
                let period: u64 = read("cpu.cfs_period_us")?.trim().parse()?;
                Ok((quota > 0).then(|| quota as f64 / period.max(1) as f64))
            }
            Version::V2 => {
                let text = read("cpu.max")?;
                let (quota, period) =
                    v2::parse_cpu_max(&text).with_context(|| format!("cpu.max reads {text:?}"))?;
                Ok(quota.map(|quota| quota as f64 / period as f64))
            }
        }
    }

    /// What a quota of `cores` in `group` is, in the files' own words:
    /// `cpu.cfs_quota_us=20000 per cpu.cfs_period_us=100000 (0.20 cores) in /sys/fs/cgroup/cpu/shoplab-123`
    /// or `cpu.max="20000 100000" (0.20 cores) in /sys/fs/cgroup/shoplab-123`.
    fn describe_quota(self, group: &Path, cores: f64) -> String {
        let quota_us = quota_us(cores);
        let written = match self {
            Version::V1 => {
                format!("cpu.cfs_quota_us={quota_us} per cpu.cfs_period_us={PERIOD_US}")
            }
            Version::V2 => format!("cpu.max=\"{}\"", v2::cpu_max(Some(quota_us), PERIOD_US)),
        };
        format!(
            "{written} ({:.2} cores) in {}",
            quota_us as f64 / PERIOD_US as f64,
            group.display()
        )
    }
}

/// Whether this machine can enforce `limits`; the reason when it cannot.
pub fn check_available(limits: &ProcessLimits) -> anyhow::Result<()> {
    let version = Version::detect();
    let needs = [
        (limits.cpu_cores.is_some(), "cpu"),
        (limits.memory_mib.is_some(), "memory"),
    ];
    for (needed, controller) in needs {
        if !needed {
            continue;
        }
        let root = version.root(controller);
        match version {
            Version::V1 => {
                let file = match controller {
                    "cpu" => "cpu.cfs_quota_us",
                    _ => "memory.limit_in_bytes",
                };
                anyhow::ensure!(
                    root.join(file).exists(),
                    "no cgroup v1 controller with {file} at {} (and no cgroup v2 hierarchy at {UNIFIED})",
                    root.display()
                );
            }
            Version::V2 => v2::enable(&root, &[controller])?,
        }
        let probe = root.join(format!("shoplab-probe-{}", std::process::id()));
        std::fs::create_dir_all(&probe).with_context(|| {
            format!(
                "cannot create a {} group in {}",
                version.as_str(),
                root.display()
            )
        })?;
        let _ = std::fs::remove_dir(&probe);
    }
    Ok(())
}

/// A process held to [`ProcessLimits`]; dropping it removes its groups (once the process
/// has exited; a group with a live process in it stays, and goes with the next reboot).
#[derive(Debug)]
pub struct Confinement {
    version: Version,
    pid: u32,
    groups: Vec<PathBuf>,
    /// The group whose CPU quota holds it, once it has one.
    cpu: Option<PathBuf>,
}

/// Moves process `pid` into groups of its own that enforce `limits`.
pub fn confine(pid: u32, limits: &ProcessLimits) -> anyhow::Result<Confinement> {
    let mut confinement = Confinement::none(pid);
    if let Some(mib) = limits.memory_mib {
        confinement.set_memory(mib)?;
    }
    if let Some(cores) = limits.cpu_cores {
        confinement.set_cpu(Some(cores))?;
    }
    Ok(confinement)
}

impl Confinement {
    /// Process `pid` in no group of the lab's yet.
    pub fn none(pid: u32) -> Confinement {
        Confinement {
            version: Version::detect(),
            pid,
            groups: Vec::new(),
            cpu: None,
        }
    }

    /// Holds the process to `cores` of CPU time from now on (`None`: lifts the quota and
    /// leaves the process in its group, which goes when it exits). A process without a
    /// CPU group yet gets one, the quota written before it is moved in. Returns what is in
    /// force, in the files' own words.
    pub fn set_cpu(&mut self, cores: Option<f64>) -> anyhow::Result<String> {
        let group = match self.cpu.clone() {
            Some(group) => group,
            None if cores.is_none() => return Ok("no CPU quota".to_owned()),
            None => {
                let group = self.group("cpu")?;
                self.cpu = Some(group.clone());
                group
            }
        };
        self.version.write_cpu_quota(&group, cores)?;
        self.join(&group)?;
        Ok(match cores {
            Some(cores) => self.version.describe_quota(&group, cores),
            None => format!("no CPU quota in {}", group.display()),
        })
    }

    /// The CPU quota in force, read back from the group (cores); `None` where none is.
    pub fn cpu_quota(&self) -> anyhow::Result<Option<f64>> {
        match &self.cpu {
            Some(group) => self.version.read_cpu_quota(group),
            None => Ok(None),
        }
    }

    /// The group holding the CPU quota, once there is one.
    pub fn cpu_group(&self) -> Option<&Path> {
        self.cpu.as_deref()
    }

    fn set_memory(&mut self, mib: u64) -> anyhow::Result<()> {
        let group = self.group("memory")?;
        match self.version {
            Version::V1 => write(
                &group.join("memory.limit_in_bytes"),
                &(mib * 1024 * 1024).to_string(),
            )?,
            Version::V2 => write(&group.join("memory.max"), &v2::memory_max(Some(mib)))?,
        }
        self.join(&group)
    }

    /// The process's group under `controller`'s hierarchy, created (and, on v2, the
    /// controller enabled for it) if need be: one group per hierarchy on v1, the same one
    /// for every controller on v2.
    fn group(&mut self, controller: &str) -> anyhow::Result<PathBuf> {
        let root = self.version.root(controller);
        if self.version == Version::V2 {
            v2::enable(&root, &[controller])?;
        }
        let group = root.join(format!("shoplab-limits-{}", self.pid));
        std::fs::create_dir_all(&group)
            .with_context(|| format!("cannot create the cgroup {}", group.display()))?;
        if !self.groups.contains(&group) {
            self.groups.push(group.clone());
        }
        Ok(group)
    }

    /// Moves the process into `group` (a no-op when it is there already).
    fn join(&self, group: &Path) -> anyhow::Result<()> {
        write(&group.join("cgroup.procs"), &self.pid.to_string())
    }
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

/// The process's cgroup under `controller`'s hierarchy (`cpu`, `memory`), from
/// `/proc/<pid>/cgroup`.
pub fn group_of(pid: u32, controller: &str) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/cgroup");
    let table = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    group_in(&table, controller).with_context(|| format!("{path} names no {controller} cgroup"))
}

/// The group of `controller` in a `/proc/<pid>/cgroup` table: v1 lines name their
/// controllers (`1:cpu:/some/path`, or `4:cpu,cpuacct:/` where two are mounted together);
/// v2's one line names none (`0::/some/path`) and holds every controller. A v1 line for the
/// controller wins over the unified line a hybrid mount adds for systemd.
fn group_in(table: &str, controller: &str) -> Option<String> {
    let mut unified = None;
    for line in table.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(group)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            unified = Some(group.to_owned());
        } else if controllers.split(',').any(|name| name == controller) {
            return Some(group.to_owned());
        }
    }
    unified
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_group_is_found_on_either_version() {
        let v1 = "12:memory:/shoplab-limits-7\n4:cpu,cpuacct:/shoplab-7\n0::/user.slice\n";
        assert_eq!(group_in(v1, "cpu").as_deref(), Some("/shoplab-7"));
        assert_eq!(group_in(v1, "cpuacct").as_deref(), Some("/shoplab-7"));
        assert_eq!(group_in(v1, "memory").as_deref(), Some("/shoplab-limits-7"));
        let v2 = "0::/system.slice/shoplab-limits-7\n";
        assert_eq!(
            group_in(v2, "cpu").as_deref(),
            Some("/system.slice/shoplab-limits-7")
        );
        assert_eq!(group_in("3:pids:/\n", "cpu"), None);
    }

    #[test]
    fn a_quota_is_written_in_each_versions_own_format() {
        assert_eq!(
            Version::V1.cpu_quota(Some(0.1)),
            ("cpu.cfs_quota_us", "10000".to_owned())
        );
        assert_eq!(
            Version::V1.cpu_quota(None),
            ("cpu.cfs_quota_us", "-1".to_owned())
        );
        assert_eq!(
            Version::V2.cpu_quota(Some(0.25)),
            ("cpu.max", "25000 100000".to_owned())
        );
        assert_eq!(
            Version::V2.cpu_quota(None),
            ("cpu.max", "max 100000".to_owned())
        );
        // The kernel refuses a quota under 1 ms per period.
        assert_eq!(Version::V2.cpu_quota(Some(0.001)).1, "1000 100000");
        assert_eq!(
            Version::V2.describe_quota(Path::new("/sys/fs/cgroup/shoplab-9"), 0.1),
            "cpu.max=\"10000 100000\" (0.10 cores) in /sys/fs/cgroup/shoplab-9"
        );
    }
}
