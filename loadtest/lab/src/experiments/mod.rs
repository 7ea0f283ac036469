//! The experiments, each run on one build at a time with the same load, seed and profile;
//! after each: heal, wait for quiescence, run the invariant checker over the audit snapshot
//! and the experiment's request history.

pub mod capacity;
pub mod deploy;
pub mod faults;
pub mod nodes;
pub mod scale;
pub mod throughput;

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

pub use loadtest_results::experiments::{EVENT_SLICE_MS, Findings, Kind, Outcome};

use super::journeys::{Recorder, Shopfront};
use super::load::LoadPlan;
use loadtest_check::check;
use loadtest_platform::Target;
use loadtest_results::history::RequestRecord;
use loadtest_results::profile::Profile;

/// Everything an experiment needs while it runs on one build.
pub struct Experiment<'a> {
    pub target: &'a mut Target,
    pub profile: &'a Profile,
    pub shop: Shopfront,
    pub template: LoadPlan,
    /// Cores the generator may use (for its CPU share).
    pub generator_cores: usize,
    /// Cores the system under test may use.
    pub sut_cores: usize,
    /// Load generators the platform places for the throughput sweep (0: the lab's own
    /// process is the generator).
    pub generators: usize,
    /// The run's seed (the seeded users' password), for generators that log in.
    pub seed: u64,
    pub progress: &'a ProgressBar,
    pub history: Vec<RequestRecord>,
}

impl Experiment<'_> {
    /// The load plan every attack starts from (the target's URL, timeouts, rate).
    pub fn plan(&self) -> LoadPlan {
        self.template.clone()
    }

    pub fn recorder(&self, epoch: Instant) -> Arc<Recorder> {
        Recorder::new(epoch)
    }

    /// Says what is happening now on the progress bar.
    pub fn step(&self, message: &str) {
        self.progress.set_message(message.to_owned());
    }
}

/// How long the lab waits for in-flight checkouts to settle before it audits.
const QUIESCENCE: Duration = Duration::from_secs(45);

/// Runs `kind` on the target (already reset), then heals and checks.
pub async fn run(
    kind: Kind,
    mut experiment: Experiment<'_>,
) -> anyhow::Result<(Outcome, Vec<RequestRecord>)> {
    let started = Instant::now();
    let findings = match kind {
        Kind::Throughput => Findings::Throughput {
            levels: throughput::levels(&mut experiment).await?,
            capacity: capacity::run(&mut experiment).await?,
        },
        Kind::Deploy => Findings::Deploy(deploy::run(&mut experiment).await?),
        Kind::Faults => {
            let (cells, timeline) = faults::run(&mut experiment).await?;
            Findings::Faults { cells, timeline }
        }
        Kind::Scale => Findings::Scale(Box::new(scale::run(&mut experiment).await?)),
        Kind::Nodes => Findings::Nodes(nodes::run(&mut experiment).await?),
    };
    experiment.step("healing and checking invariants");
    let target = &mut *experiment.target;
    let _ = target.heal_faults().await;
    target.restore().await?;
    let (audit, quiescent) = target.quiesce(QUIESCENCE).await?;
    let invariants = check(&audit, Some(&experiment.history));
    Ok((
        Outcome {
            build: target.build,
            topology: Some(target.topology_name()),
            findings,
            invariants,
            quiescent,
            duration_s: started.elapsed().as_secs_f64(),
            requests: experiment.history.len(),
        },
        experiment.history,
    ))
}

/// What the shop's processes have counted of their calls into `context` (every context when
/// `None`) so far; `None` on the monolith (no hops), where no process is reachable from here
/// (a swarm's overlay), or when a caller did not answer.
async fn hop_count(
    target: &Target,
    http: &reqwest::Client,
    context: Option<domain::Context>,
) -> Option<loadtest_platform::spread::HopCount> {
    if target.build != loadtest_results::component::Build::Micro {
        return None;
    }
    let urls = target.metrics_urls().await;
    if urls.is_empty() {
        return None;
    }
    loadtest_platform::spread::HopCount::read(http, &urls, target.metrics_token(), context)
        .await
        .ok()
}
