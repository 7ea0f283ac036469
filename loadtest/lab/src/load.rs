//! One Goose attack against a base URL: the journeys, for a number of users and a duration,
//! with coordinated-omission mitigation on; and what it cost the generator itself.
//!
//! Goose runs one attack at a time per process (a global killswitch), so attacks are run in
//! sequence; the fault and deploy events of an experiment run beside the attack on the same
//! clock (see `crate::experiments`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use goose::config::GooseConfiguration;
use goose::metrics::{GooseCoordinatedOmissionMitigation, GooseMetrics};
use goose::prelude::{GooseAttack, Scenario};
use hdrhistogram::Histogram;
use loadtest_results::latency::{Percentiles, latency_histogram};
use serde::Serialize;

use super::journeys::{Recorder, Shopfront, scenarios};
use loadtest_results::history::RequestRecord;

/// How hard and how long to drive one deployment.
#[derive(Clone, Debug, Serialize)]
pub struct LoadPlan {
    pub base_url: String,
    /// Goose users (closed loop: each waits for its answer before the next request).
    pub users: usize,
    pub duration: Duration,
    /// A ceiling on requests per second over all users (Goose's throttle; not a target).
    pub rate: Option<usize>,
    /// Per-request timeout of the generator's HTTP client.
    pub request_timeout: Duration,
}

/// What one attack produced.
#[derive(Debug)]
pub struct LoadRun {
    pub records: Vec<RequestRecord>,
    /// Latencies after Goose's coordinated-omission back-fill (`average`), over every
    /// request; kept as the histogram so the runs of several generators merge exactly.
    pub corrected: Histogram<u64>,
    /// CPU seconds the generator process used during the attack (user + system).
    pub generator_cpu_s: f64,
    pub wall_s: f64,
}

/// Runs the journeys against `plan.base_url`, recording into `recorder`.
pub async fn run(
    plan: &LoadPlan,
    shop: &Shopfront,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<LoadRun> {
    attack(plan, scenarios(shop, recorder)?, recorder, None).await
}

/// Runs the journeys until `stop` resolves, or `plan.duration` (the longest it may take)
/// has passed. Experiments whose events take as long as they take (deploys) end the load
/// when the events are done instead of guessing their length.
pub async fn run_until(
    plan: &LoadPlan,
    shop: &Shopfront,
    recorder: &Arc<Recorder>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<LoadRun> {
    attack(
        plan,
        scenarios(shop, recorder)?,
        recorder,
        Some(Box::pin(stop)),
    )
    .await
}

/// Runs `scenarios` (which record into `recorder`) against `plan.base_url`.
pub async fn run_scenarios(
    plan: &LoadPlan,
    scenarios: Vec<Scenario>,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<LoadRun> {
    attack(plan, scenarios, recorder, None).await
}

type Stop = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

async fn attack(
    plan: &LoadPlan,
    scenarios: Vec<Scenario>,
    recorder: &Arc<Recorder>,
    stop: Option<Stop>,
) -> anyhow::Result<LoadRun> {
    let mut config = configuration(plan);
    // Goose 0.19 stops early only when its controller is told to: the telnet one, on a
    // loopback port of its own, is how the lab says `shutdown`.
    let controller = match stop {
        Some(stop) => {
            let port = free_port().context("find a port for the generator's controller")?;
            config.no_telnet = false;
            config.telnet_host = Some("127.0.0.1".into());
            config.telnet_port = Some(port);
            Some((port, stop))
        }
        None => None,
    };
    let mut attack =
        GooseAttack::initialize_with_config(config).context("configure the load generator")?;
    for scenario in scenarios {
        attack = attack.register_scenario(scenario);
    }
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let execute = attack.execute();
    let metrics = match controller {
        None => execute.await,
        Some((port, stop)) => {
            tokio::pin!(execute);
            tokio::select! {
                metrics = &mut execute => metrics,
                () = stop => {
                    // Should the controller not answer, the load runs its full length.
                    if let Err(error) = shut_down(port).await {
                        tracing::warn!("could not stop the load early: {error:#}");
                    }
                    execute.await
                }
            }
        }
    }
    .context("run the load")?;
    let wall_s = started.elapsed().as_secs_f64();
    let generator_cpu_s = own_cpu_seconds() - cpu_before;
    Ok(LoadRun {
        records: recorder.take(),
        corrected: corrected_histogram(&metrics),
        generator_cpu_s,
        wall_s,
    })
}

fn configuration(plan: &LoadPlan) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    config.host = Some(plan.base_url.clone());
    config.users = Some(plan.users.max(1));
    // Every user starts within the first 100 ms; a ramp would blur the load level.
    config.increase_rate = Some((plan.users.max(1) * 10).to_string());
    config.run_time = Some(plan.duration.as_secs().max(1).to_string());
    config.throttle_requests = plan.rate;
    config.timeout = Some(format!("{:.3}", plan.request_timeout.as_secs_f64()));
    config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Average);
    // The lab prints its own summary and must be able to run attacks back to back: no
    // controllers holding ports, no metrics table, no Goose banner.
    config.no_telnet = true;
    config.no_autostart = false;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.quiet = 1;
    config
}

impl LoadRun {
    /// Percentiles after the coordinated-omission back-fill. Goose keeps one timing
    /// histogram per request name for successes and failures together, so unlike the raw
    /// percentiles (of successes, from the lab's own records) these include failed
    /// requests; the report warns where a level had failures.
    pub fn corrected_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.corrected)
    }
}

/// Every request's latency after Goose's coordinated-omission back-fill.
fn corrected_histogram(metrics: &GooseMetrics) -> Histogram<u64> {
    let mut histogram = latency_histogram();
    for aggregate in metrics.requests.values() {
        let timings = aggregate
            .coordinated_omission_data
            .as_ref()
            .unwrap_or(&aggregate.raw_data);
        // Goose keeps bucketed microseconds (each bucket's lower bound), so these
        // percentiles are as coarse as its buckets.
        for (bucket_us, count) in timings.times_us.iter() {
            let value = (*bucket_us).clamp(1, 300_000_000);
            let _ = histogram.record_n(value, *count as u64);
        }
    }
    histogram
}

/// A loopback port free a moment ago (the controller binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Tells the Goose controller on `port` to end the attack; its metrics come back as usual.
async fn shut_down(port: u16) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connect to the generator's controller on port {port}"))?;
    stream.write_all(b"shutdown\n").await?;
    stream.flush().await?;
    Ok(())
}

/// CPU seconds this process has used so far (user + system, all threads).
pub fn own_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let user = usage.user_time();
            let system = usage.system_time();
            (user.tv_sec() + system.tv_sec()) as f64
                + (user.tv_usec() + system.tv_usec()) as f64 / 1e6
        }
        Err(_) => 0.0,
    }
}
