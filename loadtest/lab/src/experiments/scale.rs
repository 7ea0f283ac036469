//! Scale: the same load before and after one more replica of the bottleneck — the monolith
//! gets a second whole process behind the front door; micro a second replica of the process
//! that used the most of its CPU quota, balanced by its callers (or, for the gateway, by the
//! front door). Reported as req/s and req/s per CPU second of the system under test, before
//! and after; what the added process bought per core of quota and per MiB of memory it
//! costs; and how the second half's requests were spread over the replicas, as the
//! balancer in front of them counted them.
//!
//! Every shop process is first held to the profile's quota (`scale_quota_cores`, a
//! capability of the platform's: [`Target::quota_every_process`]), the added one too, from
//! its start. On a machine whose shop has one core, processes without quotas share it, and
//! a second replica adds contention rather than CPU; under quotas the busiest process is
//! held at its quota while the core still has room, so one more of it adds CPU that was
//! there to use. The bottleneck is the process with the highest utilisation: CPU seconds
//! over what its quota allowed in the first half (`cpu / (quota × replicas × wall)`).
//! Where several processes tie for it (within [`TIE_MARGIN`] of the busiest, all above
//! [`TIE_FLOOR`]), one more replica of only one of them moves the limit to the next: the
//! microservices get one more replica of each, as far as the shop's cores hold their
//! quotas, and the gain is priced per all the quotas added. The monolith still gets one
//! more whole process. A tied process the platform cannot replicate, or that no core has
//! room for, is recorded in `not_replicated` with why, never skipped in silence.
//! Where the platform holds no quota the result says why, and the busiest service by CPU
//! seconds gets the replica, as before quotas.
//!
//! [`Target::quota_every_process`]: loadtest_platform::Target::quota_every_process

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Experiment;
use crate::load;
use loadtest_platform::{Meter, Probe, spread};
use loadtest_results::analysis::{stats, window};
use loadtest_results::component::{Build, Component};
use loadtest_results::experiments::scale::{
    Added, Gain, Half, NotReplicated, Quota, ReplicaSpread, Scale, TIE_FLOOR, TIE_MARGIN,
    Utilisation,
};

pub async fn run(experiment: &mut Experiment<'_>) -> anyhow::Result<Scale> {
    let mut quota = Quota::default();
    let mut in_force = None;
    if let Some(cores) = experiment.profile.scale_quota_cores {
        experiment.step(&format!("holding every process to {cores:.2} cores"));
        let injection = experiment.target.quota_every_process(cores).await?;
        match &injection.not_realized {
            Some(why) => quota.unavailable = Some(why.clone()),
            None => {
                quota.cores = Some(cores);
                quota.note = injection.note.clone();
                in_force = Some(injection);
            }
        }
    }
    let measured = measure(experiment, quota.cores).await;
    // Lifted whatever happened, so what runs after (the checks, another experiment) runs
    // as it was started.
    if let Some(injection) = in_force {
        experiment.target.lift(injection).await?;
    }
    let mut scale = measured?;
    scale.quota = quota;
    Ok(scale)
}

/// What one half measured of each component: its replicas and their CPU seconds together.
struct Measured {
    half: Half,
    by_component: Vec<(Component, usize, f64)>,
    wall_s: f64,
}

