//! `shoplab load`: the journeys against any running deployment — one of ours, or a user's
//! own cluster — with the same records and summary the experiments use.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::journeys::{Recorder, Shopfront};
use super::load::{self, LoadPlan};
use super::open_loop::{self, command::ArrivalArgs};
use loadtest_results::analysis::{names, stats};
use loadtest_results::history::RequestRecord;

#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// The shop's public base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub base_url: String,
    /// Concurrent users (closed loop: each waits for its answer).
    #[arg(long, default_value_t = 8)]
    pub users: usize,
    /// A ceiling on requests per second over all users: Goose is closed-loop, so this caps
    /// the rate and is not a target (for a target rate use --arrival-rate).
    #[arg(long)]
    pub rate: Option<usize>,
    /// How long, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Products the shop was seeded with (ids 1..=N).
    #[arg(long, default_value_t = 1_000)]
    pub products: u32,
    /// Seeded users (user1@shoplab.test ..); their password is `shoplab-<seed>`.
    #[arg(long, default_value_t = 100)]
    pub seeded_users: u32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Relative weight of the browse journey (list, search, product page).
    #[arg(long, default_value_t = 4)]
    pub browse: usize,
    /// Relative weight of the buy journey (log in, add to cart, check out, read the order).
    #[arg(long, default_value_t = 1)]
    pub buy: usize,
    /// Also write every request as JSON lines here (what `shoplab check --history` reads).
    #[arg(long)]
    pub history: Option<PathBuf>,
    #[command(flatten)]
    pub arrival: ArrivalArgs,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let plan = LoadPlan {
        base_url: args.base_url.trim_end_matches('/').to_owned(),
        users: args.users,
        duration: Duration::from_secs(args.duration.max(1)),
        rate: args.rate,
        request_timeout: Duration::from_secs(5),
    };
    let shop = Shopfront {
        products: args.products,
        users: args.seeded_users,
        password: domain::seed::seed_user_password(args.seed),
        browse_weight: args.browse,
        buy_weight: args.buy,
    };
    let request_timeout = Duration::from_secs(5);
    if let Some(plan) = args
        .arrival
        .plan(&plan.base_url, plan.duration, request_timeout, args.seed)
    {
        let run = open_loop::command::run(&plan, &shop).await?;
        return write_history(args.history.as_deref(), &run.records);
    }
    let recorder = Recorder::new(Instant::now());
    let run = load::run(&plan, &shop, &recorder).await?;
    let all = stats(&run.records);
    println!(
        "{} requests in {:.1} s = {:.0} req/s; {} failed; p50 {:.2} ms, p99 {:.2} ms (CO-corrected p99 {:.2} ms); generator used {:.1} CPU s",
        all.requests,
        run.wall_s,
        all.requests as f64 / run.wall_s.max(0.001),
        all.requests - all.ok,
        all.latency.p50_us as f64 / 1000.0,
        all.latency.p99_us as f64 / 1000.0,
        run.corrected.p99_us as f64 / 1000.0,
        run.generator_cpu_s,
    );
    for name in names(&run.records, |record| &record.transaction) {
        let step = stats(
            run.records
                .iter()
                .filter(|record| record.transaction == name),
        );
        println!(
            "  {name:<36} {:>7} requests {:>6.2}% ok  p99 {:>8.2} ms",
            step.requests,
            step.success_rate.unwrap_or(0.0) * 100.0,
            step.latency.p99_us as f64 / 1000.0
        );
    }
    write_history(args.history.as_deref(), &run.records)
}

fn write_history(path: Option<&Path>, records: &[RequestRecord]) -> anyhow::Result<()> {
    if let Some(path) = path {
        loadtest_results::history::write_jsonl(path, records)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
