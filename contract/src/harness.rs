//! Runs every case as a libtest-mimic trial: start a fresh target, reset it to the known
//! seed, run the case, stop the target whatever happened.
//!
//! Only the function that starts a target differs between builds; everything else here is
//! shared, so the monolith, the gateway and a compose deployment are judged identically.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::future::BoxFuture;
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

use crate::client::SEED;
use crate::{Case, Ctx};

/// Run against an already running deployment instead of starting one per case.
pub const BASE_URL_ENV: &str = "SHOPLAB_CONTRACT_BASE_URL";
pub const ADMIN_TOKEN_ENV: &str = "SHOPLAB_CONTRACT_ADMIN_TOKEN";
/// The deployment's metrics token (opens `/metrics` only).
pub const METRICS_TOKEN_ENV: &str = "SHOPLAB_CONTRACT_METRICS_TOKEN";
pub const TOKEN_SECRET_ENV: &str = "SHOPLAB_CONTRACT_TOKEN_SECRET";
/// Where the external deployment serves `/admin/*` (the gateway keeps it off its public
/// port); defaults to the base URL.
pub const ADMIN_URL_ENV: &str = "SHOPLAB_CONTRACT_ADMIN_URL";

/// How long a started target may take to answer `GET /ready` with 200.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);

/// What a case needs to know about the build under test.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    /// Where `/admin/*` is served: the base URL on the monolith, a separate port on the
    /// gateway. Without a trailing slash.
    pub admin_url: String,
    pub admin_token: String,
    /// The token that opens `/metrics` and nothing else.
    pub metrics_token: String,
    /// The HMAC secret of user tokens, so cases can mint expired ones.
    pub token_secret: String,
}

/// A running target and the future that stops it and frees what it held.
pub struct StartedTarget {
    pub target: Target,
    /// Awaited after the case, pass or fail.
    pub stop: BoxFuture<'static, Result<()>>,
}

/// Starts a fresh target (fresh database) for one case.
pub type StartFn = Arc<dyn Fn() -> BoxFuture<'static, Result<StartedTarget>> + Send + Sync>;

impl StartedTarget {
    pub fn new(
        target: Target,
        stop: impl Future<Output = Result<()>> + Send + 'static,
    ) -> StartedTarget {
        StartedTarget {
            target,
            stop: Box::pin(stop),
        }
    }
}

/// The reset the harness performs before every case.
pub fn default_reset() -> Value {
    json!({"products": 30, "stock": 10, "users": 5, "seed": SEED})
}

/// Runs every case against every build (trials named `<build>::<case>`), or only against
/// `SHOPLAB_CONTRACT_BASE_URL` (trials named `external::<case>`) when it is set.
pub fn run_main(builds: Vec<(&'static str, StartFn)>) -> ExitCode {
    let mut arguments = Arguments::from_args();
    let builds: Vec<(&'static str, StartFn)> = match external_target() {
        Ok(Some(target)) => {
            // One deployment, one database: cases would reset it under each other.
            arguments.test_threads = Some(1);
            let start: StartFn = Arc::new(move || {
                let target = target.clone();
                Box::pin(async move {
                    wait_ready(&target.base_url, READY_DEADLINE).await?;
                    Ok(StartedTarget::new(target, async { Ok(()) }))
                })
            });
            vec![("external", start)]
        }
        Ok(None) => builds,
        Err(error) => {
            eprintln!("contract: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut trials = Vec::new();
    for (build, start) in builds {
        for case in crate::cases() {
            let start = start.clone();
            let name = format!("{build}::{}", case.name);
            trials.push(Trial::test(name, move || run_case(&start, case)));
        }
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// Polls `GET /ready` until it answers 200 or the deadline passes.
pub async fn wait_ready(base_url: &str, deadline: Duration) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("build the http client")?;
    let url = format!("{}/ready", base_url.trim_end_matches('/'));
    let started = Instant::now();
    loop {
        let last = match client.get(&url).send().await {
            Ok(response) if response.status() == 200 => return Ok(()),
            Ok(response) => format!("status {}", response.status()),
            Err(error) => error.to_string(),
        };
        if started.elapsed() > deadline {
            bail!("{url} not ready after {deadline:?}: {last}");
        }
        // A poll interval, not a readiness guess: the loop only ends on a 200.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn external_target() -> Result<Option<Target>> {
    let Ok(base_url) = std::env::var(BASE_URL_ENV) else {
        return Ok(None);
    };
    let admin_token = std::env::var(ADMIN_TOKEN_ENV)
        .with_context(|| format!("{BASE_URL_ENV} is set, so {ADMIN_TOKEN_ENV} must be too"))?;
    let metrics_token = std::env::var(METRICS_TOKEN_ENV)
        .with_context(|| format!("{BASE_URL_ENV} is set, so {METRICS_TOKEN_ENV} must be too"))?;
    let token_secret = std::env::var(TOKEN_SECRET_ENV)
        .with_context(|| format!("{BASE_URL_ENV} is set, so {TOKEN_SECRET_ENV} must be too"))?;
    let base_url = base_url.trim_end_matches('/').to_owned();
    let admin_url = std::env::var(ADMIN_URL_ENV)
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| base_url.clone());
    Ok(Some(Target {
        base_url,
        admin_url,
        admin_token,
        metrics_token,
        token_secret,
    }))
}

fn run_case(start: &StartFn, case: Case) -> Result<(), Failed> {
    // One runtime per case: an in-process server lives and dies with its case, and a
    // wedged case cannot starve the others.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| format!("build a tokio runtime: {error}"))?;
    runtime
        .block_on(async {
            let StartedTarget { target, stop } = start().await.context("start the target")?;
            // The case runs in its own task so a panic in it still lets us stop the target.
            let outcome = tokio::spawn(async move {
                let ctx = Ctx::new(target)?;
                // A shared deployment may still carry faults from an earlier run; the
                // faults cases check this endpoint's answer, so here only the effect counts.
                ctx.delete("/admin/faults")
                    .admin()
                    .await
                    .context("clear faults before the case")?;
                ctx.reset(default_reset())
                    .await
                    .context("reset before the case")?;
                (case.run)(ctx).await
            })
            .await;
            let stopped = stop.await;
            match outcome {
                Ok(result) => result?,
                Err(join) => bail!("the case panicked: {}", panic_message(join)),
            }
            stopped.context("stop the target")
        })
        .map_err(|error| Failed::from(format!("{error:#}")))
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-text panic".to_owned()),
        Err(join) => join.to_string(),
    }
}
