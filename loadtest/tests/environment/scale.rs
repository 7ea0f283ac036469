//! The scale experiment's CPU quota done for real: every shop process held to it in a
//! cgroup of its own (a replica started later too), lifted afterwards; and the experiment
//! on the microservices under it, finding the bottleneck and pricing the added replica.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loadtest_lab::experiments::{Findings, Kind};
use loadtest_platform::Target;
use loadtest_platform::cgroup::{CPU_HIERARCHY, UNIFIED, Version, group_of};
use loadtest_results::component::{Build, Component};
use loadtest_results::experiments::scale::TIE_MARGIN;
use loadtest_results::profile::Profile;

use crate::lab::run_experiment;
use crate::support::{start_target, target_settings};

const QUOTA: f64 = 0.1;

/// The cgroup holding `pid`'s CPU quota, under whichever hierarchy this machine mounts.
fn cpu_group(pid: u32) -> PathBuf {
    let group = group_of(pid, "cpu").unwrap_or_else(|error| panic!("{error:#}"));
    let root = match Version::detect() {
        Version::V1 => CPU_HIERARCHY,
        Version::V2 => UNIFIED,
    };
    Path::new(root).join(group.trim_start_matches('/'))
}

/// The quota in `group` as the kernel shows it (cores); `None` for none.
fn quota_in(group: &Path) -> Option<f64> {
    let read = |file: &str| {
        std::fs::read_to_string(group.join(file))
            .unwrap_or_else(|error| panic!("read {file} in {}: {error}", group.display()))
    };
    match Version::detect() {
        Version::V1 => {
            let quota: i64 = read("cpu.cfs_quota_us").trim().parse().unwrap();
            let period: f64 = read("cpu.cfs_period_us").trim().parse().unwrap();
            (quota > 0).then(|| quota as f64 / period)
        }
        Version::V2 => {
            let text = read("cpu.max");
            let (quota, period) = text.trim().split_once(' ').expect("QUOTA PERIOD");
            (quota != "max").then(|| quota.parse::<f64>().unwrap() / period.parse::<f64>().unwrap())
        }
    }
}

/// Every process of the shop (not the lab's front door) with its PID.
async fn shop_processes(target: &Target) -> Vec<(String, u32)> {
    target
        .processes()
        .await
        .into_iter()
        .filter(|process| process.component != Component::FrontDoor)
        .map(|process| {
            (
                format!("{}#{}", process.component, process.replica),
                process.pid.expect("a local process has a pid"),
            )
        })
        .collect()
}

pub async fn every_shop_process_and_a_replica_added_later_are_held_to_the_quota_until_it_is_lifted(
    _quota_settable: (),
) {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(Build::Monolith).await;
    let lab_group = group_of(std::process::id(), "cpu").unwrap();
    let injection = target
        .quota_every_process(QUOTA)
        .await
        .expect("the local platform answers");
    assert_eq!(injection.not_realized, None);
    let note = injection.note.clone().unwrap_or_default();
    target
        .add_replica(Component::Monolith)
        .await
        .expect("a second monolith starts");
    let processes = shop_processes(&target).await;
    assert_eq!(processes.len(), 2, "{processes:?}");
    for (name, pid) in &processes {
        let group = cpu_group(*pid);
        assert!(
            group.ends_with(format!("shoplab-limits-{pid}")),
            "{name} is in {}",
            group.display()
        );
        assert_eq!(
            quota_in(&group),
            Some(QUOTA),
            "{name} in {}",
            group.display()
        );
    }
    for replica in [1, 2] {
        let shown = crate::support::process(&target, Component::Monolith, replica).await;
        assert_eq!(
            shown.cpu_quota_cores,
            Some(QUOTA),
            "as the platform shows it"
        );
    }
    // The first one was running when the quota came, and the note says what was written.
    let first = processes[0].1;
    assert!(
        note.contains(&format!("pid {first}")) && note.contains("10000"),
        "{note}"
    );
    // The lab's own front door is not the shop's.
    let door = crate::support::pid_of(&target, Component::FrontDoor).await;
    assert_eq!(group_of(door, "cpu").unwrap(), lab_group);

    target.lift(injection).await.expect("the quota is lifted");
    for (name, pid) in &processes {
        assert_eq!(
            quota_in(&cpu_group(*pid)),
            None,
            "{name} is unlimited again"
        );
    }
    target.stop().await.expect("the target stops");
}

