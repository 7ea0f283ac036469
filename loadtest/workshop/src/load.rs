//! The workshop's load: one Goose attack in the background driving the journeys against
//! every running build at once (each build's scenarios carry its URL as their host and
//! record into its own recorder), started with a number of users per build, resized while
//! it runs, and stopped through Goose's controller.
//!
//! Goose runs one attack per process at a time (a global killswitch), so both builds share
//! one attack rather than getting one each; with equal weights its users are dealt out
//! round-robin over the scenarios, so each build gets the same number of users per
//! journey. Every attack is bounded in time (`--load-limit-s`): it ends by itself even if
//! nobody presses stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use goose::config::GooseConfiguration;
use goose::prelude::GooseAttack;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use super::error::ApiError;
use super::state::{LoadStatus, Running, Workshop, lock};
use loadtest_lab::journeys::scenarios;

/// The most users per build the page offers: beyond it the generator, on the same two
/// cores, measures itself more than the shop.
pub(crate) const MAX_USERS_PER_BUILD: usize = 128;
/// Per-request timeout of the generator's client, as in the lab's runs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop waits for Goose to wind its users down.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// Starts the load with `users_per_build` users on every build, or resizes the running one.
pub(crate) async fn start(
    workshop: &Arc<Workshop>,
    users_per_build: usize,
) -> Result<LoadStatus, ApiError> {
    if users_per_build == 0 || users_per_build > MAX_USERS_PER_BUILD {
        return Err(ApiError::invalid(format!(
            "users must be between 1 and {MAX_USERS_PER_BUILD} per build, not {users_per_build}"
        )));
    }
    let builds = workshop.labs.len();
    let mut control = workshop.load.lock().await;
    if control.status().running {
        let running = control.running.as_mut().expect("a running attack");
        command(
            running.controller_port,
            &format!("users {}", users_per_build * builds),
        )
        .await
        .map_err(|error| ApiError::failed(format!("resize the load: {error:#}")))?;
        running.users_per_build = users_per_build;
        workshop.event(
            None,
            "load",
            format!("load resized to {users_per_build} users per build"),
        );
        return Ok(control.status());
    }
    let mut attack_scenarios = Vec::new();
    for lab in &workshop.labs {
        let shop = lock(&lab.shop).clone();
        let url = lab.target().await?.url().to_owned();
        let built = scenarios(&shop, &lab.recorder)
            .map_err(|error| ApiError::failed(format!("build the journeys: {error:#}")))?;
        attack_scenarios.extend(built.into_iter().map(|scenario| scenario.set_host(&url)));
    }
    let controller_port = free_port()
        .map_err(|error| ApiError::failed(format!("find a port for the controller: {error}")))?;
    let config = configuration(
        users_per_build * builds,
        workshop.load_limit,
        controller_port,
    );
    let mut attack = GooseAttack::initialize_with_config(config)
        .map_err(|error| ApiError::failed(format!("configure the load generator: {error}")))?;
    for scenario in attack_scenarios {
        attack = attack.register_scenario(scenario);
    }
    let stop_requested = Arc::new(AtomicBool::new(false));
    let task = {
        let workshop = workshop.clone();
        let stop_requested = stop_requested.clone();
        tokio::spawn(async move {
            let outcome = attack.execute().await;
            match outcome {
                Err(error) => workshop.event(None, "error", format!("the load failed: {error}")),
                Ok(_) if !stop_requested.load(Ordering::SeqCst) => workshop.event(
                    None,
                    "load",
                    "load stopped by itself (its time limit, --load-limit-s)",
                ),
                Ok(_) => {}
            }
        })
    };
    control.running = Some(Running {
        users_per_build,
        started_at_ms: workshop.now_ms(),
        controller_port,
        stop_requested,
        attack: task,
    });
    workshop.event(
        None,
        "load",
        format!(
            "load started: {users_per_build} users per build (browse and buy), at most {} s",
            workshop.load_limit.as_secs()
        ),
    );
    Ok(control.status())
}

/// Stops the load, if any, and waits until its users are gone. `why` goes into the event.
pub(crate) async fn stop(workshop: &Arc<Workshop>, why: &str) -> Result<LoadStatus, ApiError> {
    let mut control = workshop.load.lock().await;
    let Some(running) = control.running.take() else {
        return Ok(LoadStatus::default());
    };
    if running.attack.is_finished() {
        return Ok(LoadStatus::default());
    }
    running.stop_requested.store(true, Ordering::SeqCst);
    if let Err(error) = command(running.controller_port, "shutdown").await {
        // Without the controller the attack still ends at its time limit; say so.
        control.running = Some(running);
        return Err(ApiError::failed(format!("stop the load: {error:#}")));
    }
    let mut attack = running.attack;
    if tokio::time::timeout(STOP_DEADLINE, &mut attack)
        .await
        .is_err()
    {
        attack.abort();
        workshop.event(None, "error", "the load did not stop in time; abandoned it");
    }
    workshop.event(None, "load", format!("load stopped ({why})"));
    Ok(control.status())
}

fn configuration(users: usize, limit: Duration, controller_port: u16) -> GooseConfiguration {
    let mut config = GooseConfiguration::default();
    // No `host`: Goose lets a configured host override every scenario's own, and each
    // scenario names its build's URL.
    config.users = Some(users);
    // Every user starts within the first 100 ms, as in the lab's runs.
    config.increase_rate = Some((users * 10).to_string());
    config.run_time = Some(limit.as_secs().to_string());
    config.timeout = Some(format!("{:.3}", REQUEST_TIMEOUT.as_secs_f64()));
    // The controller is how the page stops and resizes the attack (telnet, loopback only).
    config.no_telnet = false;
    config.telnet_host = Some("127.0.0.1".into());
    config.telnet_port = Some(controller_port);
    config.no_autostart = false;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.quiet = 1;
    config
}

/// Sends one command to the Goose controller and reads its first line of answer. The
/// controller binds its port as the attack starts, so a command sent right after a start
/// is retried for a moment.
async fn command(port: u16, line: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => break stream,
            Err(error) if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("connect to the generator's controller on port {port}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    stream.flush().await?;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut answer)).await;
    Ok(answer.trim().to_owned())
}

/// A loopback port free a moment ago (the controller binds it right after).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
