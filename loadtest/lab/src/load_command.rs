//! `shoplab load`: the journeys against any running deployment — one of ours, or a user's
//! own cluster — with the same records and summary the experiments use.
//!
//! Before the first request it checks that the shop is ready and serves the products the
//! journeys ask for ([`crate::preflight`]) and that its output files can be written; after
//! the load it holds the run to its gates (`--fail-if`, `--max-error-rate`) and says which
//! failed. Failed requests are counted apart: they make neither throughput nor latency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::generators::{self, Share};
use super::journeys::{Recorder, Shopfront};
use super::load::{self, LoadPlan};
use super::open_loop::{self, command::ArrivalArgs};
use loadtest_results::analysis::{names, stats};
use loadtest_results::gates::{Gate, Measured, Verdict};
use loadtest_results::history::{Outcome, RequestRecord};
use loadtest_results::latency::Percentiles;
use loadtest_results::load::{LoadSummary, TransactionSummary};

/// The flags of `shoplab load`, in groups: where, how hard (the closed loop), what the
/// journeys ask for, what the run must stay within, and what it writes.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// The shop's public base URL, e.g. http://127.0.0.1:8080. Its `GET /ready` must answer
    /// 2xx before any load is sent.
    #[arg(long, help_heading = "Target")]
    pub base_url: String,
    /// How long, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Load")]
    pub duration: u64,
    #[command(flatten)]
    pub closed_loop: ClosedLoopArgs,
    #[command(flatten)]
    pub journeys: JourneyArgs,
    #[command(flatten)]
    pub gates: GateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub arrival: ArrivalArgs,
    #[command(flatten)]
    pub generator: GeneratorArgs,
}

/// Running as one of several generators whose measurements the lab merges
/// ([`crate::generators`]); what `compare --generators N` gives each task it places.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "One of several generators")]
pub struct GeneratorArgs {
    /// This process is generator K of N (1-based): it runs its part of --users and --rate
    /// and a slice of the seeded users of its own. A platform sets it per task
    /// (SHOPLAB_GENERATOR={{.Task.Slot}}/N on Swarm).
    #[arg(
        long,
        env = "SHOPLAB_GENERATOR",
        value_name = "K/N",
        conflicts_with = "arrival_rate"
    )]
    pub generator: Option<Share>,
    /// The same share numbered from 0, as Kubernetes numbers an Indexed Job's pods
    /// (SHOPLAB_GENERATOR_INDEX=$(JOB_COMPLETION_INDEX)/N in the Job's pod template).
    #[arg(
        long,
        env = "SHOPLAB_GENERATOR_INDEX",
        value_name = "I/N",
        value_parser = Share::from_zero_based,
        conflicts_with_all = ["generator", "arrival_rate"]
    )]
    pub generator_index: Option<Share>,
    /// Start the load at this wall-clock time (Unix milliseconds), so generators on several
    /// machines begin together. Past: at once, and the shard records when. At most ten
    /// minutes ahead.
    #[arg(long, value_name = "UNIX_MS")]
    pub start_at: Option<u64>,
    /// Write the run as a shard for merging: a header line (start time, CPU, the corrected
    /// latency histogram) and every request as a JSON line. `-`: on stdout, and the
    /// summary goes to stderr.
    #[arg(long, value_name = "FILE|-")]
    pub shard: Option<PathBuf>,
    /// The cores this generator was given, recorded in the shard for its CPU share.
    #[arg(long, default_value_t = 1.0, value_name = "CORES")]
    pub shard_cores: f64,
}

/// The furthest ahead `--start-at` may be: a typo in the time must not park a generator.
const START_AT_HORIZON_MS: u64 = 10 * 60 * 1000;

/// Goose's closed loop: a number of users, each waiting for its answer.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Load")]
pub struct ClosedLoopArgs {
    /// Concurrent users (closed loop: each waits for its answer before its next request).
    #[arg(long, default_value_t = 8)]
    pub users: usize,
    /// A ceiling on requests per second over all users (not a target: Goose is closed-loop,
    /// so a slow shop gets fewer).
    #[arg(long)]
    pub rate: Option<usize>,
}

/// What the journeys ask the shop for: it must have been seeded with at least as much.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Journeys")]
pub struct JourneyArgs {
    /// Products the journeys ask for (ids 1..=N); refused when the shop serves fewer.
    #[arg(long, default_value_t = 1_000)]
    pub products: u32,
    /// Seeded users (user1@shoplab.test ..); their password is `shoplab-<seed>`.
    #[arg(long, default_value_t = 100)]
    pub seeded_users: u32,
    /// The seed the shop was seeded with (the users' password).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Relative weight of the browse journey (list, search, product page).
    #[arg(long, default_value_t = 4)]
    pub browse: usize,
    /// Relative weight of the buy journey (log in, add to cart, check out, read the order).
    #[arg(long, default_value_t = 1)]
    pub buy: usize,
}

