//! `shoplab load --arrival-rate R`: the open-loop mode of `shoplab load`, its flags and the
//! summary it prints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{OpenLoopPlan, OpenLoopRun, Rate};
use crate::journeys::{Recorder, Shopfront, Step};
use loadtest_results::analysis::{names, stats};
use loadtest_results::experiments::capacity::Arrivals;
use loadtest_results::history::{Outcome, RequestRecord};

/// Open-loop flags of `shoplab load`.
#[derive(Clone, Debug, clap::Args)]
#[command(next_help_heading = "Open loop (a target arrival rate)")]
pub struct ArrivalArgs {
    /// Journeys started per second, whether or not the shop keeps up (open loop). Every
    /// request's latency counts from the moment it was due. Without it the load is
    /// Goose's closed loop (--users).
    #[arg(long, value_name = "PER_S", value_parser = positive_rate, conflicts_with_all = ["users", "rate"])]
    pub arrival_rate: Option<f64>,
    /// Ramp the arrival rate linearly from --arrival-rate to this by the end.
    #[arg(long, value_name = "PER_S", value_parser = positive_rate, requires = "arrival_rate")]
    pub ramp_to: Option<f64>,
    /// How arrivals are spaced: independent (poisson) or evenly (uniform).
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson, requires = "arrival_rate")]
    pub arrivals: Arrivals,
    /// Journeys in flight at most; an arrival beyond the cap is dropped and counted.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..), requires = "arrival_rate")]
    pub max_in_flight: u64,
    /// Each arrival runs this one browse step instead of a weighted journey (to compare
    /// with a single-URL tool such as oha).
    #[arg(long, value_name = "list|search|product-page", requires = "arrival_rate", value_parser = browse_step)]
    pub only: Option<Step>,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?} is not a rate above 0 (journeys per second)"
        )),
    }
}

fn browse_step(text: &str) -> Result<Step, String> {
    match text {
        "list" => Ok(Step::List),
        "search" => Ok(Step::Search),
        "product-page" => Ok(Step::ProductPage),
        _ => Err(format!(
            "{text:?} is not a browse step: list, search or product-page (the buy steps need the session of the steps before them)"
        )),
    }
}

impl ArrivalArgs {
    /// The open-loop plan these flags ask for, or `None` for the closed loop.
    pub fn plan(
        &self,
        base_url: &str,
        duration: Duration,
        request_timeout: Duration,
        seed: u64,
    ) -> Option<OpenLoopPlan> {
        let from = self.arrival_rate?;
        Some(OpenLoopPlan {
            base_url: base_url.to_owned(),
            rate: Rate {
                from_per_s: from,
                to_per_s: self.ramp_to.unwrap_or(from),
            },
            duration,
            arrivals: self.arrivals,
            max_in_flight: self.max_in_flight as usize,
            request_timeout,
            seed,
            only: self.only,
        })
    }
}

/// Runs `plan` and prints what it found; returns the run for the caller's history file.
pub async fn run(plan: &OpenLoopPlan, shop: &Shopfront) -> anyhow::Result<OpenLoopRun> {
    let recorder: Arc<Recorder> = Recorder::new(Instant::now());
    let run = super::run(plan, shop, &recorder).await?;
    print!("{}", summary(plan, &run));
    Ok(run)
}

/// The open-loop summary: what was offered, what started, what succeeded and how fast.
pub fn summary(plan: &OpenLoopPlan, run: &OpenLoopRun) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let rate = if plan.rate.from_per_s == plan.rate.to_per_s {
        format!("{:.1}/s", plan.rate.from_per_s)
    } else {
        format!(
            "{:.1}/s ramping to {:.1}/s",
            plan.rate.from_per_s, plan.rate.to_per_s
        )
    };
    let _ = writeln!(
        text,
        "open loop, {} arrivals at {rate} over {:.1} s: {} due, {} started ({:.1}/s), {} dropped at the cap of {} in flight ({:.2} %)",
        plan.arrivals.as_str(),
        run.window_s,
        run.due,
        run.started,
        run.started as f64 / run.window_s,
        run.dropped,
        plan.max_in_flight,
        run.dropped as f64 / run.due.max(1) as f64 * 100.0,
    );
    let ok: Vec<&RequestRecord> = run
        .records
        .iter()
        .filter(|record| record.outcome == Outcome::Ok)
        .collect();
    let successes = stats(ok.iter().copied());
    let failed = run.records.len() - ok.len();
    let latency = if ok.is_empty() {
        "no request succeeded".to_owned()
    } else {
        format!(
            "successes p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (from the moment each was due)",
            successes.latency.p50_us as f64 / 1000.0,
            successes.latency.p99_us as f64 / 1000.0,
            successes.latency.max_us as f64 / 1000.0,
        )
    };
    let _ = writeln!(
        text,
        "{} requests, {} ok ({:.0} ok req/s over the window), {failed} failed; {latency}; generator used {:.1} CPU s in {:.1} s",
        run.records.len(),
        ok.len(),
        ok.len() as f64 / run.window_s,
        run.generator_cpu_s,
        run.wall_s,
    );
    for name in names(&run.records, |record| &record.transaction) {
        let all = run
            .records
            .iter()
            .filter(|record| record.transaction == name);
        let requests = all.clone().count();
        let good = stats(all.filter(|record| record.outcome == Outcome::Ok));
        let _ = writeln!(
            text,
            "  {name:<36} {requests:>7} requests {:>6.2}% ok  p99 {:>8.2} ms",
            good.requests as f64 / requests.max(1) as f64 * 100.0,
            good.latency.p99_us as f64 / 1000.0
        );
    }
    text
}
