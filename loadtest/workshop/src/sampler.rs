//! The workshop's two background loops. The sampler, once a second: drain each build's
//! recorder into one point per journey, probe every process (`/ready`, CPU and RSS from the
//! kernel), log health changes as events, and publish a tick to every open page. The
//! self-healing loop: restart a process that has exited, after the delay the page sets, as
//! a process manager would (the lab's `Target::self_heal_until` restarts at once; a room
//! needs a moment to see the red box first).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::TICK;
use super::state::{Lab, Point, ProcessView, Workshop, lock};
use domain::{Context, Topology};
use loadtest_results::analysis::stats;
use loadtest_results::component::Component;
use loadtest_results::history::{CHECKOUT, RequestRecord};

/// How long a process may take to answer `/ready` before its box turns red: longer than a
/// healthy answer under load, shorter than the tick.
const PROBE_TIMEOUT: Duration = Duration::from_millis(600);
/// How often the self-healing loop looks for exited processes.
const HEAL_POLL: Duration = Duration::from_millis(200);

/// The sampler; runs until aborted.
pub(crate) async fn run(workshop: Arc<Workshop>) {
    let http = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .pool_idle_timeout(::api::server::CLIENT_POOL_IDLE)
        .build()
        .unwrap_or_default();
    // `None` where the kernel's process table cannot be read: boxes then show no CPU/RSS.
    let mut system = System::new().ok();
    let mut last_health: HashMap<(usize, String, usize), &'static str> = HashMap::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let t_ms = workshop.now_ms();
        let mut builds = Vec::new();
        for (index, lab) in workshop.labs.iter().enumerate() {
            let (browse, buy) = drain(lab, t_ms);
            lock(&lab.series).push(browse, buy);
            let processes = probe(lab, &http, system.as_mut()).await;
            for process in &processes {
                let key = (index, process.component.clone(), process.replica);
                let before = last_health.insert(key, process.health);
                announce_health(&workshop, lab, process, before);
            }
            *lock(&lab.processes) = processes.clone();
            builds.push(json!({
                "build": lab.name(),
                "browse": browse,
                "buy": buy,
                "processes": processes,
            }));
        }
        let load = workshop.load.lock().await.status();
        let tick = json!({
            "t_ms": t_ms,
            "builds": builds,
            "events": workshop.take_unsent_events(),
            "load": load,
            "healing": workshop.healing(),
        });
        // No receiver (no page open) is fine: the next page gets the state first.
        let _ = workshop.ticks.send(Arc::from(tick.to_string()));
    }
}

/// This second's records of `lab` as one point per journey; checkouts are kept for the
/// invariant checker. Records are counted in the second they were drained (when they
/// completed), which is what a chart of "answers per second" shows.
fn drain(lab: &Lab, t_ms: u64) -> (Point, Point) {
    let records = lab.recorder.take();
    let point = |journey: &str| {
        let window = stats(records.iter().filter(|record| record.journey == journey));
        Point {
            t_ms,
            requests: window.requests,
            ok: window.ok,
            success_rate: window.success_rate,
            p99_ms: window
                .success_latency()
                .map(|latency| latency.p99_us as f64 / 1000.0),
        }
    };
    let points = (point("browse"), point("buy"));
    let checkouts: Vec<RequestRecord> = records
        .into_iter()
        .filter(|record| record.transaction == CHECKOUT)
        .collect();
    lock(&lab.checkouts).extend(checkouts);
    points
}