async fn measure(experiment: &mut Experiment<'_>, quota: Option<f64>) -> anyhow::Result<Scale> {
    let profile = experiment.profile;
    let users = profile.levels.last().copied().unwrap_or(16);
    let plan = load::LoadPlan {
        users,
        duration: profile.scale_duration,
        ..experiment.plan()
    };
    experiment.step(&format!("one replica, {users} users"));
    let first = half(experiment, &plan, 1).await?;
    let utilisation: Vec<(Component, Utilisation)> = match quota {
        Some(cores) => utilisation_of(&first.by_component, cores, first.wall_s),
        None => Vec::new(),
    };
    let (wanted, mut not_replicated) = match (experiment.target.build, quota) {
        (Build::Monolith, _) => (vec![Component::Monolith], Vec::new()),
        (Build::Micro, Some(cores)) if !utilisation.is_empty() => with_room(
            &bottlenecks(&utilisation),
            &utilisation,
            cores,
            experiment.sut_cores,
        ),
        (Build::Micro, _) => (vec![hottest(&first.by_component)], Vec::new()),
    };
    // One more replica of each; one the platform refuses is recorded with its reason and
    // the others still run. With none added there is no second half to measure.
    let mut scaled: Vec<(Component, usize)> = Vec::new();
    for component in wanted {
        experiment.step(&format!("adding a replica of {component}"));
        match experiment.target.add_replica(component).await {
            Ok(replicas) => scaled.push((component, replicas)),
            Err(error) => not_replicated.push(NotReplicated {
                process: component.to_string(),
                why: format!("the platform could not add a replica: {error:#}"),
            }),
        }
    }
    let Some(&(component, replicas)) = scaled.first() else {
        let why: Vec<String> = not_replicated
            .iter()
            .map(|left| format!("{}: {}", left.process, left.why))
            .collect();
        anyhow::bail!("no replica could be added ({})", why.join("; "));
    };
    let processes = experiment.target.processes().await;
    let new_processes: Vec<_> = scaled
        .iter()
        .map(|(component, replicas)| {
            let process = processes
                .iter()
                .find(|process| process.component == *component && process.replica == *replicas);
            (*component, *replicas, process.cloned())
        })
        .collect();
    experiment.step(&format!(
        "{} replicas of {}, {users} users",
        replicas,
        scaled
            .iter()
            .map(|(component, _)| component.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    ));
    let counted = experiment.target.spread_source(component).await;
    let http = reqwest::Client::builder()
        .pool_idle_timeout(loadtest_platform::CLIENT_POOL_IDLE)
        .build()?;
    let counters_before = match &counted {
        Some(source) => Some(source.read(&http).await?),
        None => None,
    };
    let second = half(experiment, &plan, replicas).await?;
    let spread = match (&counted, counters_before) {
        (Some(source), Some(before)) => Some(ReplicaSpread {
            counted_by: source.counted_by.to_owned(),
            replicas: spread::difference(&before, &source.read(&http).await?),
        }),
        _ => None,
    };
    // Their memory after a half of serving, when their caches and pools have filled.
    let added: Vec<Added> = new_processes
        .into_iter()
        .map(|(component, replicas, process)| Added {
            process: format!("{component}#{replicas}"),
            rss_mib: process
                .as_ref()
                .and_then(|process| process.pid)
                .map(|pid| Meter::new().sample(&[Probe::Pid(pid)]).1)
                .filter(|mib| *mib > 0.0),
            cpu_cores: process.and_then(|process| process.cpu_quota_cores),
        })
        .collect();
    let (before, after) = (first.half, second.half);
    Ok(Scale {
        component: component.to_string(),
        users,
        speedup: before.speedup_to(&after),
        gain: Some(Gain::of(&before, &after, &added)),
        before,
        after,
        sut_cores: experiment.sut_cores,
        cpu_by_process: first
            .by_component
            .iter()
            .map(|(component, _, cpu)| (component.to_string(), *cpu))
            .collect(),
        spread,
        quota: Quota::default(),
        utilisation: utilisation.into_iter().map(|(_, used)| used).collect(),
        added,
        not_replicated,
    })
}

/// Each shop process's CPU against what a quota of `cores` let its replicas use over
/// `wall_s`, busiest first. The front door and the fault proxies are the lab's, under no
/// quota, and left out.
fn utilisation_of(
    by_component: &[(Component, usize, f64)],
    cores: f64,
    wall_s: f64,
) -> Vec<(Component, Utilisation)> {
    let mut found: Vec<(Component, Utilisation)> = by_component
        .iter()
        .filter(|(component, _, _)| *component != Component::FrontDoor)
        .map(|(component, replicas, cpu_s)| {
            let allowed = cores * *replicas as f64 * wall_s;
            (
                *component,
                Utilisation {
                    process: component.to_string(),
                    replicas: *replicas,
                    cpu_s: *cpu_s,
                    utilisation: if allowed > 0.0 { cpu_s / allowed } else { 0.0 },
                },
            )
        })
        .collect();
    found.sort_by(|a, b| b.1.utilisation.total_cmp(&a.1.utilisation));
    found
}

/// The process that used the most of its quota: the one the quota holds back first.
/// `None` without figures (no quota).
fn bottleneck(utilisation: &[(Component, Utilisation)]) -> Option<Component> {
    // The first of equal maxima, as `bottlenecks`' stable sort and `Scale::bottleneck` pick.
    utilisation
        .iter()
        .reduce(|busiest, next| {
            if next.1.utilisation > busiest.1.utilisation {
                next
            } else {
                busiest
            }
        })
        .map(|(component, _)| *component)
}

/// The bottlenecks, busiest first: the busiest process, and with it every process tied
/// with it — within [`TIE_MARGIN`] of its utilisation, both at [`TIE_FLOOR`] or above
/// (see there for why those numbers). Below the floor the busiest alone, as without ties.
/// Empty without figures (no quota).
fn bottlenecks(utilisation: &[(Component, Utilisation)]) -> Vec<Component> {
    let Some(top) = bottleneck(utilisation) else {
        return Vec::new();
    };
    let busiest = utilisation
        .iter()
        .map(|(_, used)| used.utilisation)
        .fold(f64::MIN, f64::max);
    if busiest < TIE_FLOOR {
        return vec![top];
    }
    let mut tied: Vec<&(Component, Utilisation)> = utilisation
        .iter()
        .filter(|(_, used)| {
            used.utilisation >= TIE_FLOOR && used.utilisation >= busiest - TIE_MARGIN
        })
        .collect();
    tied.sort_by(|a, b| b.1.utilisation.total_cmp(&a.1.utilisation));
    tied.into_iter().map(|(component, _)| *component).collect()
}

/// Of `wanted` (busiest first), those whose quota of `cores` still fits in the shop's
/// `sut_cores` beside every running process's, and the rest as not replicated, with why.
/// Past the cores the core, not the quota, would limit the added processes, and the gain
/// per added core would price CPU that was never there. The busiest always gets its
/// replica, as before ties (and a shop already over its cores is the profile's choice,
/// said in its quota).
fn with_room(
    wanted: &[Component],
    utilisation: &[(Component, Utilisation)],
    cores: f64,
    sut_cores: usize,
) -> (Vec<Component>, Vec<NotReplicated>) {
    let running: usize = utilisation.iter().map(|(_, used)| used.replicas).sum();
    // A hair under one quota of slack, so 10 quotas of 0.1 fill 1 core despite rounding.
    let room = ((sut_cores as f64 - running as f64 * cores) / cores + 1e-9).floor();
    let room = (room.max(0.0) as usize).max(1);
    let (fits, over) = wanted.split_at(room.min(wanted.len()));
    let left_out = over
        .iter()
        .map(|component| NotReplicated {
            process: component.to_string(),
            why: format!(
                "no room: tied for the bottleneck, but the shop's {} already held {} quotas of \
                 {cores:.2} cores (the running processes' and the {} added); one more would be \
                 limited by the core, not by its quota",
                if sut_cores == 1 {
                    "1 core".to_owned()
                } else {
                    format!("{sut_cores} cores")
                },
                running + fits.len(),
                fits.len()
            ),
        })
        .collect();
    (fits.to_vec(), left_out)
}

/// Without quotas: the service that used the most CPU (the gateway and the front door are
/// not services); catalog, which every browse step calls, where the target read no CPU at
/// all.
fn hottest(by_component: &[(Component, usize, f64)]) -> Component {
    by_component
        .iter()
        .filter(|(component, _, _)| matches!(component, Component::Service(_)))
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map_or(
            Component::Service(domain::Context::Catalog),
            |(component, _, _)| *component,
        )
}

/// How often a half samples the CPU of every shop process: the measured window starts at
/// the first sample after the warm-up, so this is how much later than the warm-up's end it
/// may start.
const CPU_SAMPLE: Duration = Duration::from_millis(100);

/// The longest a half waits for its buy users' logins before it gives up: at 0.1 core a
/// process does about two Argon2 logins a second.
const WARM_UP_CEILING: Duration = Duration::from_secs(60);

/// One half: the load until every buy user has logged in (the warm-up, left out), then
/// `plan.duration` measured. CPU is sampled every [`CPU_SAMPLE`] through the half, so the
/// measured window's CPU and its requests cover the same span: from the first sample after
/// the last login was answered to the last sample.
async fn half(
    experiment: &mut Experiment<'_>,
    plan: &load::LoadPlan,
    replicas: usize,
) -> anyhow::Result<Measured> {
    let members = experiment.target.probes().await;
    let probes: Vec<Probe> = members.iter().map(|(_, probe)| probe.clone()).collect();
    let recorder = experiment.recorder(Instant::now());
    let samples = Arc::new(Mutex::new(Vec::<CpuSample>::new()));
    let measured_for = plan.duration;
    let logins_expected = experiment.shop.buy_weight > 0;
    let stop = {
        let (recorder, samples) = (recorder.clone(), samples.clone());
        async move {
            let mut meter = Meter::new();
            let mut tick = tokio::time::interval(CPU_SAMPLE);
            loop {
                tick.tick().await;
                let at_ms = recorder.now_ms();
                let cpu_s = probes
                    .iter()
                    .map(|probe| meter.sample(std::slice::from_ref(probe)).0)
                    .collect();
                lock(&samples).push(CpuSample { at_ms, cpu_s });
                let warm_at = match recorder.last_login_answered_ms() {
                    Some(answered) => answered,
                    // No login answered yet: the warm-up has not begun to end. Counted from
                    // 0 instead, a shop slower than `measured_for` to answer the first
                    // login (one process at 0.1 core, Argon2 under the browse load) was
                    // stopped before any login came back, and the half had no window.
                    None if logins_expected => continue,
                    None => 0,
                };
                if at_ms >= warm_at + measured_for.as_millis() as u64 {
                    return;
                }
            }
        }
    };
    let whole = load::LoadPlan {
        duration: measured_for + WARM_UP_CEILING,
        ..plan.clone()
    };
    let run = load::run_until(&whole, &experiment.shop, &recorder, stop).await?;
    let samples = std::mem::take(&mut *lock(&samples));
    let warm_at = crate::journeys::last_login_answered_ms(&run.records).unwrap_or(0);
    let (Some(first), Some(last)) = (
        samples.iter().find(|sample| sample.at_ms >= warm_at),
        samples.last(),
    ) else {
        anyhow::bail!(
            "the buy users' logins took over {} s: nothing was left to measure",
            WARM_UP_CEILING.as_secs()
        );
    };
    let wall_s = (last.at_ms.saturating_sub(first.at_ms)) as f64 / 1000.0;
    let mut by_component: Vec<(Component, usize, f64)> = Vec::new();
    for (index, (component, _)) in members.iter().enumerate() {
        let used = (last.cpu_s[index] - first.cpu_s[index]).max(0.0);
        match by_component
            .iter_mut()
            .find(|(seen, _, _)| seen == component)
        {
            Some((_, count, total)) => {
                *count += 1;
                *total += used;
            }
            None => by_component.push((*component, 1, used)),
        }
    }
    let sut_cpu_s: f64 = by_component.iter().map(|(_, _, cpu)| cpu).sum();
    let metered = !members.is_empty();
    let measured = stats(window(&run.records, first.at_ms, last.at_ms, |_| true));
    let half = Half {
        replicas,
        warm_up_s: first.at_ms as f64 / 1000.0,
        requests_per_s: measured.requests as f64 / wall_s.max(0.001),
        error_rate: (measured.requests - measured.ok) as f64 / measured.requests.max(1) as f64,
        latency: measured.latency,
        sut_cpu_s: metered.then_some(sut_cpu_s),
        requests_per_sut_cpu_s: metered.then(|| measured.ok as f64 / sut_cpu_s.max(0.001)),
    };
    experiment.history.extend(run.records);
    Ok(Measured {
        half,
        by_component,
        wall_s,
    })
}

/// Every shop process's CPU seconds so far, in the order of the half's members.
struct CpuSample {
    at_ms: u64,
    cpu_s: Vec<f64>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Context;

    #[test]
    fn the_bottleneck_is_the_process_nearest_its_quota_not_the_one_using_most_cpu() {
        // A tenth of a core each for 3 s: 0.3 CPU s per replica allowed.
        let measured = [
            (Component::Gateway, 1, 0.21),
            (Component::Service(Context::Catalog), 1, 0.27),
            // More CPU than catalog, but over two replicas: 0.4 / 0.6.
            (Component::Service(Context::Orders), 2, 0.40),
            // The lab's front door, under no quota, is never the shop's bottleneck.
            (Component::FrontDoor, 1, 0.90),
        ];
        let found = utilisation_of(&measured, 0.1, 3.0);
        let names: Vec<&str> = found
            .iter()
            .map(|(_, used)| used.process.as_str())
            .collect();
        assert_eq!(names, ["catalog", "gateway", "orders"], "busiest first");
        assert!((found[0].1.utilisation - 0.9).abs() < 1e-9);
        assert!((found[2].1.utilisation - 0.4 / 0.6).abs() < 1e-9);
        assert_eq!(
            bottleneck(&found),
            Some(Component::Service(Context::Catalog))
        );
        // The most CPU seconds alone would have chosen orders.
        assert_eq!(hottest(&measured), Component::Service(Context::Orders));
        assert_eq!(bottleneck(&[]), None);
    }

    fn used(component: Component, utilisation: f64) -> (Component, Utilisation) {
        (
            component,
            Utilisation {
                process: component.to_string(),
                replicas: 1,
                cpu_s: utilisation * 0.3,
                utilisation,
            },
        )
    }

    const CATALOG: Component = Component::Service(Context::Catalog);
    const ORDERS: Component = Component::Service(Context::Orders);

    #[test]
    fn processes_within_ten_points_of_the_busiest_and_above_eighty_percent_tie_for_the_bottleneck()
    {
        // CI's run: catalog and the gateway both at their quotas.
        let ci = [
            used(Component::Gateway, 0.99),
            used(CATALOG, 1.00),
            used(ORDERS, 0.50),
        ];
        assert_eq!(
            bottlenecks(&ci),
            [CATALOG, Component::Gateway],
            "busiest first"
        );
        // Just inside and just outside the margin.
        let inside = [used(CATALOG, 1.00), used(Component::Gateway, 0.91)];
        assert_eq!(bottlenecks(&inside), [CATALOG, Component::Gateway]);
        let outside = [used(CATALOG, 1.00), used(Component::Gateway, 0.89)];
        assert_eq!(bottlenecks(&outside), [CATALOG]);
        // Within the margin but under the floor: not held back by its quota.
        let low = [
            used(CATALOG, 0.85),
            used(Component::Gateway, 0.80),
            used(ORDERS, 0.79),
        ];
        assert_eq!(bottlenecks(&low), [CATALOG, Component::Gateway]);
        // Nothing near its quota: the busiest alone, as without ties.
        let idle = [used(CATALOG, 0.75), used(Component::Gateway, 0.74)];
        assert_eq!(bottlenecks(&idle), [CATALOG]);
        assert_eq!(bottlenecks(&[]), []);
    }

    #[test]
    fn tied_processes_past_the_cores_room_for_their_quotas_are_left_out_with_why() {
        // The microservices' eight processes at 0.1 core: one core holds two more.
        let running: Vec<(Component, Utilisation)> = [
            Component::Gateway,
            CATALOG,
            ORDERS,
            Component::Service(Context::Inventory),
            Component::Service(Context::Cart),
            Component::Service(Context::Payments),
            Component::Service(Context::Users),
            Component::Service(Context::Recommendations),
        ]
        .into_iter()
        .map(|component| used(component, 0.9))
        .collect();
        let wanted = [CATALOG, Component::Gateway, ORDERS];
        let (added, left) = with_room(&wanted, &running, 0.1, 1);
        assert_eq!(added, [CATALOG, Component::Gateway]);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].process, "orders");
        assert!(left[0].why.starts_with("no room:"), "{}", left[0].why);
        // Two cores hold every one of them.
        let (added, left) = with_room(&wanted, &running, 0.1, 2);
        assert_eq!((added.len(), left.len()), (3, 0));
        // A shop already over its core still scales its busiest process.
        let (added, left) = with_room(&wanted, &running, 0.2, 1);
        assert_eq!(added, [CATALOG]);
        assert_eq!(left.len(), 2);
    }

    #[test]
    fn a_process_given_no_time_has_no_utilisation_rather_than_an_infinite_one() {
        let found = utilisation_of(&[(Component::Monolith, 1, 0.5)], 0.1, 0.0);
        assert_eq!(found[0].1.utilisation, 0.0);
    }
}
