//! The `cpu_limit` fault: one running process moved into a group of its own
//! (`shoplab-<pid>`) under a CPU quota, and moved back home when the fault is healed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{CPU_HIERARCHY, UNIFIED, Version, group_of, v2, write};

/// A CPU limit in force on one process; lift it with [`CpuLimit::lift`] (dropping it lifts
/// it too, as well as it can, so a failed test leaves no cgroup behind).
#[derive(Debug)]
pub struct CpuLimit {
    version: Version,
    pid: u32,
    cores: f64,
    group: PathBuf,
    /// The cgroup the process was in before, to move it back to.
    home: PathBuf,
    lifted: bool,
}

/// Limits process `pid` (every thread) to `cores` of CPU time (0.2 = a fifth of one core).
/// Fails with the reason when this machine cannot do it.
pub fn limit_cpu(pid: u32, cores: f64) -> anyhow::Result<CpuLimit> {
    let version = Version::detect();
    let hierarchy = version.root("cpu");
    match version {
        Version::V1 => anyhow::ensure!(
            hierarchy.join("cpu.cfs_quota_us").exists(),
            "no cgroup v1 cpu controller at {CPU_HIERARCHY} and no cgroup v2 hierarchy at \
             {UNIFIED} (not mounted)"
        ),
        Version::V2 => v2::enable(&hierarchy, &["cpu"])?,
    }
    let home = hierarchy.join(group_of(pid, "cpu")?.trim_start_matches('/'));
    let group = hierarchy.join(format!("shoplab-{pid}"));
    std::fs::create_dir_all(&group)
        .with_context(|| format!("cannot create the cgroup {}", group.display()))?;
    let mut limit = CpuLimit {
        version,
        pid,
        cores,
        group,
        home,
        lifted: false,
    };
    // Quota first, so the process is limited from the moment it is moved in.
    version.write_cpu_quota(&limit.group, Some(cores))?;
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
    /// the process was throttled (it had used its quota): from the cgroup's `cpu.stat`,
    /// which names them alike on both versions.
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
            "pid {}: {}",
            self.pid,
            self.version.describe_quota(&self.group, self.cores)
        )
    }

    /// Removes the quota, moves the process back where it was and removes the cgroup. A
    /// process that exited meanwhile (killed, restarted) is simply no longer in it.
    pub fn lift(mut self) -> anyhow::Result<()> {
        self.lifted = true;
        lift(self.version, self.pid, &self.group, &self.home)
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        if !self.lifted {
            let _ = lift(self.version, self.pid, &self.group, &self.home);
        }
    }
}

fn lift(version: Version, pid: u32, group: &Path, home: &Path) -> anyhow::Result<()> {
    version.write_cpu_quota(group, None)?;
    if Path::new(&format!("/proc/{pid}")).exists() {
        write(&home.join("cgroup.procs"), &pid.to_string())?;
    }
    std::fs::remove_dir(group).with_context(|| format!("remove the cgroup {}", group.display()))
}
