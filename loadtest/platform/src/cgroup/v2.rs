//! cgroup v2, the unified hierarchy current distributions mount alone at `/sys/fs/cgroup`:
//! one tree for every controller, `cpu.max` ("QUOTA PERIOD" in microseconds, or "max
//! PERIOD") instead of `cpu.cfs_quota_us` / `cpu.cfs_period_us`, `memory.max` instead of
//! `memory.limit_in_bytes`, and a controller only works in a group once its parent lists it
//! in `cgroup.subtree_control`.
//!
//! These machines mount v1 only, so this path is never written for real here: the file
//! formats are pure functions, unit-tested below, and the writes beside them are the same
//! `std::fs::write` calls the v1 path makes (and its tests exercise).

use std::path::Path;

use anyhow::Context as _;

/// Where the unified hierarchy is mounted; its root has `cgroup.controllers`.
pub const UNIFIED: &str = "/sys/fs/cgroup";

/// The contents of `cpu.max`: the quota and the period in microseconds, `max` for no quota.
pub(super) fn cpu_max(quota_us: Option<u64>, period_us: u64) -> String {
    match quota_us {
        Some(quota_us) => format!("{quota_us} {period_us}"),
        None => format!("max {period_us}"),
    }
}

/// `cpu.max` read back: the quota (`None` for `max`) and the period. A bare quota is
/// accepted as the kernel accepts it, with the default period of 100 ms.
pub(super) fn parse_cpu_max(text: &str) -> Option<(Option<u64>, u64)> {
    let mut fields = text.split_whitespace();
    let quota = match fields.next()? {
        "max" => None,
        number => Some(number.parse().ok()?),
    };
    let period = match fields.next() {
        Some(number) => number.parse().ok()?,
        None => 100_000,
    };
    if fields.next().is_some() || period == 0 {
        return None;
    }
    Some((quota, period))
}

/// The contents of `memory.max`: bytes, or `max` for no limit.
pub(super) fn memory_max(mib: Option<u64>) -> String {
    mib.map_or_else(|| "max".to_owned(), |mib| (mib * 1024 * 1024).to_string())
}

/// What to write to a parent's `cgroup.subtree_control` (whose contents are
/// `subtree_control`) so its children get every controller of `wanted`: `+cpu +memory` for
/// those not enabled yet; `None` when all are.
pub(super) fn enabling(subtree_control: &str, wanted: &[&str]) -> Option<String> {
    let enabled: Vec<&str> = subtree_control.split_whitespace().collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|controller| !enabled.contains(controller))
        .map(|controller| format!("+{controller}"))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

/// The controllers `cgroup.controllers` (whose contents are `available`) does not offer.
pub(super) fn unavailable<'a>(available: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    let offered: Vec<&str> = available.split_whitespace().collect();
    wanted
        .iter()
        .copied()
        .filter(|controller| !offered.contains(controller))
        .collect()
}

/// Makes `wanted` work in the groups the lab creates under the hierarchy's root: the root
/// must offer them, and lists them in its `cgroup.subtree_control` afterwards. The root is
/// exempt from v2's rule that a group holding processes enables no controller for its
/// children; a hierarchy seen from inside a container's cgroup namespace is not, and the
/// error then says what the kernel refused.
pub(super) fn enable(root: &Path, wanted: &[&str]) -> anyhow::Result<()> {
    let read = |file: &str| {
        let path = root.join(file);
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let available = read("cgroup.controllers")?;
    let missing = unavailable(&available, wanted);
    anyhow::ensure!(
        missing.is_empty(),
        "the cgroup v2 hierarchy at {} offers no {} controller (cgroup.controllers: {})",
        root.display(),
        missing.join(", "),
        available.trim()
    );
    if let Some(line) = enabling(&read("cgroup.subtree_control")?, wanted) {
        let path = root.join("cgroup.subtree_control");
        std::fs::write(&path, &line)
            .with_context(|| format!("cannot write {line} to {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_is_the_quota_and_the_period_or_max_for_none() {
        assert_eq!(cpu_max(Some(10_000), 100_000), "10000 100000");
        assert_eq!(cpu_max(None, 100_000), "max 100000");
    }

    #[test]
    fn cpu_max_reads_back_what_the_kernel_shows() {
        assert_eq!(
            parse_cpu_max("10000 100000\n"),
            Some((Some(10_000), 100_000))
        );
        assert_eq!(parse_cpu_max("max 100000\n"), Some((None, 100_000)));
        assert_eq!(parse_cpu_max("50000"), Some((Some(50_000), 100_000)));
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("lots 100000"), None);
        assert_eq!(parse_cpu_max("10000 0"), None);
        assert_eq!(parse_cpu_max("10000 100000 7"), None);
    }

    #[test]
    fn memory_max_is_bytes_or_max() {
        assert_eq!(memory_max(Some(128)), "134217728");
        assert_eq!(memory_max(None), "max");
    }

    #[test]
    fn only_the_controllers_not_yet_enabled_are_asked_for() {
        assert_eq!(
            enabling("", &["cpu", "memory"]).as_deref(),
            Some("+cpu +memory")
        );
        assert_eq!(
            enabling("cpuset memory pids\n", &["cpu", "memory"]).as_deref(),
            Some("+cpu")
        );
        assert_eq!(enabling("cpu io memory\n", &["cpu", "memory"]), None);
        // `cpuset` is not `cpu`: whole names only.
        assert_eq!(enabling("cpuset", &["cpu"]).as_deref(), Some("+cpu"));
    }

    #[test]
    fn a_controller_the_kernel_does_not_offer_is_named() {
        assert_eq!(
            unavailable(
                "cpuset cpu io memory hugetlb pids rdma misc\n",
                &["cpu", "memory"]
            ),
            Vec::<&str>::new()
        );
        assert_eq!(
            unavailable("cpuset io pids", &["cpu", "memory"]),
            ["cpu", "memory"]
        );
    }
}
