//! Scale: the same load before and after one more replica — the monolith gets a second
//! process behind the front door; micro gets a second replica of its hottest service (the
//! one that used the most CPU in the first half), balanced by its callers. Reported as
//! req/s and req/s per CPU second of the system under test, before and after, and how the
//! second half's requests were spread over the replicas, as the balancer in front of them
//! counted them (the front door for the monolith, the gateway for a service).
//!
//! Both builds get the same cores; on a machine where the system under test has one core,
//! a second replica cannot add CPU, only contention — the result says so.

use std::time::Instant;

use super::Experiment;
use crate::load;
use loadtest_platform::{Meter, spread};
use loadtest_results::analysis::stats;
use loadtest_results::component::{Build, Component};
use loadtest_results::experiments::scale::{Half, ReplicaSpread, Scale};

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Scale> {
    let profile = experiment.profile;
    let users = profile.levels.last().copied().unwrap_or(16);
    let plan = load::LoadPlan {
        users,
        duration: profile.scale_duration,
        ..experiment.plan()
    };
    experiment.step(&format!("one replica, {users} users"));
    let (before, cpu_by_process) = half(experiment, &plan, 1).await?;
    let component = match experiment.target.build {
        Build::Monolith => Component::Monolith,
        Build::Micro => hottest(&cpu_by_process),
    };
    experiment.step(&format!("adding a replica of {component}"));
    let replicas = experiment.target.add_replica(component).await?;
    experiment.step(&format!(
        "{replicas} replicas of {component}, {users} users"
    ));
    let counted = experiment.target.spread_source(component).await;
    let http = reqwest::Client::new();
    let counters_before = match &counted {
        Some(source) => Some(source.read(&http).await?),
        None => None,
    };
    let (after, _) = half(experiment, &plan, replicas).await?;
    let spread = match (&counted, counters_before) {
        (Some(source), Some(before)) => Some(ReplicaSpread {
            counted_by: source.counted_by.to_owned(),
            replicas: spread::difference(&before, &source.read(&http).await?),
        }),
        _ => None,
    };
    Ok(Scale {
        component: component.to_string(),
        users,
        speedup: after.requests_per_s / before.requests_per_s.max(0.001),
        before,
        after,
        sut_cores: experiment.sut_cores,
        cpu_by_process: cpu_by_process
            .into_iter()
            .map(|(component, cpu)| (component.to_string(), cpu))
            .collect(),
        spread,
    })
}

/// The service that used the most CPU (the gateway and the front door are not services);
/// catalog, which every browse step calls, where the target read no CPU at all.
fn hottest(cpu_by_process: &[(Component, f64)]) -> Component {
    cpu_by_process
        .iter()
        .filter(|(component, _)| matches!(component, Component::Service(_)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(
            Component::Service(domain::Context::Catalog),
            |(component, _)| *component,
        )
}

async fn half(
    experiment: &mut Experiment<'_>,
    plan: &load::LoadPlan,
    replicas: usize,
) -> anyhow::Result<(Half, Vec<(Component, f64)>)> {
    let members = experiment.target.probes().await;
    let mut meter = Meter::new();
    let before: Vec<f64> = members
        .iter()
        .map(|(_, probe)| meter.sample(std::slice::from_ref(probe)).0)
        .collect();
    let recorder = experiment.recorder(Instant::now());
    let run = load::run(plan, &experiment.shop, &recorder).await?;
    let mut by_component: Vec<(Component, f64)> = Vec::new();
    for ((component, probe), before) in members.iter().zip(before) {
        let used = (meter.sample(std::slice::from_ref(probe)).0 - before).max(0.0);
        match by_component.iter_mut().find(|(seen, _)| seen == component) {
            Some((_, total)) => *total += used,
            None => by_component.push((*component, used)),
        }
    }
    let sut_cpu_s: f64 = by_component.iter().map(|(_, cpu)| cpu).sum();
    let metered = !members.is_empty();
    let summary = stats(&run.records);
    let half = Half {
        replicas,
        requests_per_s: summary.requests as f64 / run.wall_s.max(0.001),
        error_rate: (summary.requests - summary.ok) as f64 / summary.requests.max(1) as f64,
        latency: summary.latency,
        sut_cpu_s: metered.then_some(sut_cpu_s),
        requests_per_sut_cpu_s: metered.then(|| summary.requests as f64 / sut_cpu_s.max(0.001)),
    };
    experiment.history.extend(run.records);
    Ok((half, by_component))
}
