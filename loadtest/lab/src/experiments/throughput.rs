//! Throughput: the same closed-loop load levels against one build; per level req/s, raw and
//! coordinated-omission-corrected latency, errors, what the system under test used (CPU
//! seconds, peak RSS) and what the generator itself used — so a level the generator could
//! not drive is flagged instead of being read as the shop's limit. Then, when the profile
//! has a capacity plan, the capacity search at the SLO from open-loop load (`capacity`).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::Experiment;
use crate::load::{self, LoadPlan};
use loadtest_platform::{GeneratorJob, Meter, Probe};
use loadtest_results::analysis::{stats, success_histogram, timeline};
use loadtest_results::experiments::throughput::{GENERATOR_LIMIT, Level};
use loadtest_results::latency::nines;
use loadtest_results::resources::ProcessUsage;

pub async fn levels(experiment: &mut Experiment<'_>) -> anyhow::Result<Vec<Level>> {
    let mut levels = Vec::new();
    let profile = experiment.profile.clone();
    let http = reqwest::Client::builder()
        .pool_idle_timeout(loadtest_platform::CLIENT_POOL_IDLE)
        .build()?;
    for repeat in 1..=profile.repeats {
        for users in &profile.levels {
            experiment.step(&format!("{users} users, repeat {repeat}"));
            let plan = LoadPlan {
                users: *users,
                duration: profile.level_duration,
                ..experiment.plan()
            };
            let mut meter = Meter::new();
            let named = experiment.target.named_probes().await;
            let probes: Vec<Probe> = named.iter().map(|(_, probe)| probe.clone()).collect();
            // Read outside the CPU window, so the scrapes are not counted as serving.
            let hops_before = super::hop_count(experiment.target, &http, None).await;
            let (cpu_before, _) = meter.sample(&probes);
            let cpu_before_each = per_process(&mut meter, &named);
            let recorder = experiment.recorder(Instant::now());
            let sampler = PeakRss::start(probes.clone());
            let (run, generators, share) = if experiment.generators > 0 {
                let merged = distributed(experiment, &plan).await?;
                (merged.run, merged.generators, merged.busiest_share)
            } else {
                let run = load::run(&plan, &experiment.shop, &recorder).await?;
                let share = run.generator_cpu_s / (run.wall_s * experiment.generator_cores as f64);
                (run, Vec::new(), share)
            };
            let peak_rss_mib = sampler.stop().await;
            let (cpu_after, _) = meter.sample(&probes);
            let hops = match (
                hops_before,
                super::hop_count(experiment.target, &http, None).await,
            ) {
                (Some(before), Some(after)) => Some(after.attempts_since(&before)),
                _ => None,
            };
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
            levels.push(Level {
                users: *users,
                repeat,
                requests: summary.requests,
                requests_per_s: summary.requests as f64 / run.wall_s.max(0.001),
                errors,
                error_rate: errors as f64 / summary.requests.max(1) as f64,
                raw: summary.latency,
                nines: nines(&success_histogram(&run.records)),
                corrected: run.corrected_percentiles(),
                sut_cpu_s: metered.then_some(sut_cpu_s),
                sut_peak_rss_mib: metered.then_some(peak_rss_mib),
                processes,
                hops,
                requests_per_sut_cpu_s: metered
                    .then(|| summary.requests.saturating_sub(errors) as f64 / sut_cpu_s.max(0.001)),
                generator_cpu_s: run.generator_cpu_s,
                generator_cpu_share: share,
                generator_limited: share > GENERATOR_LIMIT,
                generators,
                timeline: timeline(&run.records, 1000),
            });
            experiment.history.extend(run.records);
        }
    }
    Ok(levels)
}

/// How long before the generators' agreed start the lab asks the platform to place them:
/// enough to schedule a task on each node, start it and pass its preflight (about 2 s on
/// this machine's docker-in-docker nodes). A generator that starts later anyway starts at
/// once, and the level records how far apart they started.
const GENERATOR_LEAD: Duration = Duration::from_secs(8);

/// One level from `experiment.generators` generators the platform places, merged onto one
/// clock that starts at their agreed start.
async fn distributed(
    experiment: &mut Experiment<'_>,
    plan: &LoadPlan,
) -> anyhow::Result<crate::generators::Merged> {
    let start_at = crate::generators::unix_ms() + GENERATOR_LEAD.as_millis() as u64;
    let shop = &experiment.shop;
    let mut args = vec![
        format!("--users={}", plan.users),
        format!("--duration={}", plan.duration.as_secs().max(1)),
        format!("--products={}", shop.products),
        format!("--seeded-users={}", shop.users),
        format!("--seed={}", experiment.seed),
        format!("--browse={}", shop.browse_weight),
        format!("--buy={}", shop.buy_weight),
        // A level with errors is still a measurement: the lab judges it, not the gate.
        "--max-error-rate=100%".to_owned(),
        format!("--start-at={start_at}"),
        "--shard=-".to_owned(),
        format!("--shard-cores={GENERATOR_CORES}"),
    ];
    if let Some(rate) = plan.rate {
        args.push(format!("--rate={rate}"));
    }
    let outputs = experiment
        .target
        .run_generators(&GeneratorJob {
            count: experiment.generators,
            args,
            cpus: GENERATOR_CORES,
            deadline: GENERATOR_LEAD + plan.duration + Duration::from_secs(120),
        })
        .await
        .context("run the load generators")?;
    let names: Vec<String> = outputs
        .iter()
        .map(|output| output.generator.clone())
        .collect();
    let shards = outputs
        .iter()
        .map(|output| {
            crate::generators::read_shard(&output.stdout)
                .with_context(|| format!("the shard of generator {}", output.generator))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    crate::generators::merge(shards, &names, start_at)
}

/// The cores each placed generator may use: one, as the lab's own process gets a core of
/// its own when pinned.
const GENERATOR_CORES: f64 = 1.0;

/// CPU seconds so far and resident MiB now of each process (its replicas summed), by name.
fn per_process(meter: &mut Meter, named: &[(String, Probe)]) -> Vec<(String, f64, f64)> {
    let mut usage: Vec<(String, f64, f64)> = Vec::new();
    for (process, probe) in named {
        let (cpu_s, rss_mib) = meter.sample(std::slice::from_ref(probe));
        match usage.iter_mut().find(|(name, _, _)| name == process) {
            Some((_, cpu, rss)) => {
                *cpu += cpu_s;
                *rss += rss_mib;
            }
            None => usage.push((process.clone(), cpu_s, rss_mib)),
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