pub async fn the_scale_experiment_under_quotas_adds_a_replica_of_the_bottleneck_and_prices_the_gain(
    _quota_settable: (),
) {
    let _quiet = crate::support::exclusive().await;
    let settings = target_settings();
    let mut target = start_target(Build::Micro).await;
    let reset = target.reset(&settings).await.expect("the shop resets");
    let profile = Profile {
        levels: vec![8],
        scale_duration: Duration::from_secs(2),
        scale_quota_cores: Some(QUOTA),
        ..Profile::quick()
    };
    let outcome = run_experiment(
        Kind::Scale,
        &mut target,
        &profile,
        &reset,
        8,
        profile.scale_duration,
    )
    .await;
    assert!(outcome.invariants.valid, "{:?}", outcome.invariants);
    let Findings::Scale(scale) = outcome.findings else {
        panic!("scale found {:?}", outcome.findings);
    };
    eprintln!("{scale:#?}");

    assert_eq!(scale.quota.cores, Some(QUOTA));
    assert_eq!(scale.quota.unavailable, None);
    let processes = shop_processes(&target).await;
    // Seven services and the gateway, and one replica of each tied bottleneck.
    assert!(!scale.added.is_empty(), "{scale:?}");
    assert_eq!(processes.len(), 8 + scale.added.len(), "{processes:?}");
    let added_names: Vec<&str> = scale
        .added
        .iter()
        .map(|added| added.process.as_str())
        .collect();
    let note = scale.quota.note.clone().unwrap_or_default();
    for (name, pid) in &processes[..] {
        let group = cpu_group(*pid);
        assert!(
            group.ends_with(format!("shoplab-limits-{pid}")),
            "{name} is in {}",
            group.display()
        );
        // Lifted when the experiment ended.
        assert_eq!(quota_in(&group), None, "{name}");
        if !added_names.contains(&name.as_str()) {
            assert!(
                note.contains(&format!("{name} (pid {pid})")),
                "{name}: {note}"
            );
        }
    }

    // Every shop process was weighed against its quota; the replica went to the busiest.
    assert_eq!(scale.utilisation.len(), 8, "{:?}", scale.utilisation);
    let bottleneck = scale.bottleneck().expect("a bottleneck");
    // Where processes tie at the top (two at exactly their whole quota), `component` is one
    // of them, not necessarily the one `bottleneck` names.
    let scaled = scale
        .utilisation
        .iter()
        .find(|used| used.process == scale.component)
        .expect("the scaled component was weighed");
    assert_eq!(
        scaled.utilisation, bottleneck.utilisation,
        "the scaled component is the busiest: {:?}",
        scale.utilisation
    );
    assert!(bottleneck.utilisation > 0.0, "{bottleneck:?}");
    let (name, pid) = processes
        .iter()
        .find(|(name, _)| *name == format!("{}#1", scale.component))
        .expect("the bottleneck's first replica");
    // The quota bit where the bottleneck ran: its group counted throttled periods.
    let stat = std::fs::read_to_string(cpu_group(*pid).join("cpu.stat")).unwrap();
    let throttled: u64 = stat
        .lines()
        .find_map(|line| line.strip_prefix("nr_throttled ")?.trim().parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "{name} was never throttled: {stat}");

    // The bottleneck first, then any process tied with it, each within the margin.
    assert_eq!(scale.added[0].process, format!("{}#2", scale.component));
    for added in &scale.added {
        assert!(added.process.ends_with("#2"), "{added:?}");
        assert_eq!(added.cpu_cores, Some(QUOTA), "read back from its cgroup");
        assert!(added.rss_mib.is_some_and(|mib| mib > 1.0), "{added:?}");
        let process = added.process.trim_end_matches("#2");
        let used = scale
            .utilisation
            .iter()
            .find(|used| used.process == process)
            .expect("weighed");
        assert!(
            used.utilisation >= bottleneck.utilisation - TIE_MARGIN,
            "{added:?} was not tied: {:?}",
            scale.utilisation
        );
    }
    // On the local platform every process can be replicated: only the cores' room leaves
    // a tied one out.
    for left in &scale.not_replicated {
        assert!(left.why.starts_with("no room:"), "{left:?}");
    }
    assert!(scale.before.requests_per_s > 0.0 && scale.after.requests_per_s > 0.0);
    let gain = scale.gain.as_ref().expect("a gain");
    let gained = scale.after.successful_per_s() - scale.before.successful_per_s();
    assert!((gain.requests_per_s - gained).abs() < 1e-6, "{gain:?}");
    // Per every added quota and every added process's memory together.
    let quotas = QUOTA * scale.added.len() as f64;
    let mib: f64 = scale.added.iter().filter_map(|added| added.rss_mib).sum();
    assert!(
        (gain.per_cpu.unwrap() - gained / quotas).abs() < 1e-6,
        "{gain:?}"
    );
    assert!(
        (gain.per_mib.unwrap() - gained / mib).abs() < 1e-6,
        "{gain:?}"
    );
    target.stop().await.expect("the target stops");
}