/// Every process of `lab`: health from `/ready` (or the platform's word where the lab cannot
/// reach the process: a swarm's tasks), CPU and memory from the kernel, and the contexts
/// it hosts from the lab's topology.
async fn probe(
    lab: &Lab,
    http: &reqwest::Client,
    mut system: Option<&mut System>,
) -> Vec<ProcessView> {
    // While a control holds the target (a deploy for seconds), the last member list stands.
    let members: Vec<(String, usize, u32, String, Option<bool>)> = match lab.target.try_lock() {
        Ok(target) => target
            .named_processes()
            .await
            .into_iter()
            .map(|process| {
                (
                    process.name,
                    process.replica,
                    process.pid.unwrap_or_default(),
                    process.url,
                    process.running,
                )
            })
            .collect(),
        Err(_) => lock(&lab.processes)
            .iter()
            .map(|view| {
                // The platform's word stands as last seen.
                let running = view.url.is_empty().then_some(view.health == "ready");
                (
                    view.component.clone(),
                    view.replica,
                    view.pid,
                    view.url.clone(),
                    running,
                )
            })
            .collect(),
    };
    let topology = lab.identity().topology.clone();
    let answers =
        futures::future::join_all(members.iter().map(|(_, _, _, url, running)| async move {
            match running {
                Some(true) => return "ready",
                Some(false) => return "down",
                None => {}
            }
            match http.get(format!("{url}/ready")).send().await {
                Ok(response) if response.status().is_success() => "ready",
                Ok(_) => "not_ready",
                Err(_) => "down",
            }
        }))
        .await;
    let pids: Vec<Pid> = members
        .iter()
        .map(|(_, _, pid, _, _)| Pid::from_u32(*pid))
        .collect();
    if let Some(system) = system.as_mut() {
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
    }
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let paused = lock(&lab.paused).clone();
    let restarts = lock(&lab.restarts).clone();
    members
        .into_iter()
        .zip(answers)
        .map(|((name, replica, pid, url, _), answer)| {
            let process = system
                .as_ref()
                .and_then(|system| system.process(Pid::from_u32(pid)));
            let alive = answer != "down";
            // The pauses and restarts the page made are the components'; a group's name
            // parses as none (or as the one context it hosts, where it is the same process).
            let component = Component::parse(&name);
            let paused = component.is_some_and(|component| paused.contains(&(component, replica)));
            let health = if paused { "paused" } else { answer };
            ProcessView {
                contexts: hosted(&topology, &name),
                component: name,
                replica,
                pid,
                health,
                uptime_s: process
                    .filter(|_| alive)
                    .map(|process| now_s.saturating_sub(process.start_time())),
                restarts: component
                    .and_then(|component| restarts.get(&(component, replica)).copied())
                    .unwrap_or(0),
                cpu_percent: process.filter(|_| alive).map(|process| process.cpu_usage()),
                rss_mib: process
                    .filter(|_| alive)
                    .map(|process| process.memory() as f64 / (1024.0 * 1024.0)),
                lab_part: component == Some(Component::FrontDoor),
                url,
            }
        })
        .collect()
}

/// The contexts the process called `name` hosts in `topology`: its group's (the monolith's
/// all seven, a service's one); none for the gateway and the front door, which host none.
fn hosted(topology: &Topology, name: &str) -> Vec<Context> {
    topology
        .groups()
        .iter()
        .find(|group| group.name() == name)
        .map(|group| group.contexts().to_vec())
        .unwrap_or_default()
}

/// Logs a box changing colour: `ready` when it answers again, `died` when it stops.
fn announce_health(
    workshop: &Workshop,
    lab: &Lab,
    process: &ProcessView,
    before: Option<&'static str>,
) {
    let name = format!("{}#{}", process.component, process.replica);
    match (before, process.health) {
        (Some(before), now) if before == now => {}
        (Some(_), "ready") => workshop.event(Some(lab.name()), "ready", format!("{name} ready")),
        (Some(_), "down") => workshop.event(
            Some(lab.name()),
            "died",
            format!("{name} is down (no answer, or its platform says it is not running)"),
        ),
        (Some(_), "not_ready") => workshop.event(
            Some(lab.name()),
            "died",
            format!("{name} answers but is not ready (a dependency it needs is down)"),
        ),
        _ => {}
    }
}

/// The self-healing loop; runs until aborted.
pub(crate) async fn self_heal(workshop: Arc<Workshop>) {
    let mut dead_since: HashMap<(usize, Component, usize), Instant> = HashMap::new();
    loop {
        tokio::time::sleep(HEAL_POLL).await;
        for (index, lab) in workshop.labs.iter().enumerate() {
            // A control holding the target may be restarting it itself: look again later.
            let Ok(mut target) = lab.target.try_lock() else {
                continue;
            };
            let exited = target.exited();
            dead_since.retain(|(lab_index, component, replica), _| {
                *lab_index != index || exited.contains(&(*component, *replica))
            });
            for (component, replica) in exited {
                let seen = *dead_since
                    .entry((index, component, replica))
                    .or_insert_with(|| {
                        workshop.event(
                            Some(lab.name()),
                            "died",
                            format!("{component}#{replica} exited"),
                        );
                        Instant::now()
                    });
                let healing = workshop.healing();
                if !healing.enabled || seen.elapsed() < Duration::from_millis(healing.delay_ms) {
                    continue;
                }
                match target.restart(component, replica).await {
                    Ok(()) => {
                        *lock(&lab.restarts).entry((component, replica)).or_default() += 1;
                        workshop.event(
                            Some(lab.name()),
                            "restarted",
                            format!(
                                "{component}#{replica} restarted by the self-healing loop, {:.1} s after it died",
                                seen.elapsed().as_secs_f64()
                            ),
                        );
                        dead_since.remove(&(index, component, replica));
                    }
                    Err(error) => {
                        workshop.event(
                            Some(lab.name()),
                            "error",
                            format!("restart {component}#{replica}: {error:#}"),
                        );
                        // Tried again after another delay, not every poll.
                        dead_since.insert((index, component, replica), Instant::now());
                    }
                }
            }
        }
    }
}
