//! Open-loop load: journeys arrive at a target rate whether or not the shop keeps up.
//!
//! Goose is closed-loop: a fixed number of users, each waiting for its answer before its
//! next request, so a slow shop slows the generator down and its slowness is under-counted
//! (coordinated omission). Goose has no arrival-rate mode — it is an open request upstream
//! since 2020 (tag1consulting/goose#87) — so the lab has its own, here, over the same
//! journey definitions (`crate::journeys`): k6's `constant-arrival-rate` and
//! `ramping-arrival-rate`, wrk2's `-R`.
//!
//! - Each arrival runs one whole journey (browse or buy, by the journeys' weights; or one
//!   browse step alone, `only`), due at a time fixed in advance by the schedule.
//! - A request's latency is measured from the moment it was due, not from when it was
//!   sent: if the generator or the shop is late, the wait is in the figure. Coordinated
//!   omission is impossible by construction, with nothing to back-fill.
//! - At most `max_in_flight` journeys run at once. An arrival due while the cap is reached
//!   is dropped and counted (k6's `dropped_iterations`), never silently skipped or sent
//!   late; a run with drops did not offer the rate it was asked to.
//! - The generator's own CPU is measured the same way as for Goose (`load::own_cpu_seconds`).

mod client;
pub mod command;
pub mod schedule;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{Rng as _, SeedableRng as _};

use crate::journeys::{Journey, Recorder, Session, Shopfront, Step};
use crate::load::own_cpu_seconds;
use client::ArrivalClient;
use loadtest_results::experiments::capacity::Arrivals;
use loadtest_results::history::RequestRecord;
pub use schedule::Rate;

/// One open-loop run.
#[derive(Clone, Debug)]
pub struct OpenLoopPlan {
    pub base_url: String,
    pub rate: Rate,
    /// The window in which arrivals are due; in-flight journeys finish after it.
    pub duration: Duration,
    pub arrivals: Arrivals,
    pub max_in_flight: usize,
    pub request_timeout: Duration,
    /// Seeds the Poisson gaps and the choice of journey, so a run can be repeated.
    pub seed: u64,
    /// Each arrival runs this one step instead of a weighted journey (a browse step: the
    /// buy steps need the session of the steps before them).
    pub only: Option<Step>,
}

/// What an open-loop run produced.
#[derive(Debug)]
pub struct OpenLoopRun {
    pub records: Vec<RequestRecord>,
    /// Arrivals the schedule had due in the window.
    pub due: usize,
    /// Arrivals started; `due - started` were dropped.
    pub started: usize,
    pub dropped: usize,
    /// The window's length, the denominator of every rate.
    pub window_s: f64,
    /// From the start to the last journey's end (the window and the drain after it).
    pub wall_s: f64,
    /// CPU seconds the generator process used (user + system) over `wall_s`.
    pub generator_cpu_s: f64,
}

/// The seeded users who have logged in, by index, with their tokens. A buy arrival of a
/// user found here goes on with its token, as a Goose buy user logs in once and then loops:
/// a login per arrival would measure the password hash (deliberately slow), not the shop.
/// Shared across the runs of one ramp, so every step does not log everyone in again.
#[derive(Clone, Debug, Default)]
pub struct Sessions(Arc<Mutex<HashMap<usize, Session>>>);

impl Sessions {
    fn get(&self, user: usize) -> Option<Session> {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&user)
            .cloned()
    }

    /// How many users have a session.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keep(&self, user: usize, session: Session) {
        self.0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(user, session);
    }
}

/// Logs in every seeded user of `shop`, `at_once` at a time, and keeps their sessions: what
/// a capacity ramp does before its first step, so that no step pays for first logins.
///
/// Without it a user logged in at its first buy arrival, and which step that was depended
/// on the arrival count and the journey draws: the first steps up to about 117 journeys/s
/// carried tens of password hashes (deliberately slow, about 40 ms of a core each) on top
/// of their journeys, and one such burst decided a build's capacity (micro read 65/s in two
/// quick runs and 378/s in four others). Goose users log in once before their loop too.
/// Returns the requests it sent; a user whose login failed logs in at its first buy arrival.
pub async fn log_in_everyone(
    base_url: &str,
    shop: &Shopfront,
    recorder: &Arc<Recorder>,
    sessions: &Sessions,
    request_timeout: Duration,
    at_once: usize,
) -> anyhow::Result<Vec<RequestRecord>> {
    use futures::StreamExt as _;
    let http = reqwest::Client::builder()
        .timeout(request_timeout)
        .build()
        .context("build the HTTP client for the logins")?;
    let base_url: Arc<str> = base_url.trim_end_matches('/').into();
    futures::stream::iter(0..shop.users.max(1) as usize)
        .map(|user| {
            let mut client = ArrivalClient {
                http: http.clone(),
                base_url: base_url.clone(),
                recorder: recorder.clone(),
                session: Session::default(),
                index: user,
                due: None,
            };
            async move {
                let Ok(()) = Step::LogIn.run(&mut client, shop).await;
                if client.session.token.is_some() {
                    sessions.keep(user, client.session);
                }
            }
        })
        .buffer_unordered(at_once.max(1))
        .collect::<()>()
        .await;
    Ok(recorder.take())
}

