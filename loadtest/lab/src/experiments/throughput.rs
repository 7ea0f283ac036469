//! Throughput: the same closed-loop load levels against one build; per level req/s, raw and
//! coordinated-omission-corrected latency, errors, what the system under test used (CPU
//! seconds, peak RSS) and what the generator itself used — so a level the generator could
//! not drive is flagged instead of being read as the shop's limit. Then, when the profile
//! has a capacity plan, the capacity search at the SLO from open-loop load (`capacity`).

use std::time::{Duration, Instant};

use super::Experiment;
use crate::load::{self, LoadPlan};
use loadtest_platform::{Meter, Probe};
use loadtest_results::analysis::{stats, success_histogram, timeline};
use loadtest_results::component::Component;
use loadtest_results::experiments::throughput::{GENERATOR_LIMIT, Level};
use loadtest_results::latency::nines;
use loadtest_results::resources::ProcessUsage;

pub async fn levels(experiment: &mut Experiment<'_>) -> anyhow::Result<Vec<Level>> {
    let mut levels = Vec::new();
    let profile = experiment.profile.clone();
    for repeat in 1..=profile.repeats {
        for users in &profile.levels {
            experiment.step(&format!("{users} users, repeat {repeat}"));
            let plan = LoadPlan {
                users: *users,
                duration: profile.level_duration,
                ..experiment.plan()
            };
            let mut meter = Meter::new();
            let named = experiment.target.probes().await;
            let probes: Vec<Probe> = named.iter().map(|(_, probe)| probe.clone()).collect();
            let (cpu_before, _) = meter.sample(&probes);
            let cpu_before_each = per_process(&mut meter, &named);
            let recorder = experiment.recorder(Instant::now());
            let sampler = PeakRss::start(probes.clone());
            let run = load::run(&plan, &experiment.shop, &recorder).await?;
            let peak_rss_mib = sampler.stop().await;
            let (cpu_after, _) = meter.sample(&probes);
            let processes: Vec<ProcessUsage> = per_process(&mut meter, &named)
                .into_iter()
                .map(|(process, cpu_s, rss_mib)| {
                    let before = cpu_before_each
                        .iter()
                        .find(|(name, _, _)| *name == process)
                        .map_or(0.0, |(_, cpu_s, _)| *cpu_s);
                    ProcessUsage {
                        process,
                        cpu_s: (cpu_s - before).max(0.0),
                        rss_mib,
                    }
                })
                .collect();
            let summary = stats(&run.records);
            let errors = summary.requests - summary.ok;
            let sut_cpu_s = (cpu_after - cpu_before).max(0.0);
            let metered = !probes.is_empty();
            let share = run.generator_cpu_s / (run.wall_s * experiment.generator_cores as f64);
            levels.push(Level {
                users: *users,
                repeat,
                requests: summary.requests,
                requests_per_s: summary.requests as f64 / run.wall_s.max(0.001),
                errors,
                error_rate: errors as f64 / summary.requests.max(1) as f64,
                raw: summary.latency,
                nines: nines(&success_histogram(&run.records)),
                corrected: run.corrected,
                sut_cpu_s: metered.then_some(sut_cpu_s),
                sut_peak_rss_mib: metered.then_some(peak_rss_mib),
                processes,
                requests_per_sut_cpu_s: metered
                    .then(|| summary.requests as f64 / sut_cpu_s.max(0.001)),
                generator_cpu_s: run.generator_cpu_s,
                generator_cpu_share: share,
                generator_limited: share > GENERATOR_LIMIT,
                timeline: timeline(&run.records, 1000),
            });
            experiment.history.extend(run.records);
        }
    }
    Ok(levels)
}

/// CPU seconds so far and resident MiB now of each component (its replicas summed), by name.
fn per_process(meter: &mut Meter, named: &[(Component, Probe)]) -> Vec<(String, f64, f64)> {
    let mut usage: Vec<(String, f64, f64)> = Vec::new();
    for (component, probe) in named {
        let (cpu_s, rss_mib) = meter.sample(std::slice::from_ref(probe));
        match usage
            .iter_mut()
            .find(|(name, _, _)| name == component.as_str())
        {
            Some((_, cpu, rss)) => {
                *cpu += cpu_s;
                *rss += rss_mib;
            }
            None => usage.push((component.as_str().to_owned(), cpu_s, rss_mib)),
        }
    }
    usage
}

/// Samples the summed RSS of the system under test every 100 ms and keeps the peak.
struct PeakRss {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<f64>,
}

impl PeakRss {
    fn start(probes: Vec<Probe>) -> PeakRss {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut meter = Meter::new();
            let mut peak: f64 = 0.0;
            loop {
                peak = peak.max(meter.sample(&probes).1);
                tokio::select! {
                    _ = &mut stopped => return peak,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        PeakRss { stop, task }
    }

    async fn stop(self) -> f64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0.0)
    }
}