/// Thresholds the run must stay within; a run past one exits with code 4.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Gates")]
pub struct GateArgs {
    /// Fail (exit 4) when a threshold is crossed, repeatable: `p99>200ms`, `p50>=20ms`,
    /// `max>2s`, `error_rate>1%`, `throughput<500` (successful req/s). Latencies are of
    /// successful requests only.
    #[arg(long, value_name = "GATE", value_parser = Gate::parse_single_run)]
    pub fail_if: Vec<Gate>,
    /// Fail (exit 4) when more than this share of requests failed: `1%` or `0.01`.
    #[arg(long, value_name = "RATE", default_value = "1%", value_parser = error_rate_gate)]
    pub max_error_rate: Gate,
}

/// Files the run writes; each is created before the first request, so a bad path costs
/// nothing.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Also write every request as JSON lines here (what `shoplab check --history` reads).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
    /// Also write the run's summary as JSON here (`loadtest_results::load::LoadSummary`:
    /// counts, latency of successes, per route, every gate with its measured value).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

fn error_rate_gate(text: &str) -> Result<Gate, String> {
    Gate::parse_single_run(&format!("error_rate>{}", text.trim()))
        .map_err(|error| format!("{text:?} is not an error rate (1% or 0.01): {error}"))
}

/// Runs the load and prints what the shop answered; returns whether every gate passed.
/// Errors (a shop not ready, a file that cannot be written) come before any load is sent.
pub async fn run(args: LoadArgs) -> anyhow::Result<bool> {
    let share = args
        .generator
        .generator
        .or(args.generator.generator_index)
        .unwrap_or(Share { index: 1, of: 1 });
    let users = share.part(args.closed_loop.users);
    anyhow::ensure!(
        users > 0,
        "generator {share} has no users: --users {} is fewer than the {} generators",
        args.closed_loop.users,
        share.of
    );
    if let Some(start_at) = args.generator.start_at {
        let ahead = start_at.saturating_sub(generators::unix_ms());
        anyhow::ensure!(
            ahead <= START_AT_HORIZON_MS,
            "--start-at {start_at} is {} s from now; at most {} s ahead",
            ahead / 1000,
            START_AT_HORIZON_MS / 1000
        );
    }
    let base_url = args.base_url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    super::preflight::check_ready(&http, &base_url).await?;
    let served = super::preflight::catalogue_size(&http, &base_url).await?;
    super::preflight::check_products(args.journeys.products, served)?;
    let shard_to_stdout = args.generator.shard.as_deref() == Some(Path::new("-"));
    for path in [
        &args.output.history,
        &args.output.json,
        &args.generator.shard,
    ]
    .into_iter()
    .flatten()
    .filter(|path| path.as_path() != Path::new("-"))
    {
        writable(path)?;
    }
    if let Some(start_at) = args.generator.start_at {
        let now = generators::unix_ms();
        // The agreed start, not readiness: the shop answered the preflight above.
        tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(now))).await;
    }
    let started_unix_ms = generators::unix_ms();

    let plan = LoadPlan {
        base_url: base_url.clone(),
        users,
        duration: Duration::from_secs(args.duration),
        rate: args.closed_loop.rate.map(|rate| share.part(rate).max(1)),
        request_timeout: Duration::from_secs(5),
    };
    let shop = Shopfront {
        products: args.journeys.products,
        users: args.journeys.seeded_users,
        first_user: share.before(args.closed_loop.users) as u32,
        password: domain::seed::seed_user_password(args.journeys.seed),
        browse_weight: args.journeys.browse,
        buy_weight: args.journeys.buy,
    };
    let open_loop = args.arrival.plan(
        &plan.base_url,
        plan.duration,
        plan.request_timeout,
        args.journeys.seed,
    );
    let run = match open_loop {
        Some(open_loop) => {
            let run = open_loop::command::run(&open_loop, &shop).await?;
            // Open-loop latency already runs from each request's due time: nothing to
            // back-fill, so the corrected figure is the measured one.
            let corrected = loadtest_results::analysis::success_histogram(&run.records);
            load::LoadRun {
                records: run.records,
                corrected,
                generator_cpu_s: run.generator_cpu_s,
                wall_s: run.window_s,
            }
        }
        None => {
            let recorder = Recorder::new(Instant::now());
            let progress = progress(args.duration, &recorder);
            let run = load::run(&plan, &shop, &recorder).await;
            progress.abort();
            run?
        }
    };

    let mut gates: Vec<&Gate> = args.gates.fail_if.iter().collect();
    gates.push(&args.gates.max_error_rate);
    let summary = summarize(&plan, &run, &gates);
    if shard_to_stdout {
        eprint!("{}", describe(&summary));
    } else {
        print!("{}", describe(&summary));
    }
    if let Some(path) = &args.generator.shard {
        let generator = std::env::var("HOSTNAME").unwrap_or_else(|_| share.to_string());
        let mut out: Box<dyn std::io::Write> = if shard_to_stdout {
            Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
        } else {
            Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("write {}", path.display()))?,
            ))
        };
        generators::write_shard(
            &mut out,
            &generator,
            share,
            started_unix_ms,
            args.generator.shard_cores,
            &run,
        )
        .context("write the shard")?;
    }
    if let Some(path) = &args.output.history {
        loadtest_results::history::write_jsonl(path, &run.records)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.output.json {
        let json = serde_json::to_vec_pretty(&summary)?;
        std::fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(summary.passed)
}

/// Creates (or truncates) `path`, so an unwritable one fails before the load.
fn writable(path: &Path) -> anyhow::Result<()> {
    std::fs::File::create(path)
        .map(drop)
        .with_context(|| format!("cannot write {}: nothing was measured", path.display()))
}

/// A bar on stderr while the load runs (drawn only when stderr is a terminal): seconds
/// elapsed of the duration and requests recorded so far.
fn progress(duration_s: u64, recorder: &std::sync::Arc<Recorder>) -> tokio::task::JoinHandle<()> {
    let bar = ProgressBar::new(duration_s);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} s {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let recorder = recorder.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            bar.set_position(started.elapsed().as_secs().min(duration_s));
            bar.set_message(format!("{} requests", recorder.count()));
        }
    })
}