/// Runs `plan` from now, recording into `recorder`, with no one logged in yet.
pub async fn run(
    plan: &OpenLoopPlan,
    shop: &Shopfront,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<OpenLoopRun> {
    run_from(plan, shop, recorder, Instant::now(), &Sessions::default()).await
}

/// Runs `plan` with the schedule counted from `start`, the logged-in users in `sessions`. A `start` in the past makes the
/// arrivals due before now late from the first moment — what a stalled generator would
/// be — and their wait shows in their latency (the tests use this).
pub async fn run_from(
    plan: &OpenLoopPlan,
    shop: &Shopfront,
    recorder: &Arc<Recorder>,
    start: Instant,
    sessions: &Sessions,
) -> anyhow::Result<OpenLoopRun> {
    anyhow::ensure!(
        plan.max_in_flight >= 1,
        "the in-flight cap must be at least 1"
    );
    if let Some(step) = plan.only {
        anyhow::ensure!(
            step.journey() == Journey::Browse,
            "only a browse step can run alone (the buy steps need the session of the steps before them), not {}",
            step.name()
        );
    }
    let journeys: Vec<(Journey, usize)> = [
        (Journey::Browse, shop.browse_weight),
        (Journey::Buy, shop.buy_weight),
    ]
    .into_iter()
    .filter(|(_, weight)| *weight > 0)
    .collect();
    anyhow::ensure!(
        plan.only.is_some() || !journeys.is_empty(),
        "both journey weights are 0"
    );
    // One connection pool for every arrival, as a real client fleet behind one proxy would
    // have; its idle connections are kept up to the cap so arrivals rarely pay a connect.
    let http = reqwest::Client::builder()
        .timeout(plan.request_timeout)
        .pool_max_idle_per_host(plan.max_in_flight)
        .pool_idle_timeout(loadtest_platform::CLIENT_POOL_IDLE)
        .build()
        .context("build the open-loop HTTP client")?;
    let base_url: Arc<str> = plan.base_url.trim_end_matches('/').into();
    let shop = Arc::new(shop.clone());
    let times = schedule::due_times(plan.rate, plan.duration, plan.arrivals, plan.seed);
    let mut choose = rand::rngs::StdRng::seed_from_u64(plan.seed ^ 0x6a6f_7572_6e65_7973);
    let total_weight: usize = journeys.iter().map(|(_, weight)| weight).sum();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(plan.max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let mut dropped = 0;
    let cpu_before = own_cpu_seconds();
    for (index, offset) in times.iter().enumerate() {
        let due = start + *offset;
        tokio::time::sleep_until(due.into()).await;
        // Reap what has finished so the set stays as small as what is in flight.
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let user = index % shop.users.max(1) as usize;
        let session = sessions.get(user);
        let mut steps: &'static [Step] = match plan.only {
            Some(Step::List) => &[Step::List],
            Some(Step::Search) => &[Step::Search],
            Some(_) => &[Step::ProductPage],
            None => {
                let mut pick = choose.random_range(0..total_weight);
                let mut chosen = journeys[0].0;
                for (journey, weight) in &journeys {
                    if pick < *weight {
                        chosen = *journey;
                        break;
                    }
                    pick -= weight;
                }
                chosen.steps()
            }
        };
        // A seeded user who has logged in before goes on with its token (`Sessions`).
        if steps.first() == Some(&Step::LogIn) && session.is_some() {
            steps = &steps[1..];
        }
        let mut client = ArrivalClient {
            http: http.clone(),
            base_url: base_url.clone(),
            recorder: recorder.clone(),
            session: session.unwrap_or_default(),
            index: user,
            due: Some(due),
        };
        let shop = shop.clone();
        let sessions = sessions.clone();
        tasks.spawn(async move {
            let _permit = permit;
            for step in steps {
                let Ok(()) = step.run(&mut client, &shop).await;
            }
            if client.session.token.is_some() {
                sessions.keep(user, client.session);
            }
        });
    }
    tokio::time::sleep_until((start + plan.duration).into()).await;
    while tasks.join_next().await.is_some() {}
    let wall_s = start.elapsed().as_secs_f64();
    Ok(OpenLoopRun {
        records: recorder.take(),
        due: times.len(),
        started: times.len() - dropped,
        dropped,
        window_s: plan.duration.as_secs_f64(),
        wall_s,
        generator_cpu_s: own_cpu_seconds() - cpu_before,
    })
}
