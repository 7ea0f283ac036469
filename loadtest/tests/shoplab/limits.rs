//! Per-process resource limits (`compare --process-cpu/--process-memory`): every shop
//! process is held in cgroups of its own from its start, a leak past the memory limit ends
//! in the kernel's OOM killer, and the restarted process is held to the same limits.

use std::path::Path;

use domain::Context;
use loadtest_platform::cgroup::{self, CPU_HIERARCHY, MEMORY_HIERARCHY, ProcessLimits, group_of};
use loadtest_platform::{Target, TargetSettings};
use loadtest_results::component::{Build, Component};
use serde_json::json;

use crate::support::{process, target_settings};

const LIMITS: ProcessLimits = ProcessLimits {
    cpu_cores: Some(0.5),
    memory_mib: Some(128),
};

fn group(hierarchy: &str, pid: u32) -> std::path::PathBuf {
    Path::new(hierarchy).join(format!("shoplab-limits-{pid}"))
}

/// The process's group in one hierarchy.
fn cgroup_of(pid: u32, controller: &str) -> String {
    group_of(pid, controller).unwrap_or_else(|error| panic!("{error:#}"))
}

fn assert_confined(pid: u32) {
    let expected = format!("/shoplab-limits-{pid}");
    assert_eq!(cgroup_of(pid, "memory"), expected);
    assert_eq!(cgroup_of(pid, "cpu"), expected);
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
            .trim()
            .to_owned()
    };
    assert_eq!(
        read(group(MEMORY_HIERARCHY, pid).join("memory.limit_in_bytes")),
        (128 * 1024 * 1024).to_string()
    );
    assert_eq!(
        read(group(CPU_HIERARCHY, pid).join("cpu.cfs_quota_us")),
        "50000"
    );
    assert_eq!(
        read(group(CPU_HIERARCHY, pid).join("cpu.cfs_period_us")),
        "100000"
    );
}

#[tokio::test]
async fn a_leak_past_the_memory_limit_is_oom_killed_and_the_restart_is_held_to_the_same_limits() {
    let settings = TargetSettings {
        limits: LIMITS,
        ..target_settings()
    };
    cgroup::check_available(&LIMITS)
        .expect("these machines have writable cgroup v1 cpu and memory hierarchies");
    let mut target = Target::start(Build::Monolith, &settings)
        .await
        .expect("the monolith starts under limits");
    let first = process(&target, Component::Monolith, 1)
        .await
        .pid
        .expect("a local process has a pid");
    assert_confined(first);
    // The lab's own front door is not the shop's, and is not limited.
    let front_door = process(&target, Component::FrontDoor, 1)
        .await
        .pid
        .expect("a local process has a pid");
    assert_eq!(
        cgroup_of(front_door, "cpu"),
        cgroup_of(std::process::id(), "cpu")
    );

    // 512 MiB at 256 MiB/s: without the limit the monolith would just grow; with it the
    // kernel kills it once it passes 128 MiB.
    target
        .fault(
            Context::Cart,
            "leak",
            json!({"mb_per_sec": 256, "max_mb": 512}),
        )
        .await
        .expect("the leak is injected");
    let exited = crate::support::wait_for_an_exit(&mut target).await;
    assert_eq!(exited, vec![(Component::Monolith, 1)]);
    assert!(
        !Path::new(&format!("/proc/{first}")).exists(),
        "pid {first} is gone"
    );
    assert!(
        !group(MEMORY_HIERARCHY, first).exists() && !group(CPU_HIERARCHY, first).exists(),
        "the reaped process's groups are removed"
    );

    target
        .restart(Component::Monolith, 1)
        .await
        .expect("the lab restarts it");
    let second = process(&target, Component::Monolith, 1)
        .await
        .pid
        .expect("a local process has a pid");
    assert_ne!(first, second);
    assert_confined(second);
    target.stop().await.expect("the target stops");
    assert!(
        !group(MEMORY_HIERARCHY, second).exists() && !group(CPU_HIERARCHY, second).exists(),
        "a stopped deployment leaves no group behind"
    );
}