/// The run's figures: failures apart, latency of successes only.
fn summarize(plan: &LoadPlan, run: &load::LoadRun, gates: &[&Gate]) -> LoadSummary {
    let successes = run
        .records
        .iter()
        .filter(|record| record.outcome == Outcome::Ok)
        .count();
    let requests = run.records.len();
    let failures = requests - successes;
    let latency = latency_of_successes(run.records.iter());
    let measured = Measured {
        requests,
        successes,
        wall_s: run.wall_s,
        latency_of_successes: latency,
    };
    let verdicts: Vec<Verdict> = gates
        .iter()
        .map(|gate| gate.evaluate_run(&measured))
        .collect();
    let transactions = names(&run.records, |record| &record.transaction)
        .into_iter()
        .map(|name| {
            let records = || {
                run.records
                    .iter()
                    .filter(|record| record.transaction == name)
            };
            TransactionSummary {
                requests: records().count(),
                successes: records()
                    .filter(|record| record.outcome == Outcome::Ok)
                    .count(),
                latency_of_successes: latency_of_successes(records()),
                name,
            }
        })
        .collect();
    LoadSummary {
        base_url: plan.base_url.clone(),
        users: plan.users,
        rate_ceiling: plan.rate,
        wall_s: run.wall_s,
        requests,
        successes,
        failures,
        error_rate: (requests > 0).then(|| failures as f64 / requests as f64),
        successes_per_s: successes as f64 / run.wall_s.max(0.001),
        latency_of_successes: latency,
        // Goose's back-fill mixes failed requests in; with none failed it is honest.
        corrected: (failures == 0).then(|| run.corrected_percentiles()),
        generator_cpu_s: run.generator_cpu_s,
        transactions,
        passed: verdicts.iter().all(|verdict| verdict.passed),
        gates: verdicts,
    }
}

fn latency_of_successes<'a>(
    records: impl Iterator<Item = &'a RequestRecord>,
) -> Option<Percentiles> {
    let window = stats(records.filter(|record| record.outcome == Outcome::Ok));
    (window.requests > 0).then_some(window.latency)
}

/// What `shoplab load` prints.
fn describe(summary: &LoadSummary) -> String {
    use std::fmt::Write as _;
    let ms = |us: u64| us as f64 / 1000.0;
    let mut text = format!(
        "{} requests in {:.1} s: {} succeeded = {:.0} successful req/s; {} failed ({:.2} %)\n",
        summary.requests,
        summary.wall_s,
        summary.successes,
        summary.successes_per_s,
        summary.failures,
        summary.error_rate.unwrap_or(0.0) * 100.0,
    );
    match &summary.latency_of_successes {
        Some(latency) => {
            let _ = write!(
                text,
                "latency of successes: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                ms(latency.p50_us),
                ms(latency.p95_us),
                ms(latency.p99_us),
                ms(latency.max_us)
            );
            match &summary.corrected {
                Some(corrected) => {
                    let _ = writeln!(text, " (CO-corrected p99 {:.2} ms)", ms(corrected.p99_us));
                }
                None => text.push_str(
                    " (no CO-corrected figure: Goose's back-fill would mix the failures in)\n",
                ),
            }
        }
        None => text.push_str("latency: no request succeeded\n"),
    }
    let _ = writeln!(text, "generator used {:.1} CPU s", summary.generator_cpu_s);
    for step in &summary.transactions {
        let p99 = step
            .latency_of_successes
            .map_or("no success".to_owned(), |latency| {
                format!("p99 {:>8.2} ms", ms(latency.p99_us))
            });
        let _ = writeln!(
            text,
            "  {:<36} {:>7} requests {:>6.2}% ok  {p99}",
            step.name,
            step.requests,
            step.successes as f64 * 100.0 / step.requests.max(1) as f64,
        );
    }
    text.push_str("gates:\n");
    for verdict in &summary.gates {
        let _ = writeln!(text, "  {verdict}");
    }
    text
}
